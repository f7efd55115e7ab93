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
 * The customer firewall's counters are read around every run: they must rise for the full and no-GRE paths and
 * stay still for the baseline, or the benchmark fails.
 *
 * The customer router reaches its host by a routed link rather than the lab's LAN bridge, for all paths alike
 * (routeCustomerLan says why; `--set full-path.lan=bridge` keeps the bridge). `--set full-path.lab=NAME` runs the
 * lab under another name, `--set full-path.keep=1` leaves it up afterwards for a look at the paths.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { CUSTOMER_VETH, HOST_LINK_ADDRESS, customerNetns, hostVethName } from '../src/agent/desired/node.js';
import { readRuleCounters } from '../src/kernel/nft.js';
import { listRoutes } from '../src/kernel/routes.js';
import { edgeNetnsPrefix } from '../src/lab/agents.js';
import { labDown, labExec, labStatus, labUp } from '../src/lab/lab.js';
import type { LabState } from '../src/lab/state.js';
import { metric, numberParam, registerBenchmark } from './lib/registry.js';
import { median, sleep } from './lib/stats.js';

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
    rules: [{ action: 'allow', expression: `(ip.dst == ${HOST_ADDR} or ip.dst == 203.0.113.101) and (tcp.dstport == ${PORT} or udp.dstport == ${PORT})` }],
  },
};

async function run(cmd: string, argv: string[]): Promise<void> {
  await promisify(execFile)(cmd, argv, { timeout: 30_000 });
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

interface IperfEnd {
  end?: { sum_received?: { bits_per_second: number }; sum?: { packets?: number; lost_packets?: number; seconds?: number } };
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

async function tcpGbps(dst: string, seconds: number): Promise<number> {
  const j = await iperf(dst, [], seconds);
  const bps = j.end?.sum_received?.bits_per_second;
  if (!bps) throw new Error(`iperf3 TCP to ${dst}: no sum_received in the result`);
  return bps / 1e9;
}

/** Received small-packet rate: packets the server got (sent − lost, as the server reports) per second. */
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
  const edge = state.plan.edges[0]!;
  const edgeAddr = edge.uplink.address.split('/')[0]!;
  const siteRouter = edge.router.host;
  const siteUplink = state.plan.hosts.find((h) => h.name === siteRouter)!.interfaces.find((i) => i.name === 'uplink')!;
  const cust = state.plan.customers[0]!;
  const custRouter = state.plan.hosts.find((h) => h.name === cust.routerHost)!;
  const custUplink = custRouter.interfaces.find((i) => i.name === 'uplink')!;
  const coreDev = custUplink.peerInterface;
  const edgeDev = state.plan.hosts.find((h) => h.name === siteRouter)!.interfaces.find((i) => i.peerHost === edge.name)!.name;
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
  const edge = state.plan.edges[0]!;
  const edgeAddr = edge.uplink.address.split('/')[0]!;
  const siteRouter = state.plan.hosts.find((h) => h.name === edge.router.host)!;
  const siteUplink = siteRouter.interfaces.find((i) => i.name === 'uplink')!;
  const edgeDev = siteRouter.interfaces.find((i) => i.peerHost === edge.name)!.name;
  const cust = state.plan.customers[0]!;
  const custUplink = state.plan.hosts.find((h) => h.name === cust.routerHost)!.interfaces.find((i) => i.name === 'uplink')!;
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
  description: 'client → customer host through XDP + customer netns + nft + GRE, vs plain routing over the same lab hops: TCP Gb/s, 60-byte UDP pps',
  order: 60,
  async run(ctx) {
    const seconds = numberParam(ctx, 'seconds', 5, 1);
    const repeats = numberParam(ctx, 'repeats', 3, 1);
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
            await tcpGbps(dst, 1);
            return true;
          } catch {
            return undefined;
          }
        });
      }

      const runs = { full_tcp_gbps: [] as number[], base_tcp_gbps: [] as number[], full_udp_kpps: [] as number[], base_udp_kpps: [] as number[], nogre_tcp_gbps: [] as number[], nogre_udp_kpps: [] as number[] };
      const udpDetail: unknown[] = [];
      let fwFull = 0;
      let fwBase = 0;
      let fwNogre = 0;
      // Interleaved (full, baseline, no-GRE, full, …) so drift on the shared CPUs hits every path alike.
      for (let r = 0; r < repeats; r++) {
        for (const [path, dst] of [['full', HOST_ADDR], ['base', BASELINE_ADDR], ['nogre', NOGRE_ADDR]] as const) {
          const fw0 = await firewallPackets(state, accountId);
          ctx.log(`round ${r + 1}/${repeats}: ${path} path (${dst}) TCP ${seconds} s, UDP ${seconds} s`);
          runs[`${path}_tcp_gbps`].push(await tcpGbps(dst, seconds));
          const u = await udpKpps(dst, seconds);
          runs[`${path}_udp_kpps`].push(u.kpps);
          udpDetail.push({ path, round: r + 1, received_kpps: u.kpps, sent_kpps: u.sentKpps, loss: u.loss });
          const hits = (await firewallPackets(state, accountId)) - fw0;
          if (path === 'full') fwFull += hits;
          else if (path === 'base') fwBase += hits;
          else fwNogre += hits;
        }
      }
      // The proof that each path is what it says: the customer firewall counted the full path, not the baseline.
      if (fwFull === 0) throw new Error('the customer firewall counted no packet during the full-path runs: traffic did not take the customer path');
      if (fwNogre === 0) throw new Error('the customer firewall counted no packet during the no-GRE runs: traffic did not take the customer path');
      if (fwBase !== 0) throw new Error(`the customer firewall counted ${fwBase} packets during the baseline runs: the baseline is not plain routing`);

      const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<keyof typeof runs, number>;
      return {
        params: { seconds, repeats, lan: lanMode, udp_payload_bytes: UDP_PAYLOAD, frame_bytes: UDP_PAYLOAD + 8 + 20 + 14 },
        metrics: [
          metric({
            name: 'tcp_throughput', value: m.full_tcp_gbps, unit: 'Gbit/s', better: 'higher',
            baseline: { label: 'plain routing, same hops', value: m.base_tcp_gbps }, goal: { on: 'ratio', op: '>=', target: 0.85 },
            note: `iperf3 TCP, one stream, ${seconds} s, median of ${repeats}; client netns → customer host netns`,
          }),
          metric({
            name: 'udp_60b_pps', value: m.full_udp_kpps, unit: 'kpps', better: 'higher',
            baseline: { label: 'plain routing, same hops', value: m.base_udp_kpps }, goal: { on: 'ratio', op: '>=', target: 0.85 },
            note: `iperf3 -u -l ${UDP_PAYLOAD} -b 0 (60-byte frames): packets the server received per second, median of ${repeats}`,
          }),
          metric({
            name: 'udp_60b_pps_vs_no_gre', value: m.full_udp_kpps, unit: 'kpps', better: 'higher',
            baseline: { label: 'customer path without GRE', value: m.nogre_udp_kpps },
            note: `encap+decap path ÷ the same customer path (XDP, mark, netns, nft) routed plainly to ${NOGRE_ADDR}`,
          }),
          metric({
            name: 'tcp_throughput_vs_no_gre', value: m.full_tcp_gbps, unit: 'Gbit/s', better: 'higher',
            baseline: { label: 'customer path without GRE', value: m.nogre_tcp_gbps },
            note: 'the same, TCP (the no-GRE path has a 1500-byte MTU; its replies return plainly)',
          }),
        ],
        notes: [
          'The lab shares this machine\'s CPUs (2 here) between every namespace: sender, receiver, routers and the edge all compete, so read the ratios, not the absolute figures.',
          `Full path: client → site router → edge XDP (mark) → customer netns (nftables firewall, routes) → eBPF GRE encap → site router → core → customer router (tc GRE decap) → host; replies return through the tunnel to the anycast endpoint and the edge\'s XDP decap.`,
          `Baseline: ${BASELINE_ADDR} on the same customer host, static routes over the same namespaces in both directions (site router → edge → site router via a policy rule on iif → core → customer router → host, and back through the edge). It still crosses the edge's XDP program (passed: not a customer prefix) and the edge host's nft prerouting chain; no customer netns, no firewall, no GRE, MTU 1500 (the tunnel's is 1476 with MSS clamping).`,
          'Checked in the run: the customer firewall\'s counters rise during the full-path runs and stay still during the baseline runs.',
          lanMode === 'routed'
            ? 'The customer router reaches its host by a routed link, not the lab\'s LAN bridge (all paths alike): on this kernel the stand-in customer router\'s BPF decap leaves the skb marked encapsulated, and a bridge would segment every decapsulated TCP super-packet again in software, a cost of the lab\'s customer router that kernel GRE does not have (see routeCustomerLan). --set full-path.lan=bridge measures with the bridge.'
            : 'The customer router reaches its host through the lab\'s LAN bridge (lan=bridge): decapsulated TCP super-packets are segmented again by the bridge (kernel 6.18 BPF decap leaves the skb marked encapsulated), the baseline\'s are not.',
          `No-GRE path: ${NOGRE_ADDR} (inside the customer prefix, allowed by the same firewall rule) takes XDP → mark → customer netns → nft like the full path, then a static /32 route in the customer netns sends it back out of edge0 unencapsulated and on by plain static routes (site router → core → customer router → host); its replies return plainly through the edge (no tunnel, no XDP decap). A second lab host address, rules of the benchmark's own (edge host: iif <veth> lookup main before the fwmark rule; customer router: from ${NOGRE_ADDR} lookup main before the tunnel rule). Kernel GRE (ip_gre) is not built into this kernel, so the "without GRE" path is this one.`,
          'UDP with -b 0 saturates the sender; the received rate is what the path delivered while sender, path and receiver share the CPUs. Per-round rates vary a lot (details.runs, details.udp); medians of more rounds (--set full-path.repeats=N) are steadier.',
        ],
        details: { runs, udp: udpDetail, firewall_packets: { full: fwFull, baseline: fwBase, no_gre: fwNogre } },
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
