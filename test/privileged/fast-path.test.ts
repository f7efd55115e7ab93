/**
 * The eBPF fast path (bpf/lib/fastpath.h) against the real kernel, with the real agent and a real customer router:
 *
 *   client C ── R ── H.up0 (agent's host netns: XDP ot_xdp_edge and tc ingress ot_tc_uplink_in on up0; tc ingress
 *                 │                  ot_tc_host_fwd on the customer veth)
 *   198.51.100.50 │                 └─ veth ─ customer netns (firewall, routes, tc ot_tc_gre on edge0)
 *                 └── customer router CR (198.51.100.2: GRE decap/encap, return through the tunnel) ── host CH
 *                                                                                        203.0.113.100
 * What the fast path must prove, beside "it forwards": it changes nothing the host stack would have decided. An
 * observer nft table in H (prerouting, priority -300, named counters) shows which packets still cross the host
 * stack: SYNs and SYN-ACKs must (the host's `mss` chain clamps them, and both ends see the clamped MSS); nothing
 * else of a TCP stream or a UDP flow may (xdp_edge leaves inbound TCP to GRO, after which tc_uplink_in takes it). TTLs are compared with the slow path (fast path switched
 * off in ot_config); a destination the customer table says is unreachable and a TTL that expires at the host get
 * the stack's ICMP errors. Everything lives in namespaces and bpffs directories of this run, removed at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { CUSTOMER_VETH, NODE_DEFAULTS, customerNetns, hostVethName, type NodeConfig } from '../../src/agent/desired/node.js';
import {
  OT_CONFIG_F_FAST_PATH,
  OT_CONFIG_F_FIB_DIRECT,
  OT_CONFIG_F_FIB_DIRECT_GRE,
  OT_CONFIG_F_FIB_DIRECT_IN,
  OT_CONFIG_F_SRC_UNICAST,
} from '../../src/kernel/bpf/abi.generated.js';
import { lpmKey, type Dataplane } from '../../src/kernel/bpf/dataplane.js';
import { UPLINK_TC_FILTER } from '../../src/agent/reconcile/dataplane.js';
import { ifIndex, queryTc } from '../../src/kernel/bpf/index.js';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { readLinkFeatures } from '../../src/kernel/links.js';
import { inNetns } from '../../src/kernel/netns.js';
import { tsharkCapture } from '../../src/lab/tshark.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness, sysctlIn } from '../support/netns.js';
import { buildEdgeTopology } from '../support/edge-topology.js';
import { waitConverged, waitFor } from '../support/agent-wait.js';
import { acmeConfig, teardownAgentTest, testPinBase, withDataplane } from '../support/agent-fixture.js';
import { countersByReason, grew } from '../support/bpf-counters.js';
import { buildCustomerSite, startCustomerRouterGre } from '../support/customer-site.js';

const harness = netnsHarness();
const pinBase = testPinBase('fastpath');
const cpe = { node: 'fp', base: testPinBase('fastpath-cpe') };
let api: ApiFixture;
let agent: Agent | undefined;
let node: NodeConfig;
let dataDir: string;
const logs: string[] = [];
let H = '';
let R = '';
let C = '';
let CR = '';
let CH = '';

const ANYCAST = '192.0.2.10';
const CLIENT = '198.51.100.50';
const ROUTER = '198.51.100.2';
const ACME_HOST = '203.0.113.100';
const UNREACHABLE = '203.0.113.200';
// IPv6 inside the IPv4 tunnel: the client, the customer's prefix and host.
const CLIENT6 = '2001:db8:ffff::50';
const PREFIX6 = '2001:db8:100::/64';
const ACME_HOST6 = '2001:db8:100::100';

function startAgent(): Agent {
  return new Agent({ node, store: api.store, dataDir, resyncMs: 500, countersMs: 60_000, log: (m) => logs.push(m), bpf: { pinBase } });
}

/** Named counters in H, before the host's own chains: which packets still cross the host stack. */
const OBSERVER = `table inet ott_observe {
  counter in_tcp_syn {}
  counter in_tcp_other {}
  counter in_udp {}
  counter out_gre {}
  counter out_tcp_syn {}
  counter out_tcp_other {}
  counter in6_udp {}
  counter in6_tcp_syn {}
  counter in6_tcp_other {}
  counter out6_tcp_other {}
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname "up0" ip daddr 203.0.113.0/24 tcp flags & syn != 0 counter name "in_tcp_syn"
    iifname "up0" ip daddr 203.0.113.0/24 tcp flags & syn == 0 counter name "in_tcp_other"
    iifname "up0" ip daddr 203.0.113.0/24 meta l4proto udp counter name "in_udp"
    iifname != "up0" ip protocol gre ip daddr ${ROUTER} counter name "out_gre"
    iifname != "up0" ip saddr 203.0.113.0/24 tcp flags & syn != 0 counter name "out_tcp_syn"
    iifname != "up0" ip saddr 203.0.113.0/24 tcp flags & syn == 0 counter name "out_tcp_other"
    iifname "up0" ip6 daddr ${PREFIX6} meta l4proto udp counter name "in6_udp"
    iifname "up0" ip6 daddr ${PREFIX6} tcp flags & syn != 0 counter name "in6_tcp_syn"
    iifname "up0" ip6 daddr ${PREFIX6} tcp flags & syn == 0 counter name "in6_tcp_other"
    iifname != "up0" ip6 saddr ${PREFIX6} tcp flags & syn == 0 counter name "out6_tcp_other"
  }
}
`;

async function observed(): Promise<Record<string, number>> {
  const { stdout } = await run(inNetns(H, ['nft', '-j', 'list', 'counters', 'table', 'inet', 'ott_observe']));
  const out: Record<string, number> = {};
  for (const o of (JSON.parse(stdout) as { nftables: { counter?: { name: string; packets: number } }[] }).nftables)
    if (o.counter) out[o.counter.name] = o.counter.packets;
  return out;
}

const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-fastpath-test-'));
  const topology = await buildEdgeTopology(harness, { client: CLIENT, router: ROUTER, anycast: ANYCAST, prefix: '203.0.113.0/24', macByte: 0x1f });
  ({ H, R, C, CR } = topology);
  CH = await buildCustomerSite(harness, topology, { host: ACME_HOST, ipv6: true });
  await sysctlIn(R, 'net.ipv6.conf.all.forwarding=1');
  // IPv6 beside IPv4 on every link (documentation addresses, no DAD: routes must not wait for it).
  const addr6 = (ns: string, dev: string, cidr: string) => runIpOps(ns, [{ args: ['address', 'replace', cidr, 'dev', dev, 'nodad'] }]);
  await addr6(H, 'up0', '2001:db8:ff00::/127');
  await addr6(R, 'rh', '2001:db8:ff00::1/127');
  await addr6(R, 'rc', '2001:db8:ff00::2/127');
  await addr6(C, 'eth0', '2001:db8:ff00::3/127');
  await addr6(C, 'eth0', `${CLIENT6}/128`);
  await addr6(R, 'rcr', '2001:db8:ff00::4/127');
  await addr6(CR, 'eth0', '2001:db8:ff00::5/127');
  await addr6(CR, 'lan0', '2001:db8:100::1/64');
  await addr6(CH, 'eth0', `${ACME_HOST6}/64`);
  await runIpOps(H, [{ args: ['route', 'replace', 'default', 'via', '2001:db8:ff00::1'] }]);
  await runIpOps(C, [{ args: ['route', 'replace', 'default', 'via', '2001:db8:ff00::2', 'src', CLIENT6] }]);
  await runIpOps(CR, [{ args: ['route', 'replace', 'default', 'via', '2001:db8:ff00::4'] }]);
  await runIpOps(CH, [{ args: ['route', 'replace', 'default', 'via', '2001:db8:100::1'] }]);
  await runIpOps(R, [
    { args: ['route', 'replace', PREFIX6, 'via', '2001:db8:ff00::'] },
    { args: ['route', 'replace', `${CLIENT6}/128`, 'via', '2001:db8:ff00::3'] },
  ]);
  await startCustomerRouterGre(CR, cpe, { router: ROUTER, anycast: ANYCAST, prefixes: ['203.0.113.0/24', PREFIX6] });
  node = { ...NODE_DEFAULTS, nodeId: 'edge-fp', hostNetns: H, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  agent = startAgent();
  await agent.start();
});

after(() => teardownAgentTest({ agent, api, dataDir, harness, pinBase, customerRouter: { ...cpe, netns: CR } }));

const ACME = acmeConfig({ router: ROUTER, anycast: ANYCAST, firewall: { default_action: 'allow', rules: [] }, morePrefixes: [PREFIX6] });
let acmeId = '';
let acmeNumber = 0;

const context = () => logs.slice(-30).join('\n');

/** The agent's pinned data plane, opened for one call. */
const dataplane = <T>(fn: (dp: Dataplane) => T): T => withDataplane({ node: node.nodeId, base: pinBase }, fn);

/** Acme's counters by reason name, read from the pinned map. */
const acmeCounters = (account = acmeNumber): Record<string, number> => dataplane((dp) => countersByReason(dp.maps.counters, account));

/** The outer header's value of each field (tshark lists the quoted packet's after a comma). */
const outer = (row: string[]) => row.map((f) => f.split(',')[0]!);

/** UDP datagrams from C (python3), with a TTL of choice. */
async function sendUdp(dst: string, dport: number, o: { count?: number; ttl?: number; sport?: number } = {}): Promise<void> {
  const v6 = dst.includes(':');
  const py = [
    'import socket, time',
    `s = socket.socket(socket.${v6 ? 'AF_INET6' : 'AF_INET'}, socket.SOCK_DGRAM)`,
    v6 ? `s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ${o.ttl ?? 64})` : `s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ${o.ttl ?? 64})`,
    `s.bind(('${v6 ? '::' : '0.0.0.0'}', ${o.sport ?? 0}))`,
    `for i in range(${o.count ?? 1}):`,
    `    s.sendto(b'fast-path', (${JSON.stringify(dst)}, ${dport}))`,
    '    time.sleep(0.002)',
  ].join('\n');
  await run(inNetns(C, ['/usr/bin/python3', '-c', py]), { timeoutMs: 30_000 });
}

/**
 * The first datagrams of a path resolve its neighbours through the stack (the fast path needs them resolved). They
 * wait in neighbour queues (C's, R's, H's) after the sender has exited, so the counters a test snapshots next must
 * not see them late: wait until all of them reached the customer's host.
 */
async function warmUp(dst: string): Promise<void> {
  const cap = await tsharkCapture({ netns: CH, dev: 'eth0', filter: `udp and dst port 9999`, fields: ['udp.dstport'], count: 3, timeoutS: 20 });
  await sendUdp(dst, 9999, { count: 3 });
  assert.equal((await cap.done).length, 3, `the warm-up datagrams to ${dst} arrived`);
}

/** A TCP transfer from C to CH: the server counts the bytes and answers with the count. Returns its answer. */
async function tcpTransfer(port: number, bytes: number, host = ACME_HOST): Promise<string> {
  const server = [
    'import socket',
    's = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    `s.bind(('::', ${port})); s.listen(1); print('ready', flush=True)`,
    'c, _ = s.accept(); n = 0',
    'while True:',
    '    b = c.recv(65536)',
    '    if not b: break',
    '    n += len(b)',
    "c.sendall(str(n).encode()); c.close()",
  ].join('\n');
  const child = spawn('ip', ['netns', 'exec', CH, '/usr/bin/python3', '-c', server], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    });
    const client = [
      'import socket',
      `c = socket.create_connection((${JSON.stringify(host)}, ${port}), timeout=20)`,
      `c.sendall(b'x' * ${bytes}); c.shutdown(socket.SHUT_WR)`,
      'print(c.recv(100).decode())',
    ].join('\n');
    const { stdout } = await run(inNetns(C, ['/usr/bin/python3', '-c', client]), { timeoutMs: 30_000 });
    return stdout.trim();
  } finally {
    child.kill();
  }
}

/** Writes ot_config's fast-path flag (the agent is stopped meanwhile, or it would write it back). */
function setFastPathFlag(on: boolean): void {
  dataplane((dp) => {
    const cfg = dp.maps.config.get(0)!;
    dp.maps.config.set(0, { ...cfg, flags: on ? cfg.flags | OT_CONFIG_F_FAST_PATH : cfg.flags & ~OT_CONFIG_F_FAST_PATH });
  });
}

test('the agent attaches the fast path: tc ingress on the host-side veth and on the uplink, the fwmark in ot_config, GRO on the peer', async () => {
  acmeId = (await api.createAccount('acme')).id;
  const res = await api.call('PUT', `/v1/accounts/${acmeId}/config`, { body: ACME });
  assert.equal(res.statusCode, 200, res.body);
  await waitConverged(agent!, (res.json() as { revision: number }).revision, { context });
  assert.equal(agent!.snapshotStatus().accounts[acmeId]?.state, 'ok');
  dataplane((dp) => {
    const veth = hostVethName(acmeId);
    assert.equal(queryTc({ ifindex: ifIndex(veth, H), netns: H, direction: 'ingress' }), dp.tcHostFwd.id, 'the one pinned fast-path program');
    assert.equal(queryTc({ ifindex: ifIndex('up0', H), netns: H, direction: 'ingress', ...UPLINK_TC_FILTER }), dp.tcUplinkIn.id, 'the fast path in, at its own filter on the uplink');
    assert.deepEqual({ ...dp.maps.config.get(0)!, flags: dp.maps.config.get(0)!.flags & OT_CONFIG_F_FAST_PATH }, { sample_every: 0, flags: OT_CONFIG_F_FAST_PATH, fwmark: NODE_DEFAULTS.fwmark, fib_table: NODE_DEFAULTS.table });
    acmeNumber = dp.maps.prefixes.get(lpmKey('203.0.113.0/24'))!;
    assert.ok(acmeNumber >= 1);
  });
  // H's rules are the kernel's and ours, its routes plain: every shortcut of the fast path is on (direct table
  // lookups, no reverse lookup for non-local sources; fast-path-shortcuts.test.ts shows what turns them off), so
  // the tests below exercise them.
  const shortcuts = OT_CONFIG_F_FIB_DIRECT_IN | OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_FIB_DIRECT | OT_CONFIG_F_SRC_UNICAST;
  await waitFor('every shortcut of the fast path on', () => dataplane((dp) => ((dp.maps.config.get(0)?.flags ?? 0) & shortcuts) === shortcuts), { context });
  // XDP-redirected frames reach the customer netns only if the veth's peer has GRO on (DESIGN §2).
  assert.equal((await readLinkFeatures(customerNetns(node, acmeId), CUSTOMER_VETH)).gro, true);
  await run(inNetns(H, ['nft', '-f', '-']), { stdin: OBSERVER });
  // Neighbours: the first packets of a path resolve them through the stack (the fast path needs them resolved).
  await warmUp(ACME_HOST);
});

test('UDP to Acme takes the fast path in XDP and out of the host (GRE): no pass through the host stack', async () => {
  const b = acmeCounters();
  const o = await observed();
  const cap = await tsharkCapture({ netns: CH, dev: 'eth0', filter: 'udp and dst port 9000', fields: ['ip.src', 'ip.ttl', 'udp.checksum.status'], count: 50, timeoutS: 20 });
  await sendUdp(ACME_HOST, 9000, { count: 50 });
  const rows = await cap.done;
  assert.equal(rows.length, 50, 'every datagram arrived');
  for (const [src, ttl] of rows) assert.deepEqual([src, ttl], [CLIENT, '60'], 'TTL 64 less R, H, the customer netns and CR');
  const a = acmeCounters();
  const d = delta(o, await observed());
  assert.ok(grew(b, a, 'FORWARD_XDP') >= 50, `XDP forwarded them: ${JSON.stringify(a)}`);
  assert.ok(grew(b, a, 'FORWARD_HOST') >= 50, `tc_host_fwd forwarded their GRE: ${JSON.stringify(a)}`);
  assert.equal(grew(b, a, 'ENCAP_GRE'), grew(b, a, 'FORWARD_XDP'), 'every one went through the customer netns and its encap');
  assert.deepEqual([d.in_udp, d.out_gre], [0, 0], `the host stack saw none of them: ${JSON.stringify(d)}`);
});

test('TCP: inbound super-packets go from the uplink straight into the customer netns (tc_uplink_in, after GRO), SYN and SYN-ACK cross the host stack and arrive clamped, the return path takes the fast path', async () => {
  const b = acmeCounters();
  const o = await observed();
  const synAtHost = await tsharkCapture({ netns: CH, dev: 'eth0', filter: 'tcp port 8080 and tcp[tcpflags] & tcp-syn != 0', fields: ['tcp.flags.ack', 'tcp.options.mss_val'] });
  const synAckAtClient = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'tcp port 8080 and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack != 0', fields: ['tcp.options.mss_val'] });
  const bytes = 2_000_000;
  assert.equal(await tcpTransfer(8080, bytes), String(bytes), 'the whole stream arrived');
  assert.deepEqual((await synAtHost.done)[0], ['0', '1436'], 'the SYN arrives with the MSS the tunnel carries (1476 - 40)');
  assert.deepEqual((await synAckAtClient.done)[0], ['1436'], 'so does the SYN-ACK coming back');
  const a = acmeCounters();
  const d = delta(o, await observed());
  assert.ok(d.in_tcp_syn! >= 1 && d.out_tcp_syn! >= 1, `SYN and SYN-ACK took the host stack: ${JSON.stringify(d)}`);
  // xdp_edge leaves inbound TCP to the uplink's GRO (redirecting frame by frame would skip it); tc_uplink_in then
  // takes the super-packets, and the SYN it leaves to the host stack (the `mss` chain) counts as PASS_UPLINK.
  assert.equal(grew(b, a, 'FORWARD_XDP'), 0, `XDP redirected no TCP segment: ${JSON.stringify(a)}`);
  assert.ok(grew(b, a, 'FORWARD_UPLINK') >= 10, `tc_uplink_in forwarded the inbound stream: ${JSON.stringify(a)}`);
  assert.ok(grew(b, a, 'PASS_UPLINK') >= 1, `tc_uplink_in left the SYN to the host stack: ${JSON.stringify(a)}`);
  assert.equal(d.in_tcp_other, 0, `no other inbound TCP segment crossed the host stack: ${JSON.stringify(d)}`);
  assert.equal(d.out_tcp_other, 0, `no other returning TCP segment did: ${JSON.stringify(d)}`);
  assert.ok(d.out_gre! <= d.in_tcp_syn!, `of the GRE out, at most the SYNs' crossed the stack: ${JSON.stringify(d)}`);
  assert.ok(grew(b, a, 'FORWARD_HOST') > 10, JSON.stringify(a));
});

test('TCP super-packets keep their segment size through the encap: on the wire, full 1436-byte-MSS segments in 1500-byte GRE packets, checksums good', async () => {
  // R segments (and checksums) the tunnel's GSO packets in software towards CR, so the capture there is the wire.
  await run(inNetns(R, ['ethtool', '-K', 'rcr', 'tx', 'off']));
  try {
    const cap = await tsharkCapture({
      netns: CR, dev: 'eth0', filter: `ip proto 47 and ip dst ${ROUTER}`, count: 400, timeoutS: 20,
      fields: ['frame.len', 'ip.len', 'ip.checksum.status', 'tcp.len', 'tcp.checksum.status', 'tcp.options.timestamp.tsval'],
    });
    const bytes = 2_000_000;
    assert.equal(await tcpTransfer(8083, bytes), String(bytes), 'the whole stream arrived');
    const rows = (await cap.done).filter((r) => r[3] !== '' && r[3] !== '0');
    assert.ok(rows.length > 100, `data segments captured: ${rows.length}`);
    for (const [frameLen, ipLen, ipCsum, , tcpCsum] of rows) {
      assert.ok(Number(frameLen) <= 1514 && Number(ipLen!.split(',')[0]) <= 1500, `a GRE packet within 1500 bytes: ${frameLen} ${ipLen}`);
      assert.equal(ipCsum, '1,1', 'outer and inner IPv4 checksums good');
      assert.equal(tcpCsum, '1', 'inner TCP checksum good');
    }
    // The clamped MSS is 1436; with timestamps (12 bytes of options) a full segment carries 1424. Shrinking gso_size
    // by the 24 bytes of GRE (bpf_skb_adjust_room without FIXED_GSO) would cap them at 1400.
    const ts = rows[0]![5] !== '';
    const full = Math.max(...rows.map((r) => Number(r[3])));
    assert.equal(full, ts ? 1424 : 1436, 'the largest segment is a full MSS');
    assert.equal(Math.max(...rows.map((r) => Number(r[0]))), 1514, 'so the largest GRE packet is exactly 1500 bytes');
  } finally {
    await run(inNetns(R, ['ethtool', '-K', 'rcr', 'tx', 'on']));
  }
});

test('IPv6 (inside the IPv4 tunnel): UDP takes the fast path both ways, TCP too (inbound after GRO); the SYN crosses the host stack, clamped', async () => {
  await warmUp(ACME_HOST6); // the host resolves the customer veth's IPv6 neighbour
  const b = acmeCounters();
  const o = await observed();
  const cap = await tsharkCapture({ netns: CH, dev: 'eth0', filter: 'ip6 and udp and dst port 9000', fields: ['ipv6.src', 'ipv6.hlim'], count: 50, timeoutS: 20 });
  await sendUdp(ACME_HOST6, 9000, { count: 50 });
  const rows = await cap.done;
  assert.equal(rows.length, 50, 'every datagram arrived');
  for (const [src, hlim] of rows) assert.deepEqual([src, hlim], [CLIENT6, '60'], 'hop limit 64 less R, H, the customer netns and CR');
  const syn = await tsharkCapture({ netns: CH, dev: 'eth0', filter: 'ip6 and tcp port 8082 and ip6[53] & 0x02 != 0', fields: ['tcp.options.mss_val'] });
  assert.equal(await tcpTransfer(8082, 1_000_000, ACME_HOST6), '1000000', 'the whole stream arrived');
  assert.deepEqual((await syn.done)[0], ['1416'], 'the SYN arrives with the MSS the tunnel carries (1476 - 60)');
  const a = acmeCounters();
  const d = delta(o, await observed());
  assert.equal(grew(b, a, 'FORWARD_XDP'), 50, `XDP redirected the datagrams, no TCP segment: ${JSON.stringify(a)}`);
  assert.ok(grew(b, a, 'FORWARD_HOST') >= 60, JSON.stringify(a));
  assert.equal(d.in6_udp, 0, `no datagram crossed the host stack: ${JSON.stringify(d)}`);
  assert.ok(d.in6_tcp_syn! >= 1, `the SYN crossed the host stack: ${JSON.stringify(d)}`);
  assert.ok(grew(b, a, 'FORWARD_UPLINK') >= 10, `tc_uplink_in forwarded the inbound stream: ${JSON.stringify(a)}`);
  assert.equal(d.in6_tcp_other, 0, `no other inbound TCP segment crossed the host stack: ${JSON.stringify(d)}`);
  assert.equal(d.out6_tcp_other, 0, `no returning TCP segment but the SYN-ACK crossed the host stack: ${JSON.stringify(d)}`);
});

test('IPv6 too big for the customer\'s route (MTU 1476): the host stack answers Packet Too Big, the client learns it', async () => {
  // bpf_fib_lookup checks only the device's MTU (and a locked route MTU); the route's 1476 comes from ot_delivery.
  const py = [
    'import socket, time',
    's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
    's.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO',
    `s.connect((${JSON.stringify(ACME_HOST6)}, 9004))`,
    'for i in range(3):',
    '  try: s.send(b"x" * (1500 - 48))',
    '  except OSError: pass',
    '  time.sleep(0.2)',
    'print(s.getsockopt(socket.IPPROTO_IPV6, 24))  # IPV6_MTU: the path MTU the kernel learnt',
  ].join('\n');
  const o = await observed();
  const { stdout } = await run(inNetns(C, ['/usr/bin/python3', '-c', py]));
  assert.equal(stdout.trim(), '1476');
  assert.ok(delta(o, await observed()).in6_udp! >= 1, 'the too-big datagram went to the host stack');
});

test('TTL: decremented once at the host, as the slow path does (fast path switched off for comparison)', async () => {
  const ttlAtHost = async () => {
    const cap = await tsharkCapture({ netns: CH, dev: 'eth0', filter: 'udp and dst port 9001', fields: ['ip.ttl'] });
    await sendUdp(ACME_HOST, 9001, { ttl: 10 });
    return (await cap.done)[0]![0];
  };
  const b = acmeCounters();
  const fast = await ttlAtHost();
  assert.equal(grew(b, acmeCounters(), 'FORWARD_XDP'), 1, 'the fast path carried it');
  await agent!.stop();
  agent = undefined;
  try {
    setFastPathFlag(false);
    const o = await observed();
    const b2 = acmeCounters();
    const slow = await ttlAtHost();
    assert.equal(grew(b2, acmeCounters(), 'FORWARD_XDP'), 0, 'switched off: the host stack carried it');
    assert.equal(delta(o, await observed()).in_udp, 1);
    assert.deepEqual([fast, slow], ['6', '6'], 'TTL 10 less R, H, the customer netns and CR, on both paths');
  } finally {
    setFastPathFlag(true);
    agent = startAgent();
    await agent.start();
  }
});

test('what the stack must answer still gets its answer: an unreachable destination, a TTL expiring at the host', async () => {
  // A hole in the customer table: the host stack answers "host unreachable"; the fast path must leave it to it.
  await runIpOps(H, [{ args: ['route', 'replace', 'unreachable', `${UNREACHABLE}/32`, 'table', String(node.table)] }]);
  const b = acmeCounters();
  const o = await observed();
  const unreach = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'icmp', fields: ['ip.src', 'icmp.type', 'icmp.code'] });
  await sendUdp(UNREACHABLE, 9002);
  assert.deepEqual(outer((await unreach.done)[0]!), ['100.64.0.0', '3', '1'], 'ICMP host unreachable from the host');
  // TTL 2: 1 when it reaches H, which must send Time Exceeded (RFC 1812) instead of forwarding.
  await new Promise((r) => setTimeout(r, 1100)); // the host's ICMP rate limit (1/s towards one destination)
  const expired = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'icmp', fields: ['ip.src', 'icmp.type', 'icmp.code'] });
  await sendUdp(ACME_HOST, 9003, { ttl: 2 });
  assert.deepEqual(outer((await expired.done)[0]!), ['100.64.0.0', '11', '0'], 'ICMP time exceeded from the host');
  assert.equal(grew(b, acmeCounters(), 'FORWARD_XDP'), 0, 'neither took the fast path');
  assert.equal(delta(o, await observed()).in_udp, 2, 'both went through the host stack');
  await runIpOps(H, [{ args: ['route', 'del', 'unreachable', `${UNREACHABLE}/32`, 'table', String(node.table)] }]);
});

test('off in ot_config: every packet is the host stack\'s again (what `--fast-path off` writes)', async () => {
  await waitFor('the restarted agent keeps the fast path on', () => dataplane((dp) => ((dp.maps.config.get(0)?.flags ?? 0) & OT_CONFIG_F_FAST_PATH) !== 0), { context });
  await agent!.stop();
  agent = undefined;
  node = { ...node, fastPath: false };
  agent = startAgent();
  await agent.start();
  await waitFor('the agent switched the fast path off', () => dataplane((dp) => dp.maps.config.get(0)?.flags === 0), { context });
  const b = acmeCounters();
  const b0 = acmeCounters(0);
  const o = await observed();
  assert.equal(await tcpTransfer(8081, 200_000), '200000');
  const a = acmeCounters();
  const d = delta(o, await observed());
  assert.deepEqual([grew(b, a, 'FORWARD_XDP'), grew(b, a, 'FORWARD_HOST'), grew(b, a, 'FORWARD_UPLINK')], [0, 0, 0], JSON.stringify(a));
  assert.ok(d.in_tcp_other! > 10 && d.out_tcp_other! > 10 && d.out_gre! > 10, JSON.stringify(d));
  // Switched off, tc_host_fwd stops before it looks the destination up: it counts under "no account".
  assert.ok(grew(b0, acmeCounters(0), 'PASS_HOST') > 10, 'tc_host_fwd counted what it left to the stack');
});
