/**
 * IPv6 inside IPv4 GRE, end to end in the lab: a client with an IPv6 address reaches a customer host's IPv6 address
 * by BGP anycast (IPv6 sessions beside the IPv4 ones), through an edge's customer namespace (IPv6 route via the
 * tunnel's link-local next hop → tc GRE encap) to the customer router, which decapsulates it; the replies go back
 * inside IPv4 GRE (either of Acme's tunnels, one per IPv6 flow label; a retransmission may change the label and
 * so the tunnel) and an edge decapsulates them. tshark at the customer router decodes GRE carrying
 * IPv6 (0x86dd) both ways with checksums validated. Also: IPv4 to the same host beside it; direct return (DSR) of
 * IPv6 by a second customer; the customer firewall on IPv6; the client learning the tunnel's path MTU (ICMPv6 Packet
 * Too Big from the edge); IPv6 route priorities choosing between two tunnels and equal ones sharing flows (ECMP),
 * as for IPv4. GRE from the customer router with an IPv6 inner source outside the customer's prefixes is dropped
 * and counted at the edges. Needs `make build`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { listNetns } from '../../src/kernel/netns.js';
import { openDataplane, readCounters } from '../../src/kernel/bpf/dataplane.js';
import { Reason } from '../../src/kernel/bpf/abi.generated.js';
import { labAgentPinBase } from '../../src/lab/agents.js';
import { labDown, labExec, labStatus, labUp, type LabStatus } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import { tsharkCapture } from '../../src/lab/tshark.js';
import { labRequest, type LabApi, waitAppliedOnEveryEdge } from '../support/lab-api.js';

const name = `v6${process.pid % 100000}`;
const ROUTER = '198.51.100.2';
const CLIENT6 = '2001:db8:ffff::100';
const HOST6 = '2001:db8:100::100';
const PREFIX6 = '2001:db8:100::/64';
/** Beta: a second customer whose router returns traffic directly (DSR), not through the tunnel. */
const BETA_ROUTER = '198.51.100.3';
const BETA6 = '2001:db8:200::100';
let state: LabState;
let status: LabStatus;
let acmeId = '';

const api: LabApi = (method, url, body) => labRequest(status, method, url, body);

/** Sum of one reason's packets over every edge (the account's counters and account 0's). */
function edgeCount(reason: Reason): number {
  let n = 0;
  for (const edge of Object.keys(status.edges)) {
    const dp = openDataplane({ node: edge, base: labAgentPinBase(name) });
    try {
      n += readCounters(dp.maps.counters).filter((c) => c.reason === reason).reduce((a, c) => a + Number(c.packets), 0);
    } finally {
      dp.close();
    }
  }
  return n;
}

type Route6 = { nexthop: string; priority: number; weight?: number };

/** Acme with two tunnels (one per anycast endpoint); the IPv4 prefix always over tunnel a, the IPv6 one as given. */
const config = (routes6: Route6[]) => ({
  account: 'acme',
  prefixes: [
    { cidr: '203.0.113.0/24', advertised: true },
    { cidr: PREFIX6, advertised: true },
  ],
  gre_tunnels: [
    { name: 'acme-a', customer_gre_endpoint: ROUTER, edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' },
    { name: 'acme-b', customer_gre_endpoint: ROUTER, edge_gre_endpoint: '192.0.2.11', interface_address: '10.200.0.2/31' },
  ],
  routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }, ...routes6.map((r) => ({ prefix: PREFIX6, ...r }))],
  // The customer firewall applies to IPv6 too: only the FTP port of the IPv6 host is let through.
  firewall: {
    default_action: 'block',
    rules: [
      { action: 'allow', expression: `ip.dst == ${HOST6} and (tcp.dstport == 21 or udp.dstport == 53)` },
      { action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport == 21' },
    ],
  },
});

/** Applies the IPv6 routes and waits until every edge applied them. */
async function applyRoutes6(routes6: Route6[]): Promise<void> {
  const put = await api('PUT', `/v1/accounts/${acmeId}/config`, config(routes6));
  assert.equal(put.status, 200, JSON.stringify(put.json));
  await waitAppliedOnEveryEdge(api, acmeId, put.json.revision as number, Object.keys(status.edges).length);
}

/** The TCP segments a lab host's kernel has retransmitted so far (RetransSegs: SYN, SYN-ACK and data, IPv4 and IPv6). */
async function retransSegs(host: string): Promise<number> {
  const r = await labExec(name, host, ['cat', '/proc/net/snmp']);
  assert.equal(r.exitCode, 0, r.stderr);
  const [head, values] = r.stdout.split('\n').filter((l) => l.startsWith('Tcp:')).map((l) => l.trim().split(/\s+/));
  const i = head?.indexOf('RetransSegs') ?? -1;
  assert.ok(i > 0 && values?.[i] !== undefined, `no Tcp RetransSegs in ${host}'s /proc/net/snmp: ${r.stdout}`);
  return Number(values![i]);
}

/**
 * Which return tunnel a connection rides: the customer router's multipath hash covers the IPv6 flow label, which is
 * the host's to choose. Linux keeps a connection's label until a retransmission (a SYN-ACK or RTO retransmit, or a
 * duplicate received: sk_rethink_txhash), then picks a new one, so under load one connection can move to the other
 * tunnel. Guaranteed, and checked here on the host's packets as captured (`[outer dst, flow label]` per packet): one
 * tunnel per flow label (a per-flow hash, never per packet), and a new label only if the client or the host
 * retransmitted (`retransmitted`: their RetransSegs growth). Returns the tunnel of each label seen.
 */
function returnTunnelsByLabel(packets: [string, string][], retransmitted: number): Map<string, string> {
  const tunnelsOf = new Map<string, Set<string>>();
  for (const [dst, label] of packets) tunnelsOf.set(label, (tunnelsOf.get(label) ?? new Set()).add(dst));
  const seen = JSON.stringify(packets);
  for (const [label, tunnels] of tunnelsOf) {
    assert.equal(tunnels.size, 1, `flow label ${label} rode one return tunnel, not ${[...tunnels].join(' and ')}: ${seen}`);
  }
  if (tunnelsOf.size > 1) {
    assert.ok(retransmitted > 0, `the host's flow label changed with no TCP retransmission at the client or the host: ${seen}`);
  }
  return new Map([...tunnelsOf].map(([label, tunnels]) => [label, [...tunnels][0]!]));
}

/** `flows` short IPv6 TCP connections from the client; per outer source address, how many GRE packets the router got. */
async function outerSources(flows: number): Promise<Map<string, number>> {
  const router = state.plan.customers[0]!;
  const cap = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip proto 47 and dst host ${ROUTER}`, count: flows, timeoutS: 20, fields: ['ip.src', 'ipv6.dst'] });
  const py = `import socket\nfor i in range(${flows}):\n  s = socket.create_connection(("${HOST6}", 21), timeout=3)\n  s.recv(100)\n  s.close()`;
  const r = await labExec(name, 'client', ['python3', '-c', py], { timeoutMs: 60_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  const out = new Map<string, number>();
  for (const [src, inner] of await cap.done) {
    assert.equal(inner, HOST6, 'IPv6 inside');
    out.set(src!, (out.get(src!) ?? 0) + 1);
  }
  return out;
}

/** Python at the client: one IPv6 TCP connection to the host's port 21, the banner, then `size` bytes echoed. */
const clientTcp6 = (size: number) =>
  [
    'import socket, sys',
    `s = socket.create_connection(("${HOST6}", 21), timeout=5)`,
    'f = s.makefile("rb")',
    'print(f.readline().decode().strip())',
    `data = bytes(i % 251 for i in range(${size}))`,
    's.sendall(data)',
    'got = f.read(len(data))',
    'print("echo ok" if got == data else "echo mismatch %d" % len(got))',
    'print(s.getsockname()[0])',
    'print(s.getsockname()[1], file=sys.stderr)', // the connection's port: which captured packets are its own
  ].join('\n');

before(async () => {
  ({ state } = await labUp({
    name,
    store: 'embedded',
    anycast_endpoints: ['192.0.2.10', '192.0.2.11'],
    sites: [{ name: 'chi', edges: 2 }],
    clients: [{ name: 'client', site: 'chi', address: '198.51.100.100', address6: CLIENT6 }],
    customers: [
      { name: 'acme', router: ROUTER, hosts: [{ name: 'ftp', address: '203.0.113.100', address6: HOST6, listen: ['tcp/21', 'udp/53'] }] },
      { name: 'beta', router: BETA_ROUTER, return: 'direct', hosts: [{ name: 'web', address: '198.18.0.100', address6: BETA6, listen: ['tcp/80'] }] },
    ],
  }));
  status = await labStatus(name);
  assert.equal(state.plan.ipv6, true);
  assert.ok(status.hosts.client!.addresses.includes(`${CLIENT6}/128`), JSON.stringify(status.hosts.client));
  assert.ok(status.hosts['acme-ftp']!.addresses.includes(`${HOST6}/64`), JSON.stringify(status.hosts['acme-ftp']));
  const created = await api('POST', '/v1/accounts', { name: 'acme' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  acmeId = created.json.id;
  await applyRoutes6([{ nexthop: '10.200.0.1', priority: 100 }, { nexthop: '10.200.0.3', priority: 200 }]);
  const beta = await api('POST', '/v1/accounts', { name: 'beta' });
  assert.equal(beta.status, 201, JSON.stringify(beta.json));
  const betaPut = await api('PUT', `/v1/accounts/${beta.json.id}/config`, {
    account: 'beta',
    prefixes: [
      { cidr: '198.18.0.0/24', advertised: true },
      { cidr: '2001:db8:200::/64', advertised: true },
    ],
    gre_tunnels: [{ name: 'beta-a', customer_gre_endpoint: BETA_ROUTER, edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.1.0/31' }],
    routes: [
      { prefix: '198.18.0.0/24', nexthop: '10.200.1.1', priority: 100 },
      { prefix: '2001:db8:200::/64', nexthop: '10.200.1.1', priority: 100 },
    ],
    firewall: { default_action: 'allow', rules: [] },
  });
  assert.equal(betaPut.status, 200, JSON.stringify(betaPut.json));
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await labExec(name, 'client', ['python3', '-c', `import socket\ntry:\n  print(socket.create_connection(("${HOST6}", 21), timeout=2).recv(100).decode().strip())\nexcept Exception as e:\n  print(e)`]);
    if (r.stdout.trim() === 'acme-ftp 21') break;
    assert.ok(Date.now() < deadline, `acme's IPv6 host not reachable from the client: ${r.stdout} ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 500));
  }
});

after(async () => {
  await labDown(name);
  assert.deepEqual(await listNetns(`otl-${name}-`), []);
});

test('an IPv6 TCP connection rides IPv4 GRE both ways: GRE 0x86dd on the wire, checksums good, replies decapsulated by an edge', async (t) => {
  const router = state.plan.customers[0]!;
  // The core's link to the customer router segments and checksums in software, as a real NIC would: GSO packets
  // (the edge's uplink GRO merges the client's segments; tc_gre encapsulates them whole, TCPv6 in GRE) are cut into
  // real segments there, so every packet tshark sees is one that a wire would carry, with final checksums. (Seen:
  // 1380-byte segments where the client sent 1404 — tc_gre's adjust_room took the GRE's 24 bytes off gso_size.)
  const off = await labExec(name, 'internet', ['ethtool', '-K', 'acme', 'tso', 'off', 'gso', 'off', 'tx', 'off']);
  assert.equal(off.exitCode, 0, off.stderr);
  const fields = ['ip.src', 'ip.dst', 'ip.checksum.status', 'gre.proto', 'ipv6.src', 'ipv6.dst', 'tcp.checksum.status', 'tcp.len', 'tcp.options.mss_val', 'ipv6.flow', 'tcp.dstport', 'tcp.srcport'];
  // Towards the customer (from the anycast endpoint) and back (from the customer router), captured apart. 8 packets
  // each way: the connection alone sends more than that both ways (handshake, banner, 5 segments of data), and a
  // connection of the set-up may still put a few packets of its own among them (below).
  const inbound = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip proto 47 and dst host ${ROUTER}`, count: 8, timeoutS: 20, fields });
  const outbound = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip proto 47 and src host ${ROUTER}`, count: 8, timeoutS: 20, fields });
  const decapBefore = edgeCount(Reason.REDIRECT_GRE);
  const retransBefore = (await retransSegs('client')) + (await retransSegs('acme-ftp'));
  // 6000 bytes each way: several full-size segments (MSS clamped to fit the tunnel) in both directions.
  const r = await labExec(name, 'client', ['python3', '-c', clientTcp6(6000)], { timeoutMs: 30_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['acme-ftp 21', 'echo ok', CLIENT6], 'the banner and the echo came back to the client IPv6 address');

  const [inRows, outRows] = [await inbound.done, await outbound.done];
  const retransmitted = (await retransSegs('client')) + (await retransSegs('acme-ftp')) - retransBefore;
  // This connection's own packets, by the client's port: a connection of the set-up may still send some (seen: a
  // whole handshake from another client port, then two ACKs, among the first six captured; who opened it is not
  // known), and those are not this one's. Every captured packet still gets the checks of the loop below.
  const port = r.stderr.trim().split('\n').pop();
  const ownIn = inRows.filter((x) => x[11] === port);
  const own = outRows.filter((x) => x[10] === port);
  assert.ok(ownIn.length > 0 && own.length > 0, `this connection's packets (port ${port}) among the captured: ${JSON.stringify({ inRows, outRows })}`);
  // The client's SYN, as it leaves the edge: its MSS clamped (host netns nft) to what the tunnel carries for IPv6.
  assert.equal(ownIn[0]![8], String(1476 - 60), `IPv6 MSS clamped to the tunnel: ${ownIn[0]!.join('|')}`);
  for (const [rows, ownRows, outerSrc, outerDsts, innerSrc, innerDst] of [
    // In: the edges' IPv6 route to Acme prefers tunnel a (priority 100), so always from its anycast endpoint.
    [inRows, ownIn, '192.0.2.10', [ROUTER], CLIENT6, HOST6],
    // Back through either tunnel: the customer router shares its return routes over both (per flow label: below).
    [outRows, own, ROUTER, ['192.0.2.10', '192.0.2.11'], HOST6, CLIENT6],
  ] as const) {
    assert.ok(ownRows.some((r) => Number(r[7]) > 0), `data packets, not only handshakes: ${JSON.stringify(ownRows)}`);
    for (const [ipSrc, ipDst, ipCsum, greProto, v6Src, v6Dst, tcpCsum, tcpLen] of rows) {
      const row = rows.map((x) => x.join('|')).join('\n');
      assert.equal(ipSrc, outerSrc, row);
      assert.ok((outerDsts as readonly string[]).includes(ipDst!), `outer destination one of ${outerDsts.join(', ')}: ${row}`);
      assert.equal(ipCsum, '1', `outer IPv4 header checksum good (tshark status 1): ${row}`);
      assert.equal(greProto, '0x86dd', `GRE carries IPv6: ${row}`);
      assert.equal(v6Src, innerSrc, row);
      assert.equal(v6Dst, innerDst, row);
      assert.equal(tcpCsum, '1', `inner TCP-over-IPv6 checksum good: ${row}`);
      assert.ok(Number(tcpLen) <= 1476 - 60, `segments fit the tunnel: ${row}`);
    }
  }
  // The flow-label rule is about one connection: its own packets only (above).
  const byLabel = returnTunnelsByLabel(own.map((x) => [x[1]!, x[9]!]), retransmitted);
  t.diagnostic(`return tunnel per flow label: ${JSON.stringify([...byLabel])}; TCP retransmissions: ${retransmitted}`);
  assert.ok(edgeCount(Reason.REDIRECT_GRE) - decapBefore >= 6, 'the replies were decapsulated by the edges');
});

test('a retransmitted SYN-ACK may move a connection to the other return tunnel: one tunnel per flow label, and the connection completes', async (t) => {
  const router = state.plan.customers[0]!;
  // The client drops the first SYN-ACK it receives — after the customer router's uplink, so tshark sees it — and the
  // host retransmits it with a new flow label (what load did to the test above now and then).
  const drop = [
    'table ip6 ot_e2e_drop {',
    '  chain in {',
    '    type filter hook input priority 0;',
    // numgen counts this rule's matches from 0: only the first SYN-ACK is 0 (mod a million).
    `    ip6 saddr ${HOST6} tcp sport 21 tcp flags & (syn | ack) == syn | ack numgen inc mod 1000000 == 0 counter drop`,
    '  }',
    '}',
  ].join('\n');
  const added = await labExec(name, 'client', ['nft', '-f', '-'], { stdin: drop });
  assert.equal(added.exitCode, 0, added.stderr);
  try {
    const outbound = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip proto 47 and src host ${ROUTER}`, count: 6, timeoutS: 30, fields: ['ip.dst', 'ipv6.flow', 'tcp.flags'] });
    const retransBefore = (await retransSegs('client')) + (await retransSegs('acme-ftp'));
    const r = await labExec(name, 'client', ['python3', '-c', clientTcp6(3000)], { timeoutMs: 30_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['acme-ftp 21', 'echo ok', CLIENT6]);
    const rows = await outbound.done;
    const retransmitted = (await retransSegs('client')) + (await retransSegs('acme-ftp')) - retransBefore;
    assert.ok(retransmitted > 0, 'the dropped SYN-ACK was retransmitted');
    const synAcks = rows.filter((x) => (Number(x[2]) & 0x12) === 0x12);
    assert.ok(synAcks.length >= 2, `the SYN-ACK and its retransmission on the wire: ${JSON.stringify(rows)}`);
    for (const [dst] of rows) assert.ok(['192.0.2.10', '192.0.2.11'].includes(dst!), `to an anycast endpoint of ours: ${JSON.stringify(rows)}`);
    const byLabel = returnTunnelsByLabel(rows.map((x) => [x[0]!, x[1]!]), retransmitted);
    t.diagnostic(`return tunnel per flow label: ${JSON.stringify([...byLabel])}; TCP retransmissions: ${retransmitted}`);
  } finally {
    const del = await labExec(name, 'client', ['nft', 'delete', 'table', 'ip6', 'ot_e2e_drop']);
    assert.equal(del.exitCode, 0, del.stderr);
  }
});

test('IPv4 beside IPv6: the same host answers over IPv4 through the same tunnel (dual-stack echo server)', async () => {
  const r = await labExec(name, 'client', ['python3', '-c', 'import socket\nprint(socket.create_connection(("203.0.113.100", 21), timeout=5).recv(100).decode().strip())']);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'acme-ftp 21');
});

test('direct return (DSR) for IPv6: in through the tunnel, replies straight from the customer router as plain IPv6', async () => {
  const router = state.plan.customers.find((c) => c.name === 'beta')!;
  const fields = ['ip.src', 'gre.proto', 'ipv6.src', 'ipv6.dst', 'tcp.checksum.status'];
  const inbound = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip proto 47 and dst host ${BETA_ROUTER}`, count: 3, timeoutS: 30, fields });
  const outbound = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: `ip6 and tcp and src host ${BETA6}`, count: 3, timeoutS: 30, fields });
  // Beta's account may still be converging on the edges: retry the connection until it answers.
  const py = `import socket, time\nfor i in range(60):\n  try:\n    print(socket.create_connection(("${BETA6}", 80), timeout=2).recv(100).decode().strip()); break\n  except Exception as e:\n    time.sleep(0.5)`;
  const r = await labExec(name, 'client', ['python3', '-c', py], { timeoutMs: 60_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'beta-web 80');
  for (const row of await inbound.done) assert.deepEqual(row.slice(0, 4), ['192.0.2.10', '0x86dd', CLIENT6, BETA6], 'in: IPv6 inside GRE from the anycast endpoint');
  for (const row of await outbound.done) assert.deepEqual(row, ['', '', BETA6, CLIENT6, '1'], 'out: plain IPv6 (no GRE), checksum good');
});

test('the customer firewall applies to IPv6: a port it does not allow is dropped in the customer netns', async () => {
  const r = await labExec(name, 'client', ['python3', '-c', `import socket\ntry:\n  socket.create_connection(("${HOST6}", 22), timeout=2)\n  print("connected")\nexcept Exception as e:\n  print(type(e).__name__)`]);
  assert.equal(r.stdout.trim(), 'TimeoutError', 'blocked silently (dropped), not refused by the host');
});

test('an IPv6 client learns the path MTU of the tunnel: the edge answers a too-big packet with Packet Too Big', async () => {
  // UDP to the echo server with "don't fragment" (IPv6 routers never fragment): 1400 bytes fit the tunnel (1476),
  // 1500 do not; the edge's ICMPv6 must reach the client, whose path MTU towards the host then drops to 1476.
  const py = [
    'import socket, time',
    's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
    's.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO',
    `s.connect(("${HOST6}", 53)); s.settimeout(2)`,
    's.send(b"x" * (1400 - 48)); print(len(s.recv(2000)) + 48)',
    'for i in range(5):',
    '  try: s.send(b"x" * (1500 - 48))',
    '  except OSError: pass',
    '  time.sleep(0.2)',
    'print(s.getsockopt(socket.IPPROTO_IPV6, 24))  # IPV6_MTU: the path MTU the kernel learnt',
  ].join('\n');
  const r = await labExec(name, 'client', ['python3', '-c', py]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['1400', '1476']);
});

test('IPv6 route priorities choose the tunnel; a priority change moves all IPv6 traffic to the other tunnel', async () => {
  const first = await outerSources(12);
  assert.deepEqual([...first.keys()], ['192.0.2.10'], `tunnel a (priority 100) carries everything: ${JSON.stringify([...first])}`);
  await applyRoutes6([{ nexthop: '10.200.0.1', priority: 300 }, { nexthop: '10.200.0.3', priority: 200 }]);
  const moved = await outerSources(12);
  assert.deepEqual([...moved.keys()], ['192.0.2.11'], `tunnel b carries everything now: ${JSON.stringify([...moved])}`);
});

test('equal IPv6 route priorities share the flows over both tunnels (ECMP by weight)', async () => {
  await applyRoutes6([{ nexthop: '10.200.0.1', priority: 100, weight: 1 }, { nexthop: '10.200.0.3', priority: 100, weight: 1 }]);
  const shared = await outerSources(40);
  assert.ok((shared.get('192.0.2.10') ?? 0) > 0 && (shared.get('192.0.2.11') ?? 0) > 0, `both tunnels carry flows: ${JSON.stringify([...shared])}`);
});

test('GRE from the customer router with a spoofed IPv6 inner source is dropped and counted at the edges', async () => {
  const before = edgeCount(Reason.DROP_GRE_SPOOFED);
  // Plain GRE (protocol 0x86dd) to the anycast endpoint carrying a UDP datagram from 2001:db8:dead::66 (not Acme's
  // prefix) to the client; the router's kernel adds the outer IPv4 header (raw socket, protocol 47).
  const py = [
    'import socket, struct',
    `src = socket.inet_pton(socket.AF_INET6, "2001:db8:dead::66"); dst = socket.inet_pton(socket.AF_INET6, "${CLIENT6}")`,
    'payload = b"spoofed!"',
    'udp = struct.pack("!HHHH", 4000, 9, 8 + len(payload), 0) + payload',
    'ip6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst',
    'gre = struct.pack("!HH", 0, 0x86DD) + ip6 + udp',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)',
    `s.bind(("${ROUTER}", 0))`,
    'for i in range(20): s.sendto(gre, ("192.0.2.10", 0))',
  ].join('\n');
  const r = await labExec(name, 'acme-router', ['python3', '-c', py]);
  assert.equal(r.exitCode, 0, r.stderr);
  const deadline = Date.now() + 5000;
  while (edgeCount(Reason.DROP_GRE_SPOOFED) - before < 20) {
    assert.ok(Date.now() < deadline, `only ${edgeCount(Reason.DROP_GRE_SPOOFED) - before} of 20 spoofed packets counted`);
    await new Promise((res) => setTimeout(res, 100));
  }
});
