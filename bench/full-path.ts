/**
 * full-path: traffic from a client to a customer host through the whole OpenTransit data path, against plain
 * kernel routing over the same lab hops, measured in one run on a lab of its own (one site, one edge, one client,
 * one customer with one host).
 *
 * Full path (client → site router → edge: XDP (customer prefix → mark) → the customer's netns (its nftables
 * firewall, its routes) → GRE encap (eBPF) → site router → core → customer router (GRE decap, tc eBPF) → host;
 * replies: host → customer router (GRE encap to the anycast endpoint) → core → site router → edge (XDP decap) →
 * site router → client).
 *
 * Baseline (plain kernel routing, same namespaces, same hops in both directions): a second address of the customer
 * host, BASELINE_ADDR (RFC 2544 benchmarking range, outside every customer prefix, so the edge's XDP passes it and
 * no customer netns, firewall or tunnel sees it), reached by static routes: site router → edge (main table), the
 * edge forwards it back by its default route, the site router sends it on to the core (a policy rule on `iif
 * <edge>`, the only way to hairpin through a one-armed edge), core → customer router → host; replies come back
 * through the edge the same way (a policy rule `from BASELINE_ADDR iif uplink` on the site router). The baseline
 * still crosses the edge's XDP program (a lookup that passes) and the edge host's nft prerouting chain (no match),
 * as any non-customer packet does; it has no GRE, no customer netns, no customer firewall and a 1500-byte MTU
 * (the tunnel path's is 1476, with MSS clamping).
 *
 * No-GRE path (for "encap+decap ÷ the same path without GRE"): a third host address inside the customer prefix
 * that takes the full path up to the customer netns and its firewall, and leaves it unencapsulated (installNoGre).
 * This kernel has no ip_gre, so a kernel-GRE variant of the baseline is not possible here.
 *
 * 60-byte UDP (udp_60b_pps): the path's forwarding rate for 60-byte frames, not a socket's. xdp_flood (bench/c)
 * transmits COUNT copies of one correct frame (client MAC → the site router's MAC on that link, client address →
 * the destination, UDP to FLOOD_PORT, valid checksums) out of the client's interface at the kernel's own speed
 * (BPF_PROG_RUN live frames, XDP_TX), pinned to one CPU; the customer host drops them at its interface's ingress
 * (an nftables netdev rule, the same for all three destinations: no socket, no ICMP, the host's share one hook).
 * Rate = packets the host's interface received (its rx counter, read once it has settled) ÷ the flood's duration;
 * also per CPU-second spent on the generator's CPU, and the fraction of the frames that arrived. The path's work
 * runs in softirq after each batch the generator hands over, on the generator's CPU (in its context or its
 * ksoftirqd), so a rate is 1 / (generator + path) per packet — unless a NAPI in the path is already being polled
 * on the other CPU, which turns the path into a pipeline over both CPUs that loses frames where a ring overflows
 * (the notes and details say how much). Such a flood ("spilled": under 97 % of the flood's softirq packets on the
 * generator's CPU, or under 99 % of its frames arrived) is recorded in details.flood, counted, tried again (up to
 * `--set full-path.spill_retries=N`, default 3) and left out of every median: each figure is the path's cost on
 * one CPU, for all three paths alike. The lab's own processes (BIRD, the iperf3 servers) are moved onto the
 * generator's CPU during the floods (pinLabProcesses: their BFD packets are what pulled a NAPI onto the other
 * CPU), which makes spills rare. A flood into the same device with nothing behind it (generator alone)
 * shows the generator's share. The site router's interface from the client gets GRO on for the floods only (a
 * veth accepts XDP-transmitted frames only with NAPI: GRO or an XDP program), as the lab made it otherwise; the
 * site router holds static /32 routes for the paths (pinPathRoutes says why). The old iperf3 -u -b 0 goodput is
 * kept as an informational figure (udp_60b_iperf3_goodput, `--set full-path.iperf3_udp=0` skips it): it measures
 * mostly the iperf3 receiver and CPU scheduling.
 *
 * TCP (tcp_throughput): one iperf3 stream per run, client on the generator's CPU and server on the other (tcpRun
 * says why), `--set full-path.tcp_per_round=N` runs per path per round (default 4: one stream's figure swings ±8 % from run to run, so 12 pairs rather than 6), the paths interleaved; also the
 * CPU-seconds per gigabit of the same runs (tcp_cpu_per_gbit), and each run's CPU shares and retransmits in
 * details.tcp. The client writes 1 MiB at a time (iperf3 -l, `--set full-path.tcp_write=BYTES`), not iperf3's
 * default 128 KiB: in this lab every burst the client's TCP hands to its device runs the whole chain to the
 * server synchronously on the client's CPU, and with 128 KiB writes the burst pattern depended on the MSS rather
 * than on the path. A 128 KiB write is 92.04 segments at the full path's MSS (1424): 45 + 45 + 2 segments + 64
 * bytes, i.e. a 2-segment burst per write that becomes a tiny GRO super-packet at the edge and pays every hop's
 * per-packet cost; at plain routing's 1448 it is 45 + 45 + a 752-byte tail. Seen with perf (net:net_dev_queue
 * with call chains, the client's own sends): 23.6 bursts per MB on the full path vs 20.5 on plain routing with
 * 128 KiB writes (34 % vs 25 % of them under 8 KB), 16.2 for both with 1 MiB writes (0.4 % and 4.9 % small); 8
 * interleaved rounds in the kept lab: full ÷ plain 0.857 with 128 KiB, 0.948 with 1 MiB (plain routing itself
 * unchanged: 2.43 vs 2.42 Gbit/s); the first two benches with it gave 0.855 and 0.862 with 1 MiB, 0.870 and 0.803
 * with 128 KiB (3 pairs each): what it removes is an MSS artifact, its effect on the ratio is within this machine's
 * noise. The default-write figure stays as an informational metric (tcp_throughput_128k_writes,
 * `--set full-path.tcp_128k_per_round=0` skips it).
 *
 * The customer firewall's counters are read around every run: they must rise for the full and no-GRE paths and
 * stay still for the baseline, or the benchmark fails; during a flood they must count at least every frame that
 * reached the host.
 *
 * The customer router reaches its host by a routed link rather than the lab's LAN bridge, for all paths alike
 * (routeCustomerLan says why; `--set full-path.lan=bridge` keeps the bridge). `--set full-path.lab=NAME` runs the
 * lab under another name, `--set full-path.keep=1` leaves it up afterwards for a look at the paths,
 * `--set full-path.flood_packets=N` sizes each flood (default 200,000: 2–8 s per flood on this loaded 2-core VM),
 * `--set full-path.floods=N` floods per path per round (default 3), `--set full-path.flood_cpu=N` picks the
 * generator's CPU (default 0).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { promisify } from 'node:util';
import { CUSTOMER_VETH, HOST_LINK_ADDRESS, customerNetns, hostVethName } from '../src/agent/desired/node.js';
import { getLink, readLinkFeatures, setLinkFeatures } from '../src/kernel/links.js';
import { nftExpr, readRuleCounters, replaceNftTable } from '../src/kernel/nft.js';
import { listRoutes } from '../src/kernel/routes.js';
import { edgeNetnsPrefix, labAgentPinBase } from '../src/lab/agents.js';
import { FIB_BITS } from '../src/agent/reconcile/dataplane-fib.js';
import { openDataplane } from '../src/kernel/bpf/dataplane.js';
import { labDown, labExec, labStatus, labUp } from '../src/lab/lab.js';
import type { LabState } from '../src/lab/state.js';
import { metric, numberParam, registerBenchmark } from './lib/registry.js';
import { median, sleep } from './lib/stats.js';
import { benchTools } from './lib/tools.js';
import { ethernet, ipv4, padFrame, udp } from '../test/support/packets.js';

/** Default lab name; `--set full-path.lab=NAME` runs another (e.g. next to someone else's bench run). */
const DEFAULT_LAB = 'benchfp';
let LAB = DEFAULT_LAB;
const CLIENT = 'cli';
const SITE = 's1';
const CUSTOMER = 'cust';
const HOST_ADDR = '203.0.113.100';
const BASELINE_ADDR = '198.18.0.100';
/** A third address of the host, inside the customer prefix: the customer path without GRE (installNoGre). */
const NOGRE_ADDR = '203.0.113.101';
const PORT = 5201;
/** 18 bytes of UDP payload: 18 + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) = a 60-byte frame. */
const UDP_PAYLOAD = 18;
/** The flood's destination port (discard): allowed by the customer firewall, dropped at the host's ingress. */
const FLOOD_PORT = 9;
const FLOOD_SPORT = 40000;
/** The TCP client's write size (iperf3 -l): 1 MiB; the header says why not iperf3's default (128 KiB). */
const TCP_WRITE = 1 << 20;
const TCP_WRITE_IPERF3_DEFAULT = 128 << 10;
/**
 * A flood "spilled" when less than this share of the softirq packets of the flood's time ran on the generator's
 * CPU (the rest: a NAPI of the path polled on the other CPU; background traffic of the machine is far below 3 %),
 * or when less than SPILL_ARRIVED of its frames reached the host (a clean flood delivers all of them).
 */
const SPILL_ON_CPU = 0.97;
const SPILL_ARRIVED = 0.99;
/** The customer host's nftables table that drops the flood at its interface (netdev ingress). */
const SINK_TABLE = 'otbenchsink';

const topology = () => ({
  name: LAB,
  store: 'embedded',
  anycast_endpoints: ['192.0.2.10'],
  sites: [{ name: SITE, edges: 1 }],
  clients: [{ name: CLIENT, site: SITE, address: '198.51.100.100' }],
  customers: [{ name: CUSTOMER, router: '198.51.100.2', return: 'tunnel', hosts: [{ name: 'srv', address: HOST_ADDR }] }],
});

const ACCOUNT = {
  account: 'benchfp',
  prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
  gre_tunnels: [{ name: 'benchfp-s1', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
  routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }],
  firewall: {
    default_action: 'block',
    rules: [{ action: 'allow', expression: `(ip.dst == ${HOST_ADDR} or ip.dst == 203.0.113.101) and (tcp.dstport == ${PORT} or udp.dstport == ${PORT} or udp.dstport == ${FLOOD_PORT})` }],
  },
};

async function run(cmd: string, argv: string[], timeoutMs = 30_000): Promise<string> {
  return (await promisify(execFile)(cmd, argv, { timeout: timeoutMs })).stdout;
}

async function must(host: string, argv: string[]): Promise<string> {
  const r = await labExec(LAB, host, argv, { timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${host}: ${argv.join(' ')} failed (${r.exitCode ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/** USER_HZ: the unit of /proc/stat's times (100 on every Linux architecture we run on). */
const CLOCK_TICKS = 100;

interface IperfEnd {
  end?: {
    sum_received?: { bits_per_second: number; bytes?: number };
    sum_sent?: { retransmits?: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number };
  };
  error?: string;
}

/**
 * One iperf3 client run in the client's netns (JSON output); throws with iperf3's own error. A run that finds the
 * path unreachable is retried for a while: with both CPUs saturated by the previous run, BFD (50 ms × 3) between an
 * edge and its site router can time out and BGP takes a few seconds to bring the route back — measure the path,
 * not that recovery (a path that stays unreachable still fails).
 */
async function iperf(dst: string, args: string[], seconds: number): Promise<IperfEnd> {
  const deadline = Date.now() + 20_000;
  let hung = 0;
  for (;;) {
    try {
      return await iperfOnce(dst, args, seconds);
    } catch (err) {
      const m = (err as Error).message;
      // A run killed by our timeout (exit null) is tried once more: seen once in 21 rounds after a UDP flood, the
      // server still holding the last test (servers run with --rcv-timeout, so it lets go within 5 s).
      const retry = (/unreachable|server is busy/i.test(m) && Date.now() < deadline) || (/exit null/.test(m) && ++hung < 2);
      if (!retry) throw err;
      await sleep(500);
    }
  }
}

async function iperfOnce(dst: string, args: string[], seconds: number): Promise<IperfEnd> {
  const r = await labExec(LAB, CLIENT, ['iperf3', '-c', dst, '-p', String(PORT), '-t', String(seconds), '-J', ...args], { timeoutMs: (seconds + 20) * 1000 });
  let j: IperfEnd;
  try {
    j = JSON.parse(r.stdout) as IperfEnd;
  } catch {
    throw new Error(`iperf3 to ${dst}: no JSON (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.slice(0, 300)}`);
  }
  if (j.error) throw new Error(`iperf3 to ${dst}: ${j.error}`);
  return j;
}

/** A CPU other than `cpu` for the TCP server (the lowest-numbered one). */
function otherCpu(cpu: number): number {
  const n = cpus().length;
  if (n < 2) throw new Error('full-path needs 2 CPUs: the TCP client and server are pinned to different ones');
  return cpu === 0 ? 1 : 0;
}

/** Busy and total jiffies of each CPU (/proc/stat: everything but idle and iowait counts as busy). */
async function cpuJiffies(): Promise<{ busy: number; total: number }[]> {
  const out: { busy: number; total: number }[] = [];
  for (const line of (await readFile('/proc/stat', 'utf8')).split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    out[Number(m[1])] = { busy: total - v[3]! - (v[4] ?? 0), total };
  }
  return out;
}

interface TcpRun {
  gbps: number;
  /** Each CPU's busy share during the run (0–1). */
  cpuBusy: number[];
  /** CPU-seconds (all CPUs) spent per gigabit delivered: the whole lab's cost of moving the stream. */
  cpuSecondsPerGbit: number;
  retransmits: number;
}

/**
 * One TCP run, client and server pinned (iperf3 -A CLIENT,SERVER): the client's CPU carries the stream's whole
 * forward path (every hop up to the server's socket runs in softirq on the CPU that sent it), the server's CPU its
 * copy and the ACKs. Unpinned, the scheduler put both processes on one CPU in some runs and on two in others, and
 * the ratio of a round's pair swung 0.64–0.95 with the placement rather than the path.
 */
async function tcpRun(dst: string, seconds: number, cpus: [number, number], writeBytes: number): Promise<TcpRun> {
  const before = await cpuJiffies();
  const j = await iperf(dst, ['-A', `${cpus[0]},${cpus[1]}`, '-l', String(writeBytes)], seconds);
  const after = await cpuJiffies();
  const bps = j.end?.sum_received?.bits_per_second;
  const bytes = j.end?.sum_received?.bytes;
  if (!bps || !bytes) throw new Error(`iperf3 TCP to ${dst}: no sum_received in the result`);
  const cpuBusy = after.map((a, i) => (a.total - before[i]!.total > 0 ? (a.busy - before[i]!.busy) / (a.total - before[i]!.total) : 0));
  const busySeconds = after.reduce((sum, a, i) => sum + (a.busy - before[i]!.busy), 0) / CLOCK_TICKS;
  return { gbps: bps / 1e9, cpuBusy, cpuSecondsPerGbit: busySeconds / ((bytes * 8) / 1e9), retransmits: j.end?.sum_sent?.retransmits ?? 0 };
}

/**
 * iperf3's small-datagram goodput (informational): datagrams the server got (sent − lost, as it reports) per
 * second. -b 0 saturates the sender; most of the loss is at the receiving socket, so this measures iperf3's
 * receiver and the CPU scheduling more than the path (udp_60b_pps is the path's figure).
 */
async function udpKpps(dst: string, seconds: number): Promise<{ kpps: number; sentKpps: number; loss: number }> {
  const j = await iperf(dst, ['-u', '-l', String(UDP_PAYLOAD), '-b', '0'], seconds);
  const s = j.end?.sum;
  if (!s?.packets || !s.seconds) throw new Error(`iperf3 UDP to ${dst}: no packet counts in the result`);
  const received = s.packets - (s.lost_packets ?? 0);
  return { kpps: received / s.seconds / 1000, sentKpps: s.packets / s.seconds / 1000, loss: (s.lost_packets ?? 0) / s.packets };
}

/** The customer firewall's packet counters on the edge (all rules + default), to tell which path a run took. */
async function firewallPackets(state: LabState, accountId: string): Promise<number> {
  const edge = state.plan.edges[0]!;
  const ns = customerNetns({ netnsPrefix: edgeNetnsPrefix(state, edge.name) }, accountId);
  return (await readRuleCounters(ns, 'inet', 'opentransit')).reduce((a, c) => a + c.packets, 0);
}

/** A device's received-packets counter (`ip -j -s link`: veth counts a packet when it hands it to the stack or its NAPI ring). */
async function rxPackets(netns: string, dev: string): Promise<number> {
  const links = JSON.parse(await run('ip', ['-n', netns, '-j', '-s', 'link', 'show', 'dev', dev])) as { stats64?: { rx?: { packets?: number } } }[];
  const n = links[0]?.stats64?.rx?.packets;
  if (typeof n !== 'number') throw new Error(`ip -n ${netns} -s link show dev ${dev}: no rx packet counter`);
  return n;
}

/** A counter once it has stopped moving (unchanged over 100 ms), read at most 5 s long. */
async function settled(what: string, read: () => Promise<number>): Promise<number> {
  let last = await read();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const n = await read();
    if (n === last) return n;
    last = n;
  }
  throw new Error(`${what} still moving after 5 s`);
}

/**
 * The rx counter once it has stopped moving: what the softirq work left behind after the generator returned
 * (frames still in a veth ring or a backlog queue) is counted before we read.
 */
const settledRxPackets = (netns: string, dev: string) => settled(`rx counter of ${dev} in ${netns}`, () => rxPackets(netns, dev));

/**
 * The customer firewall's counters once they have stopped moving: the last packets of a TCP run (the client's
 * final ACK, a FIN) can cross the firewall just after iperf3 returns, and would otherwise be counted in the next
 * run's window. The likely cause of a failure seen once: a baseline run charged with 1 packet.
 */
const settledFirewallPackets = (state: LabState, accountId: string) => settled('the customer firewall counters', () => firewallPackets(state, accountId));

/** The flood's sink on the customer host: `udp dport FLOOD_PORT counter drop` at its interface's ingress. */
async function installSink(hostNetns: string, dev: string): Promise<void> {
  await replaceNftTable(hostNetns, {
    family: 'netdev',
    name: SINK_TABLE,
    chains: [{
      name: 'in',
      base: { type: 'filter', hook: 'ingress', prio: 0, policy: 'accept', dev },
      rules: [{ comment: 'flood', expr: [nftExpr.match(nftExpr.payload('udp', 'dport'), '==', FLOOD_PORT), nftExpr.counter(), nftExpr.drop()] }],
    }],
  });
}

async function sinkDrops(hostNetns: string): Promise<number> {
  return (await readRuleCounters(hostNetns, 'netdev', SINK_TABLE)).reduce((a, c) => a + c.packets, 0);
}

/** The lab client's link towards its site router: where the generator transmits, and the frame's two MACs. */
interface FloodLink {
  clientNetns: string;
  ifindex: number;
  srcMac: string;
  siteNetns: string;
  /** The site router's device facing the client (receives the flood first). */
  siteDev: string;
  dstMac: string;
}

async function floodLink(state: LabState): Promise<FloodLink> {
  const client = state.plan.hosts.find((h) => h.name === CLIENT)!;
  const iface = client.interfaces.find((i) => i.peerHost === `${SITE}-router`);
  if (!iface) throw new Error(`lab client ${CLIENT} has no link to ${SITE}-router`);
  const site = state.plan.hosts.find((h) => h.name === iface.peerHost)!;
  const own = await getLink(client.netns, iface.name);
  const peer = await getLink(site.netns, iface.peerInterface);
  if (!own || !peer) throw new Error(`the link ${CLIENT}/${iface.name} ↔ ${site.name}/${iface.peerInterface} is missing`);
  return { clientNetns: client.netns, ifindex: own.ifindex, srcMac: own.mac, siteNetns: site.netns, siteDev: iface.peerInterface, dstMac: peer.mac };
}

/** The edge's ot_config flags and the fast-path shortcuts they turn on (by short name: in, gre, all, src). */
function edgeFastPath(state: LabState): { flags: number; shortcuts: string[] } {
  const dp = openDataplane({ node: state.plan.edges[0]!.nodeId, base: labAgentPinBase(state.name) });
  try {
    const flags = dp.maps.config.get(0)?.flags ?? 0;
    return { flags, shortcuts: Object.entries(FIB_BITS).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name) };
  } finally {
    dp.close();
  }
}

/** One 60-byte frame from the client to `dst`, as the client's own stack would put it on its link. */
function floodFrame(link: FloodLink, dst: string): Buffer {
  const src = topology().clients[0]!.address;
  const f = padFrame(ethernet({ src: link.srcMac, dst: link.dstMac }, ipv4({ src, dst }, udp({ sport: FLOOD_SPORT, dport: FLOOD_PORT }, Buffer.alloc(UDP_PAYLOAD)))));
  if (f.length !== 60) throw new Error(`flood frame is ${f.length} bytes, not 60`);
  return f;
}

/**
 * Runs xdp_flood (--rewrite: the frame is written afresh each time, see bench/c/xdp_flood.c) in the client's
 * netns, pinned to `cpu` (taskset) so that the softirq work it triggers stays on one CPU for the whole flood.
 */
async function xdpFlood(tool: string, link: FloodLink, frame: Buffer, count: number, cpu: number): Promise<{ sent: number; seconds: number; cpuSeconds: number }> {
  const out = await run('ip', ['netns', 'exec', link.clientNetns, 'taskset', '-c', String(cpu), tool, '--rewrite', String(link.ifindex), String(count), frame.toString('hex')], 300_000);
  const j = JSON.parse(out) as { sent: number; ns: number; cpu_ns: number };
  return { sent: j.sent, seconds: j.ns / 1e9, cpuSeconds: j.cpu_ns / 1e9 };
}

/** Packets each CPU's NET_RX softirq processed so far (/proc/net/softnet_stat, first column, one line per CPU). */
async function softnetProcessed(): Promise<number[]> {
  return (await readFile('/proc/net/softnet_stat', 'utf8')).trim().split('\n').map((l) => parseInt(l.trim().split(/\s+/)[0]!, 16));
}

/** The pid of ksoftirqd/<cpu>: softirq work deferred from the generator's context runs there. */
async function ksoftirqdPid(cpu: number): Promise<number> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const comm = await readFile(`/proc/${d}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === `ksoftirqd/${cpu}`) return Number(d);
  }
  throw new Error(`no ksoftirqd/${cpu} thread`);
}

/** A task's time on a CPU so far, in seconds (/proc/PID/schedstat, first field, ns). */
async function taskCpuSeconds(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]) / 1e9;
}

/**
 * The processes living in the lab's namespaces (BIRD on the core, the site router and the edge; the iperf3
 * servers), found by their network namespace (/proc/PID/ns/net against /run/netns/otl-<lab>-*).
 */
async function labProcesses(): Promise<number[]> {
  const inodes = new Set<string>();
  for (const n of await readdir('/run/netns')) {
    if (n.startsWith(`otl-${LAB}-`)) inodes.add(`net:[${(await stat(`/run/netns/${n}`)).ino}]`);
  }
  const pids: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ns = await readlink(`/proc/${d}/ns/net`).catch(() => '');
    if (inodes.has(ns)) pids.push(Number(d));
  }
  return pids;
}

/**
 * Moves the lab's own processes onto the generator's CPU for the floods and returns how to put them back.
 * Why: a veth with NAPI (GRO or XDP) schedules its NAPI on the CPU that transmits into it. A BFD packet (every
 * 50 ms each way) or a BGP message sent by a BIRD running on the other CPU into the edge's uplink, or into the
 * site router, can take the NAPI the flood is using at a moment its ring ran empty; with the flood behind it the
 * ring never drains again, so that NAPI stays on the other CPU for the rest of the flood and the path becomes a
 * two-CPU pipeline that drops frames between its stages (seen: 7 of 27 floods in one run, arrived 5–75 %). With
 * the lab's senders on the generator's CPU, every NAPI of the path is scheduled there. Their own CPU time (a few
 * BFD packets) is not in the per-CPU-second figure (the generator's thread + ksoftirqd only) and counts alike
 * for every path in wall time.
 */
async function pinLabProcesses(cpu: number): Promise<() => Promise<void>> {
  const saved: [number, string][] = [];
  for (const pid of await labProcesses()) {
    const r = await promisify(execFile)('taskset', ['-p', String(pid)]).catch(() => undefined);
    const mask = r ? /: ([0-9a-f]+)\s*$/.exec(r.stdout)?.[1] : undefined;
    if (!mask) continue; // gone since the listing
    if (await promisify(execFile)('taskset', ['-a', '-p', '-c', String(cpu), String(pid)]).then(() => true, () => false)) saved.push([pid, mask]);
  }
  return async () => {
    for (const [pid, mask] of saved) await promisify(execFile)('taskset', ['-a', '-p', mask, String(pid)]).catch(() => undefined);
  };
}

/** The lab's one edge as its site router sees it, and the one customer: the names every path installer needs. */
function pathHops(state: LabState) {
  const edge = state.plan.edges[0]!;
  const siteRouter = state.plan.hosts.find((h) => h.name === edge.router.host)!;
  const cust = state.plan.customers[0]!;
  return {
    edge,
    edgeAddr: edge.uplink.address.split('/')[0]!,
    siteRouter,
    siteUplink: siteRouter.interfaces.find((i) => i.name === 'uplink')!,
    /** The site router's device towards the edge. */
    edgeDev: siteRouter.interfaces.find((i) => i.peerHost === edge.name)!.name,
    cust,
    custUplink: state.plan.hosts.find((h) => h.name === cust.routerHost)!.interfaces.find((i) => i.name === 'uplink')!,
  };
}

/**
 * NOGRE_ADDR, HOST_ADDR and the customer router's public address (the outer destination of the full path's GRE)
 * as static /32 routes on the site router, with the next hops BGP gave it (the edge; the core). Why: a flood fills
 * the rings of the site router → edge link, BFD packets are lost with the frames, the edge's BGP session drops and
 * the site router loses its BGP routes for a few seconds — seen: a whole full-path flood counted as IpExtInNoRoutes
 * while the baseline (static routes) went on. The path is the same; only the control plane's hiccup is taken out.
 */
async function pinPathRoutes(state: LabState): Promise<void> {
  const { edgeAddr, siteRouter, siteUplink, edgeDev, cust } = pathHops(state);
  for (const a of [HOST_ADDR, NOGRE_ADDR]) await must(siteRouter.name, ['ip', 'route', 'replace', `${a}/32`, 'via', edgeAddr, 'dev', edgeDev]);
  await must(siteRouter.name, ['ip', 'route', 'replace', `${cust.publicAddress}/32`, 'via', siteUplink.peerAddress, 'dev', 'uplink']);
}

/**
 * Connects the customer's one host to its router by a routed link instead of the lab's LAN bridge (for all three
 * paths alike), and returns the router's device towards the host.
 *
 * Why: this kernel (6.18) cannot clear an skb's tunnel offload state (skb->encapsulation, SKB_GSO_GRE) in a BPF
 * decapsulation — newer kernels can (bpf_skb_adjust_room with BPF_F_ADJ_ROOM_DECAP_L4_GRE). The lab's stand-in
 * customer router decapsulates in tc (cpe_gre.c), so a TCP super-packet that crossed the tunnel still looks
 * encapsulated, and a bridge (its hw_enc_features carry no TSO) segments it again in software: every full-path
 * segment then crosses the LAN and the host's stack one by one, while the baseline's stay 64 KB super-packets. A
 * real customer router's kernel GRE clears that state, and neither the edge nor the tunnel is involved. A veth
 * handles the flag (its hw_enc_features include TSO), so a routed link measures the path, not that artefact.
 * `--set full-path.lan=bridge` keeps the bridge (to see the artefact: the full path's TCP falls, the baseline's not).
 */
async function routeCustomerLan(state: LabState): Promise<string> {
  const cust = state.plan.customers[0]!;
  const router = state.plan.hosts.find((h) => h.name === cust.routerHost)!;
  const bridge = router.bridge!;
  const dev = bridge.members[0]!;
  await must(cust.routerHost, ['ip', 'link', 'set', 'dev', dev, 'nomaster']);
  await must(cust.routerHost, ['ip', 'addr', 'del', bridge.address, 'dev', bridge.name]);
  await must(cust.routerHost, ['ip', 'addr', 'add', bridge.address, 'dev', dev]);
  // The host's neighbour entry for its gateway still names the bridge's MAC.
  await must(cust.hosts[0]!.host, ['ip', 'neigh', 'flush', 'dev', 'uplink']);
  return dev;
}

/** Static routes and two policy rules that carry BASELINE_ADDR over the same hops as the tunnel path, plainly. */
async function installBaseline(state: LabState, lanDev: string): Promise<void> {
  const hops = pathHops(state);
  const { edgeAddr, siteUplink, cust, custUplink, edgeDev } = hops;
  const siteRouter = hops.siteRouter.name;
  const coreDev = custUplink.peerInterface;
  const b32 = `${BASELINE_ADDR}/32`;
  await must(cust.hosts[0]!.host, ['ip', 'addr', 'replace', b32, 'dev', 'lo']);
  await must(cust.routerHost, ['ip', 'route', 'replace', b32, 'via', HOST_ADDR, 'dev', lanDev]);
  await must('internet', ['ip', 'route', 'replace', b32, 'via', custUplink.address.split('/')[0]!, 'dev', coreDev]);
  await must(siteRouter, ['ip', 'route', 'replace', b32, 'via', edgeAddr, 'dev', edgeDev]);
  await must(siteRouter, ['ip', 'route', 'replace', b32, 'via', siteUplink.peerAddress, 'dev', 'uplink', 'table', '4300']);
  await must(siteRouter, ['ip', 'rule', 'add', 'pref', '4300', 'iif', edgeDev, 'to', b32, 'lookup', '4300']);
  await must(siteRouter, ['ip', 'route', 'replace', 'default', 'via', edgeAddr, 'dev', edgeDev, 'table', '4301']);
  await must(siteRouter, ['ip', 'rule', 'add', 'pref', '4301', 'iif', 'uplink', 'from', b32, 'lookup', '4301']);
}

/**
 * NOGRE_ADDR: the customer path with the tunnel taken out. It is inside the customer's prefix, so the edge's XDP
 * marks it, it enters the customer's netns and its firewall, exactly as HOST_ADDR does; there a more specific
 * route of ours (protocol static: the agent only ever prunes its own protocol) sends it back out of edge0 to the
 * host side, unencapsulated, instead of to the tunnel peer; from the edge it goes on plainly like the baseline
 * (site router → core → customer router → host, static /32 routes). Replies from it skip the customer router's
 * tunnel rule (a rule of ours before it) and come back plainly through the edge like the baseline's (so, unlike the
 * full path's replies, they are not decapsulated by the edge's XDP: only the forward direction is the same).
 */
async function installNoGre(state: LabState, accountId: string, lanDev: string): Promise<void> {
  const { edge, edgeAddr, siteRouter, siteUplink, edgeDev, cust, custUplink } = pathHops(state);
  const n32 = `${NOGRE_ADDR}/32`;
  const ns = customerNetns({ netnsPrefix: edgeNetnsPrefix(state, edge.name) }, accountId);
  await run('ip', ['-n', ns, 'route', 'replace', n32, 'via', HOST_LINK_ADDRESS, 'dev', CUSTOMER_VETH, 'onlink', 'proto', 'static']);
  // Back on the edge's host side it still matches the customer prefix (the mark rule would send it into the
  // customer netns again): a rule of ours, before the agent's fwmark rule, routes it from the veth by main.
  await must(edge.name, ['ip', 'rule', 'add', 'pref', '50', 'iif', hostVethName(accountId), 'to', n32, 'lookup', 'main']);
  await must(cust.hosts[0]!.host, ['ip', 'addr', 'replace', n32, 'dev', 'lo']);
  await must(cust.routerHost, ['ip', 'route', 'replace', n32, 'via', HOST_ADDR, 'dev', lanDev]);
  await must(cust.routerHost, ['ip', 'rule', 'add', 'pref', '900', 'from', n32, 'iif', lanDev, 'lookup', 'main']);
  await must('internet', ['ip', 'route', 'replace', n32, 'via', custUplink.address.split('/')[0]!, 'dev', custUplink.peerInterface]);
  await must(siteRouter.name, ['ip', 'route', 'replace', n32, 'via', siteUplink.peerAddress, 'dev', 'uplink', 'table', '4300']);
  await must(siteRouter.name, ['ip', 'rule', 'add', 'pref', '4302', 'iif', edgeDev, 'to', n32, 'lookup', '4300']);
  await must(siteRouter.name, ['ip', 'route', 'replace', 'default', 'via', edgeAddr, 'dev', edgeDev, 'table', '4301']);
  await must(siteRouter.name, ['ip', 'rule', 'add', 'pref', '4303', 'iif', 'uplink', 'from', n32, 'lookup', '4301']);
}

registerBenchmark({
  name: 'full-path',
  description: 'client → customer host through XDP + customer netns + nft + GRE, vs plain routing over the same lab hops: TCP Gb/s, 60-byte frames forwarded per second (XDP flood)',
  order: 60,
  async run(ctx) {
    const seconds = numberParam(ctx, 'seconds', 5, 1);
    const repeats = numberParam(ctx, 'repeats', 3, 1);
    const floodPackets = Math.round(numberParam(ctx, 'flood_packets', 200_000, 50_000));
    const floodsPerRound = Math.round(numberParam(ctx, 'floods', 3, 1));
    const spillRetries = Math.round(numberParam(ctx, 'spill_retries', 3, 1));
    // The generator's CPU (taskset): flood_cpu=N; default 0.
    const floodCpu = Number(ctx.params['flood_cpu'] ?? '0');
    if (!Number.isInteger(floodCpu) || floodCpu < 0) throw new Error(`--set full-path.flood_cpu=${ctx.params['flood_cpu']}: a CPU number`);
    // TCP runs per path in each round (interleaved full, baseline, no-GRE, …): one stream swings more than a flood.
    const tcpPerRound = Math.round(numberParam(ctx, 'tcp_per_round', 4, 1));
    // The client's write size (iperf3 -l): 1 MiB, so that both paths' MSS cut a write into the same bursts (the
    // header says why); the default 128 KiB is measured too, as an informational figure, unless tcp_128k_per_round=0.
    const tcpWrite = Math.round(numberParam(ctx, 'tcp_write', TCP_WRITE, TCP_WRITE));
    if (tcpWrite < 1024) throw new Error(`--set full-path.tcp_write=${tcpWrite}: at least 1024 bytes`);
    const tcp128kPerRound = ctx.params['tcp_128k_per_round'] === '0' ? 0 : Math.round(numberParam(ctx, 'tcp_128k_per_round', 1, 1));
    // The TCP client runs on the generator's CPU, the server on another (tcpRun says why).
    const tcpCpus: [number, number] = [floodCpu, otherCpu(floodCpu)];
    // iperf3_udp=0 skips the old iperf3 UDP goodput (informational) to save seconds × 3 × repeats.
    const iperfUdp = (ctx.params['iperf3_udp'] ?? '1') !== '0';
    LAB = ctx.params['lab'] ?? DEFAULT_LAB;
    if (!/^[a-z0-9]{1,12}$/.test(LAB)) throw new Error(`--set full-path.lab=${LAB}: use 1-12 of [a-z0-9]`);
    // keep=1: the lab (and its iperf3 servers) stay up after the run, to look at the paths (`opentransit lab down NAME`).
    const keep = ctx.params['keep'] === '1';
    const servers: ChildProcess[] = [];
    try {
      ctx.log(`lab ${LAB} up`);
      const { state } = await labUp(topology(), { log: (l) => ctx.log(l) });
      const status = await labStatus(LAB);
      const api = async (method: string, url: string, body?: unknown) => {
        const res = await fetch(`${status.api_url}${url}`, {
          method,
          headers: { authorization: `Bearer ${status.operator_token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.status, json: res.status === 204 ? null : ((await res.json()) as unknown) };
      };
      const created = await api('POST', '/v1/accounts', { name: ACCOUNT.account });
      if (created.status !== 201) throw new Error(`creating the account: ${created.status} ${JSON.stringify(created.json)}`);
      const accountId = (created.json as { id: string }).id;
      const put = await api('PUT', `/v1/accounts/${accountId}/config`, ACCOUNT);
      if (put.status !== 200) throw new Error(`applying the account config: ${put.status} ${JSON.stringify(put.json)}`);
      const edge = state.plan.edges[0]!;
      await waitFor('the edge to report the account ok', 30_000, async () => {
        const items = ((await api('GET', '/v1/nodes')).json as { items: { id: string; accounts?: Record<string, { state: string; error?: string }> }[] }).items;
        const a = items.find((n) => n.id === edge.nodeId)?.accounts?.[accountId];
        if (a?.state === 'error') throw new Error(`edge ${edge.nodeId}: ${a.error}`);
        return a?.state === 'ok' ? true : undefined;
      });
      const siteNetns = state.plan.hosts.find((h) => h.name === edge.router.host)!.netns;
      await waitFor('the site router to route 203.0.113.0/24 to the edge by BGP', 30_000, async () =>
        (await listRoutes(siteNetns, { table: 254, family: 4 })).some((r) => r.dst === '203.0.113.0/24') ? true : undefined,
      );
      const lanMode = ctx.params['lan'] ?? 'routed';
      if (lanMode !== 'routed' && lanMode !== 'bridge') throw new Error(`--set full-path.lan=${lanMode}: use routed or bridge`);
      const lanDev = lanMode === 'routed' ? await routeCustomerLan(state) : 'lan';
      await installBaseline(state, lanDev);
      await installNoGre(state, accountId, lanDev);
      await pinPathRoutes(state);

      const hostNetns = state.plan.customers[0]!.hosts[0]!.netns;
      // One server per address, bound to it: an unbound UDP server would answer the baseline's UDP handshake from
      // the host's primary address (the source routing picks), which then goes back through the tunnel instead.
      for (const addr of [HOST_ADDR, BASELINE_ADDR, NOGRE_ADDR]) {
        servers.push(spawn('ip', ['netns', 'exec', hostNetns, 'iperf3', '-s', '-B', addr, '-p', String(PORT), '--rcv-timeout', '5000'], { stdio: 'ignore' }));
      }
      // Both paths must carry a short TCP test before anything is measured (BGP, tunnel and server all ready).
      for (const dst of [HOST_ADDR, BASELINE_ADDR, NOGRE_ADDR]) {
        await waitFor(`a TCP test to ${dst} to pass`, 30_000, async () => {
          try {
            await tcpRun(dst, 1, tcpCpus, tcpWrite);
            return true;
          } catch {
            return undefined;
          }
        });
      }

      // The flood: generator in the client's netns, sink at the customer host's interface (the same for all paths).
      const hostDev = 'uplink';
      await installSink(hostNetns, hostDev);
      const tools = await benchTools();
      const link = await floodLink(state);
      const siteGro = (await readLinkFeatures(link.siteNetns, link.siteDev)).gro;
      const frames = { full: floodFrame(link, HOST_ADDR), base: floodFrame(link, BASELINE_ADDR), nogre: floodFrame(link, NOGRE_ADDR) };
      const softirqd = await ksoftirqdPid(floodCpu);
      /** One flood with the site router's receiving device's GRO set to `gro` (restored as the lab made it after). */
      const flood = async (frame: Buffer, gro: boolean) => {
        await setLinkFeatures(link.siteNetns, link.siteDev, { gro });
        try {
          const [first0, rx0, sink0] = [await rxPackets(link.siteNetns, link.siteDev), await rxPackets(hostNetns, hostDev), await sinkDrops(hostNetns)];
          const [net0, soft0] = [await softnetProcessed(), await taskCpuSeconds(softirqd)];
          const f = await xdpFlood(tools.xdpFlood, link, frame, floodPackets, floodCpu);
          const rx1 = await settledRxPackets(hostNetns, hostDev);
          const [net1, soft1] = [await softnetProcessed(), await taskCpuSeconds(softirqd)];
          const first1 = await rxPackets(link.siteNetns, link.siteDev);
          const processed = net1.map((n, i) => n - net0[i]!);
          const total = processed.reduce((a, b) => a + b, 0);
          return {
            ...f, received: rx1 - rx0, firstHop: first1 - first0, sunk: (await sinkDrops(hostNetns)) - sink0,
            // CPU time of the flood on the generator's CPU: its thread (incl. the softirq work run in its context)
            // plus ksoftirqd/<cpu> (the work deferred from it).
            pathCpuSeconds: f.cpuSeconds + (soft1 - soft0),
            softirqdSeconds: soft1 - soft0,
            onCpu: total > 0 ? processed[floodCpu]! / total : 1,
          };
        } finally {
          await setLinkFeatures(link.siteNetns, link.siteDev, { gro: siteGro });
        }
      };

      type Path = 'full' | 'base' | 'nogre';
      const runs = {
        full_tcp_gbps: [] as number[], base_tcp_gbps: [] as number[], nogre_tcp_gbps: [] as number[],
        full_tcp128k_gbps: [] as number[], base_tcp128k_gbps: [] as number[],
        full_tcp_cpu_s_per_gbit: [] as number[], base_tcp_cpu_s_per_gbit: [] as number[], nogre_tcp_cpu_s_per_gbit: [] as number[],
        full_flood_kpps: [] as number[], base_flood_kpps: [] as number[], nogre_flood_kpps: [] as number[],
        full_arrived: [] as number[], base_arrived: [] as number[], nogre_arrived: [] as number[],
        full_iperf3_udp_kpps: [] as number[], base_iperf3_udp_kpps: [] as number[], nogre_iperf3_udp_kpps: [] as number[],
        full_kpps_per_cpu: [] as number[], base_kpps_per_cpu: [] as number[], nogre_kpps_per_cpu: [] as number[],
        generator_only_kpps: [] as number[], generator_only_kpps_per_cpu: [] as number[],
      };
      const floodDetail: unknown[] = [];
      const udpDetail: unknown[] = [];
      const tcpDetail: unknown[] = [];
      const fw: Record<Path, number> = { full: 0, base: 0, nogre: 0 };
      const spills: Record<Path, number> = { full: 0, base: 0, nogre: 0 };
      const allFloods: Record<Path, number> = { full: 0, base: 0, nogre: 0 };
      const load0 = loadavg();
      // Interleaved (generator alone, then full, baseline, no-GRE, …) so drift on the shared CPUs hits every path alike.
      const fastPathBefore = edgeFastPath(state);
      ctx.log(`edge fast path shortcuts: ${fastPathBefore.shortcuts.join(', ') || 'none'} (ot_config.flags 0x${fastPathBefore.flags.toString(16)})`);
      for (let r = 0; r < repeats; r++) {
        // The generator alone: the same device with no NAPI behind it refuses every XDP frame at once (as xdp-edge's
        // gen_only), so the flood costs only the generator — its share of every path's flood below.
        const g = await flood(frames.full, false);
        if (g.firstHop > g.sent / 100) throw new Error(`generator-alone flood: the site router received ${g.firstHop} of ${g.sent} frames (expected none: GRO off, no XDP)`);
        runs.generator_only_kpps.push(g.sent / g.seconds / 1000);
        runs.generator_only_kpps_per_cpu.push(g.sent / g.cpuSeconds / 1000);
        floodDetail.push({ path: 'generator_only', round: r + 1, sent: g.sent, seconds: g.seconds, generator_thread_cpu_s: g.cpuSeconds, first_hop_received: g.firstHop });
        const paths = [['full', HOST_ADDR], ['base', BASELINE_ADDR], ['nogre', NOGRE_ADDR]] as const;
        // One TCP run, its firewall packets charged to its path, its figures in details.tcp and the log.
        const tcpMeasured = async (path: Path, dst: string, writeBytes: number, run: number, of: number) => {
          const fw0 = await firewallPackets(state, accountId);
          const tcp = await tcpRun(dst, seconds, tcpCpus, writeBytes);
          fw[path] += (await settledFirewallPackets(state, accountId)) - fw0;
          tcpDetail.push({ path, round: r + 1, run, write_bytes: writeBytes, gbps: tcp.gbps, cpu_busy: tcp.cpuBusy, cpu_seconds_per_gbit: tcp.cpuSecondsPerGbit, retransmits: tcp.retransmits });
          ctx.log(`round ${r + 1}/${repeats}: ${path} path (${dst}) TCP ${seconds} s, ${writeBytes >> 10} KiB writes (${run}/${of}): ${tcp.gbps.toFixed(2)} Gbit/s, CPU busy ${tcp.cpuBusy.map((b) => `${Math.round(100 * b)} %`).join(' / ')}, ${tcp.retransmits} retransmits`);
          return tcp;
        };
        for (let t = 0; t < tcpPerRound; t++) {
          for (const [path, dst] of paths) {
            const tcp = await tcpMeasured(path, dst, tcpWrite, t + 1, tcpPerRound);
            runs[`${path}_tcp_gbps`].push(tcp.gbps);
            runs[`${path}_tcp_cpu_s_per_gbit`].push(tcp.cpuSecondsPerGbit);
          }
        }
        // iperf3's default write size, full and plain routing only (informational: tcp_throughput_128k_writes).
        for (let t = 0; t < tcp128kPerRound; t++) {
          for (const [path, dst] of [['full', HOST_ADDR], ['base', BASELINE_ADDR]] as const) {
            runs[`${path}_tcp128k_gbps`].push((await tcpMeasured(path, dst, TCP_WRITE_IPERF3_DEFAULT, t + 1, tcp128kPerRound)).gbps);
          }
        }
        if (iperfUdp) {
          for (const [path, dst] of paths) {
            const fw0 = await firewallPackets(state, accountId);
            ctx.log(`round ${r + 1}/${repeats}: ${path} path (${dst}) iperf3 UDP ${seconds} s`);
            const u = await udpKpps(dst, seconds);
            runs[`${path}_iperf3_udp_kpps`].push(u.kpps);
            udpDetail.push({ path, round: r + 1, received_kpps: u.kpps, sent_kpps: u.sentKpps, loss: u.loss });
            fw[path] += (await settledFirewallPackets(state, accountId)) - fw0;
          }
        }
        // Floods are a few seconds each: several per round, the three paths interleaved within each. The lab's own
        // processes sit on the generator's CPU meanwhile (pinLabProcesses says why), not during the TCP runs.
        const unpin = await pinLabProcesses(floodCpu);
        try {
        for (let k = 0; k < floodsPerRound; k++) {
          for (const [path] of paths) {
           let clean = false;
           for (let attempt = 0; !clean && attempt <= spillRetries; attempt++) {
            const fw1 = await firewallPackets(state, accountId);
            const f = await flood(frames[path], true);
            const fwFlood = (await settledFirewallPackets(state, accountId)) - fw1;
            fw[path] += fwFlood;
            // Every frame that reached the host crossed the customer firewall (full, no-GRE) or none did (baseline).
            if (path === 'base' ? fwFlood !== 0 : fwFlood < f.sunk) {
              throw new Error(`${path} flood: the customer firewall counted ${fwFlood} packets while ${f.sunk} frames reached the host: the flood did not take the ${path} path`);
            }
            const kpps = f.received / f.seconds / 1000;
            const perCpu = f.received / f.pathCpuSeconds / 1000;
            // Spilled: part of the path ran on the other CPU (a NAPI polled there) — frames lost between the
            // stages, and CPU time this flood's figures do not see. Such a flood measures the pipeline, not the
            // path: it is recorded, counted and tried again, never in the medians.
            const spilled = f.onCpu < SPILL_ON_CPU || f.received < f.sent * SPILL_ARRIVED;
            floodDetail.push({
              path, round: r + 1, flood: k + 1, attempt: attempt + 1, spilled, sent: f.sent, seconds: f.seconds, received: f.received, received_kpps: kpps, sent_kpps: f.sent / f.seconds / 1000,
              first_hop_received: f.firstHop, sink_dropped: f.sunk, firewall_packets: fwFlood,
              generator_thread_cpu_s: f.cpuSeconds, ksoftirqd_cpu_s: f.softirqdSeconds, received_kpps_per_cpu_s: perCpu, softirq_packets_on_generator_cpu: f.onCpu,
            });
            ctx.log(`  flood ${k + 1}/${floodsPerRound} ${path}${attempt ? ` (try ${attempt + 1})` : ''}: ${f.received}/${f.sent} arrived in ${f.seconds.toFixed(2)} s = ${Math.round(kpps)} kpps; ${f.pathCpuSeconds.toFixed(2)} CPU-s on CPU ${floodCpu} = ${Math.round(perCpu)} kpps per CPU-s; ${(100 * f.onCpu).toFixed(0)} % of softirq packets on that CPU; site router took ${f.firstHop}${spilled ? '; SPILLED (not counted)' : ''}`);
            allFloods[path]++;
            if (spilled) {
              spills[path]++;
              continue;
            }
            clean = true;
            runs[`${path}_flood_kpps`].push(kpps);
            runs[`${path}_arrived`].push(f.received / f.sent);
            runs[`${path}_kpps_per_cpu`].push(perCpu);
           }
           if (!clean) {
             // Keeps the per-slot arrays aligned for the adjacent-flood ratios; medians skip it.
             for (const key of [`${path}_flood_kpps`, `${path}_arrived`, `${path}_kpps_per_cpu`] as const) runs[key].push(NaN);
           }
          }
        }
        } finally {
          await unpin();
        }
      }
      const load1 = loadavg();
      const fastPathAfter = edgeFastPath(state);
      // The proof that each path is what it says: the customer firewall counted the full path, not the baseline.
      if (fw.full === 0) throw new Error('the customer firewall counted no packet during the full-path runs: traffic did not take the customer path');
      if (fw.nogre === 0) throw new Error('the customer firewall counted no packet during the no-GRE runs: traffic did not take the customer path');
      if (fw.base !== 0) throw new Error(`the customer firewall counted ${fw.base} packets during the baseline runs: the baseline is not plain routing`);

      // A slot whose every try spilled is NaN: out of the medians (and of the ratios it would pair in).
      const finite = (v: number[]) => v.filter((x) => Number.isFinite(x));
      for (const p of ['full', 'base', 'nogre'] as const) {
        if (finite(runs[`${p}_flood_kpps`]).length === 0) throw new Error(`every ${p} flood spilled onto the other CPU (${spills[p]} of ${allFloods[p]}): no clean flood to report`);
      }
      const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, finite(v).length ? median(finite(v)) : NaN])) as Record<keyof typeof runs, number>;
      const perRound = (a: number[], b: number[]) => finite(a.map((x, i) => x / b[i]!));
      const spillNote = `spilled floods (not counted, each tried again up to ${spillRetries} times): full ${spills.full} of ${allFloods.full}, baseline ${spills.base} of ${allFloods.base}, no-GRE ${spills.nogre} of ${allFloods.nogre}`;
      ctx.log(spillNote);
      const spread = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
      const ratios = {
        full_vs_base: perRound(runs.full_flood_kpps, runs.base_flood_kpps), full_vs_nogre: perRound(runs.full_flood_kpps, runs.nogre_flood_kpps),
        per_cpu_full_vs_base: perRound(runs.full_kpps_per_cpu, runs.base_kpps_per_cpu), per_cpu_full_vs_nogre: perRound(runs.full_kpps_per_cpu, runs.nogre_kpps_per_cpu),
        tcp_full_vs_base: perRound(runs.full_tcp_gbps, runs.base_tcp_gbps),
        tcp_cpu_full_vs_base: perRound(runs.base_tcp_cpu_s_per_gbit, runs.full_tcp_cpu_s_per_gbit),
        tcp128k_full_vs_base: perRound(runs.full_tcp128k_gbps, runs.base_tcp128k_gbps),
      };
      const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
      ctx.log(`flood kpps (median of the clean floods): full ${Math.round(m.full_flood_kpps)}, baseline ${Math.round(m.base_flood_kpps)}, no-GRE ${Math.round(m.nogre_flood_kpps)}; generator alone ${Math.round(m.generator_only_kpps)}`);
      ctx.log(`per CPU-second (kpps): full ${Math.round(m.full_kpps_per_cpu)}, baseline ${Math.round(m.base_kpps_per_cpu)}, no-GRE ${Math.round(m.nogre_kpps_per_cpu)}; generator alone ${Math.round(m.generator_only_kpps_per_cpu)}`);
      ctx.log(`arrived: full ${pct(m.full_arrived)}, baseline ${pct(m.base_arrived)}, no-GRE ${pct(m.nogre_arrived)}; ratios of adjacent floods, median (min–max): full/base ${spread(ratios.full_vs_base)} (per CPU-s ${spread(ratios.per_cpu_full_vs_base)}), full/no-GRE ${spread(ratios.full_vs_nogre)} (per CPU-s ${spread(ratios.per_cpu_full_vs_nogre)}); load ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}`);
      // TCP varies far more than the floods (one stream, both CPUs busy): the ratio of each round's pair says how much.
      ctx.log(`TCP full/base per pair of runs, median (min–max): ${spread(ratios.tcp_full_vs_base)}; CPU per Gbit, base/full: ${spread(ratios.tcp_cpu_full_vs_base)}${tcp128kPerRound > 0 ? `; with 128 KiB writes ${spread(ratios.tcp128k_full_vs_base)}` : ''}`);
      const floodNote = `xdp_flood: ${floodPackets} identical 60-byte frames (UDP to port ${FLOOD_PORT}) out of the client's link at the kernel's speed; packets the customer host's interface received (rx counter, settled) ÷ flood duration, median of the ${finite(runs.full_flood_kpps).length} full / ${finite(runs.base_flood_kpps).length} baseline floods that stayed on CPU ${floodCpu} (spilled floods left out: details.flood)`;
      const metrics = [
        metric({
          name: 'tcp_throughput', value: m.full_tcp_gbps, unit: 'Gbit/s', better: 'higher',
          baseline: { label: 'plain routing, same hops', value: m.base_tcp_gbps }, goal: { on: 'ratio', op: '>=', target: 0.85 },
          note: `iperf3 TCP, one stream, ${seconds} s, ${tcpWrite}-byte writes (iperf3 -l), median of ${runs.full_tcp_gbps.length} (${repeats} rounds × ${tcpPerRound}, paths interleaved); client netns → customer host netns; client on CPU ${tcpCpus[0]}, server on CPU ${tcpCpus[1]} (iperf3 -A)`,
        }),
        ...(tcp128kPerRound > 0
          ? [
              metric({
                name: 'tcp_throughput_128k_writes', value: m.full_tcp128k_gbps, unit: 'Gbit/s', better: 'higher',
                baseline: { label: 'plain routing, same hops', value: m.base_tcp128k_gbps },
                note: `informational, no goal: the same as tcp_throughput with iperf3's default 128 KiB writes, median of ${runs.full_tcp128k_gbps.length} (${repeats} rounds × ${tcp128kPerRound}); at the full path's MSS each write ends in a 2-segment burst (the header says why this is not the path's figure)`,
              }),
            ]
          : []),
        metric({
          name: 'tcp_cpu_per_gbit', value: m.full_tcp_cpu_s_per_gbit, unit: 'CPU-s/Gbit', better: 'lower',
          baseline: { label: 'plain routing, same hops', value: m.base_tcp_cpu_s_per_gbit },
          note: 'the same TCP runs: CPU-seconds of both CPUs (/proc/stat: busy = not idle, not iowait) per gigabit delivered — the whole lab\'s cost of moving the stream (client, routers, edge, customer router, server); ratio = baseline ÷ full',
        }),
        metric({
          name: 'udp_60b_pps', value: m.full_flood_kpps, unit: 'kpps', better: 'higher',
          baseline: { label: 'plain routing, same hops', value: m.base_flood_kpps }, goal: { on: 'ratio', op: '>=', target: 0.85 },
          note: floodNote,
        }),
        metric({
          name: 'udp_60b_pps_vs_no_gre', value: m.full_flood_kpps, unit: 'kpps', better: 'higher',
          baseline: { label: 'customer path without GRE', value: m.nogre_flood_kpps },
          note: `encap+decap path ÷ the same customer path (XDP, mark, netns, nft) routed plainly to ${NOGRE_ADDR}`,
        }),
        metric({
          name: 'udp_60b_pps_per_cpu', value: m.full_kpps_per_cpu, unit: 'kpps/CPU-s', better: 'higher',
          baseline: { label: 'plain routing, same hops', value: m.base_kpps_per_cpu },
          note: `the same floods, packets received per CPU-second spent on the generator's CPU (its thread incl. the softirq work run in its context, + ksoftirqd/${floodCpu}): less sensitive to other load than wall time; work polled on the other CPU is not counted (details.flood: softirq_packets_on_generator_cpu)`,
        }),
        metric({
          name: 'udp_60b_pps_per_cpu_vs_no_gre', value: m.full_kpps_per_cpu, unit: 'kpps/CPU-s', better: 'higher',
          baseline: { label: 'customer path without GRE', value: m.nogre_kpps_per_cpu },
        }),
        metric({ name: 'udp_60b_spilled_floods', value: spills.full + spills.base + spills.nogre, unit: 'floods', better: 'lower', note: `${spillNote}; of ${allFloods.full + allFloods.base + allFloods.nogre} floods in all` }),
        metric({ name: 'udp_60b_arrived_full', value: m.full_arrived, unit: 'fraction', better: 'none', note: 'of the flood\'s frames, the fraction that reached the customer host (the rest was dropped on the way, mostly where the generator outran the path)' }),
        metric({ name: 'udp_60b_arrived_baseline', value: m.base_arrived, unit: 'fraction', better: 'none' }),
        metric({ name: 'udp_60b_arrived_no_gre', value: m.nogre_arrived, unit: 'fraction', better: 'none' }),
        metric({ name: 'udp_60b_generator_only', value: m.generator_only_kpps, unit: 'kpps', better: 'none', note: 'frames sent per second into the same device with nothing behind it: the generator\'s share of every flood (it shares the CPU with the path); wall time, incl. a fixed ~20–40 ms of set-up per flood' }),
        metric({ name: 'udp_60b_generator_only_per_cpu', value: m.generator_only_kpps_per_cpu, unit: 'kpps/CPU-s', better: 'none', note: `the same per CPU-second of the generator's thread: ${(100 * m.full_kpps_per_cpu / m.generator_only_kpps_per_cpu).toFixed(1)} % of the full path's CPU time per packet is the generator's` }),
        metric({
          name: 'tcp_throughput_vs_no_gre', value: m.full_tcp_gbps, unit: 'Gbit/s', better: 'higher',
          baseline: { label: 'customer path without GRE', value: m.nogre_tcp_gbps },
          note: 'the same, TCP (the no-GRE path has a 1500-byte MTU; its replies return plainly)',
        }),
        ...(iperfUdp
          ? [metric({
            name: 'udp_60b_iperf3_goodput', value: m.full_iperf3_udp_kpps, unit: 'kpps', better: 'higher',
            baseline: { label: 'plain routing, same hops', value: m.base_iperf3_udp_kpps },
            note: `informational, no goal: iperf3 -u -l ${UDP_PAYLOAD} -b 0, datagrams the server received per second, median of ${repeats}; mostly the iperf3 receiver and CPU scheduling (45–90 % lost at the socket)`,
          })]
          : []),
      ];
      return {
        params: { seconds, repeats, tcp_per_round: tcpPerRound, tcp_write: tcpWrite, tcp_128k_per_round: tcp128kPerRound, tcp_cpus: tcpCpus.join(','), lan: lanMode, udp_payload_bytes: UDP_PAYLOAD, frame_bytes: frames.full.length, flood_packets: floodPackets, floods_per_round: floodsPerRound, flood_cpu: floodCpu, iperf3_udp: iperfUdp },
        metrics,
        notes: [
          'The lab shares this machine\'s CPUs (2 here) between every namespace: sender, receiver, routers and the edge all compete, so read the ratios, not the absolute figures.',
          `Full path: client → site router → edge XDP (mark) → customer netns (nftables firewall, routes) → eBPF GRE encap → site router → core → customer router (tc GRE decap) → host; replies return through the tunnel to the anycast endpoint and the edge\'s XDP decap.`,
          `Baseline: ${BASELINE_ADDR} on the same customer host, static routes over the same namespaces in both directions (site router → edge → site router via a policy rule on iif → core → customer router → host, and back through the edge). It still crosses the edge's XDP program (passed: not a customer prefix) and the edge host's nft prerouting chain; no customer netns, no firewall, no GRE, MTU 1500 (the tunnel's is 1476 with MSS clamping).`,
          'Checked in the run: the customer firewall\'s counters rise during the full-path and no-GRE runs and stay still during the baseline runs; during each full/no-GRE flood they count at least every frame that reached the host.',
          lanMode === 'routed'
            ? 'The customer router reaches its host by a routed link, not the lab\'s LAN bridge (all paths alike): on this kernel the stand-in customer router\'s BPF decap leaves the skb marked encapsulated, and a bridge would segment every decapsulated TCP super-packet again in software, a cost of the lab\'s customer router that kernel GRE does not have (see routeCustomerLan). --set full-path.lan=bridge measures with the bridge.'
            : 'The customer router reaches its host through the lab\'s LAN bridge (lan=bridge): decapsulated TCP super-packets are segmented again by the bridge (kernel 6.18 BPF decap leaves the skb marked encapsulated), the baseline\'s are not.',
          `No-GRE path: ${NOGRE_ADDR} (inside the customer prefix, allowed by the same firewall rule) takes XDP → mark → customer netns → nft like the full path, then a static /32 route in the customer netns sends it back out of edge0 unencapsulated and on by plain static routes (site router → core → customer router → host); its replies return plainly through the edge (no tunnel, no XDP decap). A second lab host address, rules of the benchmark's own (edge host: iif <veth> lookup main before the fwmark rule; customer router: from ${NOGRE_ADDR} lookup main before the tunnel rule). Kernel GRE (ip_gre) is not built into this kernel, so the "without GRE" path is this one.`,
          `udp_60b_pps: ${floodsPerRound} floods per round × ${repeats} rounds per path, the three paths interleaved within each (medians; per-flood figures in details.flood, per-pair ratios in details.flood_ratio_per_round). xdp_flood (bench/c, BPF_PROG_RUN live frames, XDP_TX) sends ${floodPackets} copies of one 60-byte frame (client MAC → the site router's MAC, ${topology().clients[0]!.address} → the destination, UDP ${FLOOD_SPORT} → ${FLOOD_PORT}, valid checksums) out of the client's link; rate = packets the customer host's interface received (its rx counter, read once it stopped moving) ÷ the flood's duration; arrived = received ÷ sent. One flow, identical frames: caches stay hot, no ECMP spread.`,
          `Floods that spilled onto the other CPU (under ${100 * SPILL_ON_CPU} % of the flood's softirq packets on CPU ${floodCpu}, or under ${100 * SPILL_ARRIVED} % of the frames arrived: a NAPI of the path polled on the other CPU and the path ran as a two-CPU pipeline that loses frames) are recorded in details.flood (spilled: true), counted and tried again, and left out of every median and ratio, for all paths alike; ${spillNote}. During the floods (not the TCP runs) the lab's own processes (BIRD, iperf3 servers) are pinned to CPU ${floodCpu}, so that the BFD/BGP packets they send do not schedule a NAPI of the path on the other CPU.`,
          `Sink, the same for all three destinations: an nftables netdev ingress rule on the host's interface (table ${SINK_TABLE}: udp dport ${FLOOD_PORT} counter drop), so no socket, no ICMP answer, and the host's own share is one hook; its counter agrees with the rx counter (details.flood: sink_dropped).`,
          `Where the work runs: the generator is pinned to CPU ${floodCpu}; after each batch it hands over, the kernel runs the receiving NAPI polls and every veth hop after them in softirq on that CPU, in the generator's own context (or ksoftirqd/${floodCpu} when it defers), so a flood's rate is 1 / (generator + path) per packet. Not always: a NAPI already scheduled on the other CPU (by any packet) keeps polling there while it has work, and the path then runs as a pipeline over both CPUs (details.flood: softirq_packets_on_generator_cpu), with frames lost where a stage's ring or backlog (netdev_max_backlog 1000) overflows (arrived < 1). udp_60b_generator_only is the generator alone (the same device with no NAPI behind it refuses every frame at once): its share of each path's time per packet.`,
          'Rates are wall-clock (udp_60b_pps, the goal) and per CPU-second on the generator\'s CPU (udp_60b_pps_per_cpu: the generator thread\'s CPU time, which includes the softirq work run in its context as this kernel has no IRQ time accounting, plus ksoftirqd on that CPU): with other load on the machine, wall time also counts the time the generator waited for a CPU.',
          'The site router holds static /32 routes for the two customer addresses and the customer router (next hops as BGP gave them): a flood fills the site router → edge ring, BFD packets are lost with it, and the edge\'s BGP routes vanished for seconds mid-flood (the full path measured "no route") while the static baseline went on.',
          `The site router's device facing the client (${link.siteDev}) gets GRO on during the path floods only, and back to ${siteGro ? 'on' : 'off'} (as the lab made it) for everything else: a veth accepts XDP-transmitted frames only when it has NAPI (GRO or an XDP program). GRO does not merge forwarded UDP (rx-udp-gro-forwarding stays off), so every frame is forwarded on its own.`,
          'xdp_flood runs with --rewrite: live-frames mode recycles its pages, and a forwarded frame comes back with the router\'s Ethernet header and a decremented TTL written over it; the program writes the frame afresh each time (a few ns, in the generator\'s share).',
          `The edge's fast-path shortcuts (ot_config.flags, which the agent sets from the host's rules and routes: src/agent/reconcile/dataplane-fib.ts) were ${fastPathBefore.shortcuts.join(', ') || 'none'} before the runs and ${fastPathAfter.shortcuts.join(', ') || 'none'} after (details.edge_fast_path). The full path uses in (XDP's lookup straight into the customer table), gre (tc_host_fwd's lookup of its GRE straight into main) and src (no reverse lookup for a source that is not the host's); "all" is off here because of the no-GRE path's own rule on the edge (iif <veth> lookup main), which it might match.`,
          ...(iperfUdp ? ['udp_60b_iperf3_goodput (informational, the old figure): iperf3 -u -b 0 saturates the sender and most datagrams are lost at the receiving socket; it swung 0.33–0.65 between runs. No goal on it.'] : []),
        ],
        details: {
          runs, tcp: tcpDetail, flood: floodDetail, flood_ratio_per_round: ratios, iperf3_udp: udpDetail, firewall_packets: { full: fw.full, baseline: fw.base, no_gre: fw.nogre }, loadavg_before: load0, loadavg_after: load1,
          edge_fast_path: { before: fastPathBefore, after: fastPathAfter },
        },
      };
    } finally {
      if (keep) {
        for (const s of servers) s.unref();
        ctx.log(`lab ${LAB} left up (keep=1); iperf3 servers pids ${servers.map((s) => s.pid).join(' ')}; tear down: opentransit lab down -n ${LAB}`);
      } else {
        for (const s of servers) if (s.pid !== undefined && s.exitCode === null) s.kill('SIGTERM');
        await labDown(LAB).catch((e: unknown) => ctx.log(`lab down failed: ${e instanceof Error ? e.message : String(e)}`));
      }
    }
  },
});
