/**
 * The customer router side of anycast GRE (src/kernel/bpf/cpe.ts, bpf/cpe_gre.c) in namespaces, against the real
 * edge data plane (tc_gre encap, xdp_edge decap):
 *
 *   client I ── E edge host netns ─────────────────────────── R customer router ── X customer host
 *   198.51.100.100   anycast 192.0.2.10, .11 on lo               198.51.100.2 on lo    203.0.113.100/24
 *                    XDP ot_xdp_edge on `router` (decap)         tc ingress decap on `uplink`
 *                    │ h0                                        gre0 10.200.0.1/31, gre1 10.200.1.1/31
 *                    C customer netns: c0 10.200.0.0/31,         (ifb, tc egress encap)
 *                      203.0.113.0/24 via 10.200.0.1 (tunnel MAC) → tc_gre encap 192.0.2.10 → 198.51.100.2
 *
 * Forward: I → E → C (tc_gre encap) → E → R (decap onto gre0) → X. Return ('tunnel'): X → R (rule from
 * 203.0.113.0/24 → gre0, encap 198.51.100.2 → 192.0.2.10) → E (XDP decap, redirect into C) → C → E → I.
 * Return ('direct', DSR): X → R → E → I without GRE. tshark checks the wire with checksum validation on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run } from '../../src/kernel/exec.js';
import { runIpOps, type IpOp } from '../../src/kernel/ip.js';
import { inNetns, setSysctls } from '../../src/kernel/netns.js';
import { listLinks } from '../../src/kernel/links.js';
import { listRoutes, RT_PROTO_OPENTRANSIT } from '../../src/kernel/routes.js';
import { listRules } from '../../src/kernel/rules.js';
import { listAddresses } from '../../src/kernel/addresses.js';
import { BPFFS, attachTc, attachXdp, ensureBpffs, ifIndex, netnsCookie, queryTc, unpin } from '../../src/kernel/bpf/index.js';
import { ipv4Be32, loadDataplane, lpmKey, macBytes, readCounters, removeDataplane, tunnelMac, type Dataplane } from '../../src/kernel/bpf/dataplane.js';
import {
  CPE_TC_FILTER,
  openCpeDataplane,
  readCpeTunnels,
  removeCpeDataplane,
  setupCustomerRouterGre,
  teardownCustomerRouterGre,
  type CustomerRouterGreSpec,
} from '../../src/kernel/bpf/cpe.js';
import { KernelInputError } from '../../src/kernel/exec.js';
import { OT_REASON_SLOTS, OT_TUNNEL_F_DF, REASON_NAMES } from '../../src/kernel/bpf/abi.generated.js';
import { icmpEcho, netnsHarness } from '../support/netns.js';
import { tsharkCapture } from '../../src/lab/tshark.js';
import { gre, ipv4, udp } from '../support/packets.js';

const ns = netnsHarness();
const tag = `${process.pid}-${randomBytes(2).toString('hex')}`;
const base = `${BPFFS}/ot-test-cpe-netns-${tag}`;
const CPE_NODE = 'lab';
const ACME = 1;
const ANYCAST = '192.0.2.10';
const ANYCAST2 = '192.0.2.11';
const ROUTER = '198.51.100.2';
const CLIENT = '198.51.100.100';
const HOST = '203.0.113.100';
const PORT = 8080;
const MAC = { c0: '02:00:00:00:0c:00', h0: '02:00:00:00:0a:00' };

let E: string, C: string, R: string, X: string, I: string;
let edge: Dataplane;
const children: ChildProcess[] = [];

const ip = (netns: string, ops: (string[] | IpOp)[]) => runIpOps(netns, ops.map((o) => (Array.isArray(o) ? { args: o } : o)));
const sh = (netns: string, argv: string[]) => run(inNetns(netns, argv));

/** A TCP echo server on HOST:PORT in X (Debian's python3), running until killed. */
const ECHO_SERVER_PY = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
print('ready', flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/** Connects to dst:port, sends n random bytes, reads them back; prints JSON {sent, received, same}. */
const ECHO_CLIENT_PY = `
import json, os, socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(n)
c = socket.create_connection((dst, port), timeout=15)
c.sendall(data); c.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    d = c.recv(65536)
    if not d: break
    got += d
print(json.dumps({'sent': n, 'received': len(got), 'same': bytes(got) == data}))
`;

/** Sends one raw IPv4 packet (hex, header included) from a netns. */
const RAW_SEND_PY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 0))
`;

/** Receives UDP datagrams on argv[1]:argv[2] until argv[3] arrived or 5 s of silence; prints JSON [[len, first byte]…]. */
const UDP_RECV_PY = `
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(5)
print('ready', flush=True)
got = []
try:
    while len(got) < int(sys.argv[3]):
        d = s.recv(65535); got.append([len(d), d[0]])
except socket.timeout: pass
print(json.dumps(got), flush=True)
`;

/** Sends argv[4] UDP GSO buffers (UDP_SEGMENT argv[3] bytes, argv[5] segments each; segment k filled with byte k). */
const UDP_GSO_SEND_PY = `
import socket, sys
dst, port, seg, sends, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, seg)  # UDP_SEGMENT
k = 0
for _ in range(sends):
    buf = b''.join(bytes([(k + i) % 256]) * seg for i in range(n)); k += n
    s.sendto(buf, (dst, port))
`;

async function echo(from: string, bytes: number): Promise<{ sent: number; received: number; same: boolean }> {
  const { stdout } = await sh(from, ['python3', '-c', ECHO_CLIENT_PY, HOST, String(PORT), String(bytes)]);
  return JSON.parse(stdout) as { sent: number; received: number; same: boolean };
}

function countersDelta(counters: Dataplane['maps']['counters'], before: ReturnType<typeof readCounters>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const old = new Map(before.map((c) => [c.account * OT_REASON_SLOTS + c.reason, c.packets]));
  for (const c of readCounters(counters)) {
    const d = c.packets - (old.get(c.account * OT_REASON_SLOTS + c.reason) ?? 0n);
    if (d) out.set(`${c.account} ${REASON_NAMES[c.reason]}`, d);
  }
  return out;
}

function cpeCounters(): ReturnType<typeof readCounters> {
  const dp = openCpeDataplane({ node: CPE_NODE, base });
  try {
    return readCounters(dp.maps.counters);
  } finally {
    dp.close();
  }
}

function cpeDelta(before: ReturnType<typeof readCounters>): Map<string, bigint> {
  const dp = openCpeDataplane({ node: CPE_NODE, base });
  try {
    return countersDelta(dp.maps.counters, before);
  } finally {
    dp.close();
  }
}

const routerSpec = (over: Partial<CustomerRouterGreSpec> = {}): CustomerRouterGreSpec => ({
  netns: R,
  node: CPE_NODE,
  base,
  uplink: 'uplink',
  tunnels: [{ name: 'gre0', local: ROUTER, remote: ANYCAST, interfaceAddress: '10.200.0.1/31' }],
  returnPath: 'tunnel',
  prefixes: ['203.0.113.0/24'],
  ...over,
});

before(async () => {
  ensureBpffs();
  [E, C, R, X, I] = [await ns.create('edge'), await ns.create('cust'), await ns.create('router'), await ns.create('host'), await ns.create('client')];
  // Links: I.uplink–E.client, E.router–R.uplink, E.h0–C.c0, R.lan–X.uplink.
  await ip(E, [
    ['link', 'add', 'client', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', I],
    ['link', 'add', 'router', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', R],
    ['link', 'add', 'h0', 'address', MAC.h0, 'type', 'veth', 'peer', 'name', 'c0', 'address', MAC.c0, 'netns', C],
  ]);
  await ip(R, [['link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', X]]);
  const sysRouter = { 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0, 'net.ipv4.fib_multipath_hash_policy': 1 };
  await Promise.all([
    setSysctls(E, { ...sysRouter, 'net.ipv4.conf.h0.rp_filter': 0, 'net.ipv4.conf.router.rp_filter': 0, 'net.ipv4.conf.client.rp_filter': 0, 'net.ipv4.conf.h0.accept_local': 1 }),
    setSysctls(C, { ...sysRouter, 'net.ipv4.conf.c0.rp_filter': 0, 'net.ipv4.conf.all.send_redirects': 0, 'net.ipv4.conf.c0.send_redirects': 0 }),
    setSysctls(R, { ...sysRouter, 'net.ipv4.conf.uplink.rp_filter': 0, 'net.ipv4.conf.lan.rp_filter': 0 }),
  ]);
  await ip(I, [
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'uplink', 'up'],
    ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo'], ['addr', 'add', '100.64.2.1/31', 'dev', 'uplink'],
    ['route', 'add', 'default', 'via', '100.64.2.0', 'dev', 'uplink', 'src', CLIENT],
  ]);
  await ip(E, [
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'client', 'up'], ['link', 'set', 'router', 'up'], ['link', 'set', 'h0', 'up'],
    ['addr', 'add', `${ANYCAST}/32`, 'dev', 'lo'], ['addr', 'add', `${ANYCAST2}/32`, 'dev', 'lo'],
    ['addr', 'add', '100.64.2.0/31', 'dev', 'client'], ['addr', 'add', '100.64.1.0/31', 'dev', 'router'], ['addr', 'add', '100.64.3.0/31', 'dev', 'h0'],
    ['route', 'add', `${CLIENT}/32`, 'via', '100.64.2.1', 'dev', 'client'],
    ['route', 'add', `${ROUTER}/32`, 'via', '100.64.1.1', 'dev', 'router'],
    ['route', 'add', '203.0.113.0/24', 'via', '100.64.3.1', 'dev', 'h0'],
  ]);
  await ip(C, [
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'c0', 'up'],
    ['addr', 'add', '100.64.3.1/31', 'dev', 'c0'], ['addr', 'add', '10.200.0.0/31', 'dev', 'c0'],
    ['neigh', 'replace', '10.200.0.1', 'lladdr', tunnelMac(1), 'nud', 'permanent', 'dev', 'c0'],
    ['route', 'add', '203.0.113.0/24', 'via', '10.200.0.1', 'dev', 'c0', 'onlink', 'mtu', '1476'],
    ['route', 'add', 'default', 'via', '100.64.3.0', 'dev', 'c0'],
  ]);
  await ip(R, [
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'uplink', 'up'], ['link', 'set', 'lan', 'up'],
    ['addr', 'add', `${ROUTER}/32`, 'dev', 'lo'], ['addr', 'add', '100.64.1.1/31', 'dev', 'uplink'], ['addr', 'add', '203.0.113.1/24', 'dev', 'lan'],
    ['route', 'add', 'default', 'via', '100.64.1.0', 'dev', 'uplink', 'src', ROUTER],
  ]);
  await ip(X, [
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'uplink', 'up'],
    ['addr', 'add', `${HOST}/24`, 'dev', 'uplink'], ['route', 'add', 'default', 'via', '203.0.113.1', 'dev', 'uplink'],
  ]);
  // Full checksums from the end hosts, so tshark can validate the inner headers (DESIGN.md §2: veth offloads leave
  // them partial). GRO on C's c0: frames XDP-redirected into a veth vanish unless its peer has GRO (or XDP) on.
  await Promise.all([sh(I, ['ethtool', '-K', 'uplink', 'tx', 'off']), sh(X, ['ethtool', '-K', 'uplink', 'tx', 'off']), sh(C, ['ethtool', '-K', 'c0', 'gro', 'on'])]);

  // The edge's data plane: tc_gre on c0 (tunnel 1 → the router), xdp_edge on E's router-facing device.
  edge = loadDataplane({ node: 'edge', base });
  edge.maps.tunnels.set(
    { netns_cookie: netnsCookie(C), mac: macBytes(tunnelMac(1)) },
    { local: ipv4Be32(ANYCAST), remote: ipv4Be32(ROUTER), account: ACME, ttl: 64, flags: OT_TUNNEL_F_DF, host_mac: macBytes(MAC.h0) },
  );
  edge.maps.anycast.set(ipv4Be32(ANYCAST), 0);
  edge.maps.anycast.set(ipv4Be32(ANYCAST2), 0);
  edge.maps.grePeers.set(ipv4Be32(ROUTER), { account: ACME, flags: 0 });
  edge.maps.prefixes.set(lpmKey('203.0.113.0/24'), ACME);
  edge.maps.prefixes.set(lpmKey('10.200.0.0/31'), ACME); // the tunnel's own addresses (health checks)
  edge.maps.delivery.set(ACME, { ifindex: ifIndex('h0', E), dmac: macBytes(MAC.c0), smac: macBytes(MAC.h0), mtu6: 0 });
  attachTc({ ifindex: ifIndex('c0', C), netns: C, direction: 'egress', prog: edge.tcGre });
  attachXdp({ ifindex: ifIndex('router', E), netns: E, prog: edge.xdpEdge, mode: 'native', replace: null });

  const server = spawn('ip', ['netns', 'exec', X, 'python3', '-c', ECHO_SERVER_PY, HOST, String(PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (c) => reject(new Error(`echo server exited (${c})`)));
  });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  edge?.close();
  await ns.cleanup();
  removeDataplane({ node: 'edge', base });
  removeCpeDataplane({ node: CPE_NODE, base });
  unpin(base);
  assert.equal(existsSync(base), false, 'no pins left');
});

describe('set up', () => {
  test('bad specs are refused naming the field, before anything is touched', async () => {
    await assert.rejects(setupCustomerRouterGre(routerSpec({ uplink: 'nope0' })), (e: unknown) => e instanceof KernelInputError && e.field === 'uplink' && /no device nope0/.test(e.reason));
    await assert.rejects(setupCustomerRouterGre(routerSpec({ netns: `${ns.prefix}missing` })), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
    await assert.rejects(
      setupCustomerRouterGre(routerSpec({ tunnels: [{ name: 'lan', local: ROUTER, remote: ANYCAST, interfaceAddress: '10.200.0.1/31' }] })),
      (e: unknown) => e instanceof KernelInputError && e.field === 'tunnels[0].name' && /not an OpenTransit tunnel device/.test(e.reason),
    );
    assert.deepEqual((await listLinks(R)).filter((l) => l.kind === 'ifb'), [], 'no tunnel device was made');
  });

  test('a tunnel device with its address, filters, map entries, return rules and routes; twice is the same', async () => {
    const first = await setupCustomerRouterGre(routerSpec());
    const again = await setupCustomerRouterGre(routerSpec());
    assert.deepEqual(again, first);
    assert.equal(first.netnsCookie, netnsCookie(R));
    const [t] = first.tunnels;
    assert.ok(t);
    assert.deepEqual({ ...t, ifindex: 0, mac: '' }, {
      name: 'gre0', local: ROUTER, remote: ANYCAST, interfaceAddress: '10.200.0.1/31', peer: '10.200.0.0', ttl: 64, df: true, mtu: 1476, priority: 100, weight: 1, ifindex: 0, mac: '',
    });
    const link = (await listLinks(R)).find((l) => l.name === 'gre0');
    assert.deepEqual([link?.kind, link?.mtu, link?.up, link?.alias, link?.ifindex, link?.mac], ['ifb', 1476, true, 'opentransit:cpe', t.ifindex, t.mac]);
    assert.deepEqual((await listAddresses(R, { dev: 'gre0' })).map((a) => a.cidr), ['10.200.0.1/31']);
    const dp = openCpeDataplane({ node: CPE_NODE, base });
    try {
      assert.equal(queryTc({ ifindex: first.uplink.ifindex, netns: R, direction: 'ingress', ...CPE_TC_FILTER }), dp.decap.id);
      assert.equal(queryTc({ ifindex: t.ifindex, netns: R, direction: 'egress', ...CPE_TC_FILTER }), dp.encap.id);
      assert.deepEqual(readCpeTunnels(dp.maps, first.netnsCookie), [{ ifindex: t.ifindex, local: ROUTER, remote: ANYCAST, ttl: 64, df: true, uplinkIfindex: first.uplink.ifindex }]);
      assert.deepEqual(dp.maps.decaps.get({ netns_cookie: first.netnsCookie, local: ipv4Be32(ROUTER), remote: ipv4Be32(ANYCAST) }), { ifindex: t.ifindex, mac: macBytes(t.mac) });
    } finally {
      dp.close();
    }
    const rules = (await listRules(R, { protocol: RT_PROTO_OPENTRANSIT })).map((r) => `${r.priority} ${r.from ?? ''}${r.to ? `to ${r.to}` : ''} ${r.table}`);
    assert.deepEqual(rules, ['1000 to 203.0.113.0/24 254', '1001 203.0.113.0/24 200']);
    const routes = await listRoutes(R, { table: 200 });
    assert.deepEqual(routes.map((r) => [r.dst, r.metric, r.protocol, r.nexthops]), [['0.0.0.0/0', 100, RT_PROTO_OPENTRANSIT, [{ via: '10.200.0.0', dev: 'gre0', weight: 1, onlink: true }]]]);
  });
});

describe('through the tunnel', () => {
  test('crafted GRE from the anycast endpoint reaches the host behind the router; GRE with a key does not', async () => {
    const inner = (port: number) => ipv4({ src: CLIENT, dst: HOST }, udp({ sport: 5000, dport: port }, Buffer.from(`to port ${port}`)));
    const cap = await tsharkCapture({ netns: X, dev: 'uplink', filter: 'udp and dst port 9001', fields: ['ip.src', 'ip.dst', 'ip.ttl', 'udp.dstport', 'udp.checksum.status', 'data.len'] });
    const before = cpeCounters();
    const send = (pkt: Buffer) => sh(E, ['python3', '-c', RAW_SEND_PY, pkt.toString('hex'), ROUTER]);
    await send(ipv4({ src: ANYCAST, dst: ROUTER }, gre({ key: 5 }, inner(9002))));
    await send(ipv4({ src: ANYCAST, dst: ROUTER }, gre({}, inner(9001))));
    const rows = await cap.done;
    // TTL 63: the router forwarded the inner packet once (it arrived on gre0, left by lan).
    assert.deepEqual(rows, [[CLIENT, HOST, '63', '9001', '1', '12']]);
    const d = cpeDelta(before);
    assert.equal(d.get('0 REDIRECT_GRE'), 1n);
    assert.equal(d.get('0 DROP_GRE_UNSUPPORTED'), 1n);
  });

  test('the tunnel addresses answer across the tunnel (health checks): the edge pings 10.200.0.1', async () => {
    const r = await icmpEcho(C, '10.200.0.1', { count: 3, timeoutS: 2 });
    assert.deepEqual(r, { sent: 3, received: 3, error: '' });
  });

  test('a TCP connection end to end: tc_gre → router decap → host; host → router encap → XDP decap; checksums good', async () => {
    const edgeBefore = readCounters(edge.maps.counters);
    const cpeBefore = cpeCounters();
    const fields = ['ip.src', 'ip.dst', 'ip.checksum.status', 'ip.flags.df', 'ip.ttl', 'gre.proto', 'tcp.srcport', 'tcp.checksum.status'];
    // Both directions' first packets (SYN, SYN-ACK) on the router's uplink: outer and inner headers.
    const wire = await tsharkCapture({ netns: R, dev: 'uplink', filter: `ip proto 47 and (ip[44:2] = ${PORT} or ip[46:2] = ${PORT})`, fields, count: 2 });
    const result = await echo(I, 200_000);
    assert.deepEqual(result, { sent: 200_000, received: 200_000, same: true });
    const rows = await wire.done;
    const toHost = rows.find((r) => r[6] !== String(PORT));
    const toClient = rows.find((r) => r[6] === String(PORT));
    // Outer then inner: addresses, checksum status 1 = good, DF, TTL; the inner TTL shows the hops so far.
    assert.deepEqual(toHost, [`${ANYCAST},${CLIENT}`, `${ROUTER},${HOST}`, '1,1', '1,1', '63,62', '0x0800', toHost![6], '1']);
    assert.deepEqual(toClient, [`${ROUTER},${HOST}`, `${ANYCAST},${CLIENT}`, '1,1', '1,1', '64,63', '0x0800', String(PORT), '1']);

    const e = countersDelta(edge.maps.counters, edgeBefore);
    const c = cpeDelta(cpeBefore);
    assert.ok((e.get(`${ACME} ENCAP_GRE`) ?? 0n) > 10n, `the edge encapsulated: ${[...e]}`);
    assert.ok((e.get(`${ACME} REDIRECT_GRE`) ?? 0n) > 10n, `the edge decapsulated: ${[...e]}`);
    assert.ok((c.get('0 REDIRECT_GRE') ?? 0n) > 10n, `the router decapsulated: ${[...c]}`);
    assert.ok((c.get('0 ENCAP_GRE') ?? 0n) > 10n, `the router encapsulated: ${[...c]}`);
    assert.equal(e.get(`${ACME} DROP_GRE_SPOOFED`), undefined);
  });
  test('UDP GSO (UDP_SEGMENT) through the tunnel: encapsulated and decapsulated whole, every datagram arrives', async () => {
    // One GSO packet per send all the way (a NIC's UDP GRO forwarding makes the same): the kernel resizes UDP GSO
    // only with BPF_F_ADJ_ROOM_FIXED_GSO, so without it the edge dropped them (ENCAP_FAILED) and so did the router.
    const [SEG, SENDS, N, UDP_PORT] = [1000, 25, 4, 9005];
    const edgeBefore = readCounters(edge.maps.counters);
    const cpeBefore = cpeCounters();
    const rx = spawn('ip', ['netns', 'exec', X, 'python3', '-c', UDP_RECV_PY, HOST, String(UDP_PORT), String(SENDS * N)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(rx);
    let out = '';
    rx.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => rx.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      rx.stdout!.once('data', () => resolve());
      rx.once('exit', (c) => reject(new Error(`UDP receiver exited (${c})`)));
    });
    await sh(C, ['python3', '-c', UDP_GSO_SEND_PY, HOST, String(UDP_PORT), String(SEG), String(SENDS), String(N)]);
    await exited;
    const got = JSON.parse(out.slice(out.indexOf('\n') + 1)) as [number, number][];
    assert.deepEqual(
      got.map(([len, b]) => `${len}:${b}`).sort(),
      Array.from({ length: SENDS * N }, (_, k) => `${SEG}:${k % 256}`).sort(),
      'every datagram, whole and once',
    );
    const e = countersDelta(edge.maps.counters, edgeBefore);
    const c = cpeDelta(cpeBefore);
    assert.equal(e.get(`${ACME} ENCAP_GRE`), BigInt(SENDS), `one encapsulation per GSO packet: ${[...e]}`);
    assert.equal(e.get(`${ACME} DROP_ENCAP_FAILED`), undefined);
    assert.equal(c.get('0 REDIRECT_GRE'), BigInt(SENDS), `one decapsulation per GSO packet: ${[...c]}`);
    assert.equal(c.get('0 DROP_MALFORMED'), undefined);
  });
});

describe('several tunnels, DSR, teardown', () => {
  test('a second tunnel to another anycast endpoint: ECMP return routes, decap from both endpoints', async () => {
    const spec = routerSpec({
      tunnels: [
        { name: 'gre0', local: ROUTER, remote: ANYCAST, interfaceAddress: '10.200.0.1/31' },
        { name: 'gre1', local: ROUTER, remote: ANYCAST2, interfaceAddress: '10.200.1.1/31', ttl: 32, df: false },
      ],
    });
    const r = await setupCustomerRouterGre(spec);
    assert.deepEqual(r.tunnels.map((t) => [t.name, t.peer, t.ttl, t.df]), [['gre0', '10.200.0.0', 64, true], ['gre1', '10.200.1.0', 32, false]]);
    const routes = await listRoutes(R, { table: 200 });
    assert.deepEqual(routes.map((x) => [x.metric, x.nexthops.map((n) => `${n.via}@${n.dev}`)]), [[100, ['10.200.0.0@gre0', '10.200.1.0@gre1']]]);
    // GRE from the second endpoint arrives on gre1 and is forwarded to the host.
    const cap = await tsharkCapture({ netns: X, dev: 'uplink', filter: 'udp and dst port 9003', fields: ['ip.src', 'udp.dstport'] });
    const pkt = ipv4({ src: ANYCAST2, dst: ROUTER }, gre({}, ipv4({ src: CLIENT, dst: HOST }, udp({ sport: 5000, dport: 9003 }, Buffer.from('x')))));
    await sh(E, ['python3', '-c', RAW_SEND_PY, pkt.toString('hex'), ROUTER]);
    assert.deepEqual(await cap.done, [[CLIENT, '9003']]);
    // Priorities: the lower one alone carries the return traffic; back to one tunnel removes gre1 and its entries.
    await setupCustomerRouterGre({ ...spec, tunnels: [spec.tunnels[0]!, { ...spec.tunnels[1]!, priority: 200 }] });
    assert.deepEqual((await listRoutes(R, { table: 200 })).map((x) => [x.metric, x.nexthops.map((n) => n.dev)]), [[100, ['gre0']], [200, ['gre1']]]);
    const back = await setupCustomerRouterGre(routerSpec());
    assert.deepEqual((await listLinks(R)).filter((l) => l.kind === 'ifb').map((l) => l.name), ['gre0']);
    assert.deepEqual((await listRoutes(R, { table: 200 })).map((x) => [x.metric, x.nexthops.map((n) => n.dev)]), [[100, ['gre0']]]);
    const dp = openCpeDataplane({ node: CPE_NODE, base });
    try {
      assert.equal(readCpeTunnels(dp.maps, back.netnsCookie).length, 1);
      assert.equal(dp.maps.decaps.entries().filter(([k]) => k.netns_cookie === back.netnsCookie).length, 1);
    } finally {
      dp.close();
    }
    assert.deepEqual(await echo(I, 10_000), { sent: 10_000, received: 10_000, same: true });
  });

  test('direct server return: no rules, replies leave the router without GRE, the connection still works', async () => {
    await setupCustomerRouterGre(routerSpec({ returnPath: 'direct' }));
    assert.deepEqual(await listRules(R, { protocol: RT_PROTO_OPENTRANSIT }), []);
    assert.deepEqual(await listRoutes(R, { table: 200 }), []);
    const cpeBefore = cpeCounters();
    const plain = await tsharkCapture({ netns: R, dev: 'uplink', filter: `tcp src port ${PORT}`, fields: ['ip.src', 'ip.dst', 'ip.checksum.status', 'tcp.checksum.status'] });
    assert.deepEqual(await echo(I, 20_000), { sent: 20_000, received: 20_000, same: true });
    assert.deepEqual((await plain.done)[0], [HOST, CLIENT, '1', '1']);
    const c = cpeDelta(cpeBefore);
    assert.ok((c.get('0 REDIRECT_GRE') ?? 0n) > 0n, 'requests still come through the tunnel');
    assert.equal(c.get('0 ENCAP_GRE'), undefined, 'replies are not encapsulated');
    // Back to the tunnel: the rules return.
    await setupCustomerRouterGre(routerSpec());
    assert.equal((await listRules(R, { protocol: RT_PROTO_OPENTRANSIT })).length, 2);
  });

  test('teardown removes devices, filters, rules, routes and map entries; twice is fine', async () => {
    const cookie = netnsCookie(R);
    await teardownCustomerRouterGre({ netns: R, node: CPE_NODE, base, uplink: 'uplink' });
    await teardownCustomerRouterGre({ netns: R, node: CPE_NODE, base, uplink: 'uplink' });
    assert.deepEqual((await listLinks(R)).filter((l) => l.kind === 'ifb' || l.owner !== undefined), []);
    assert.equal(queryTc({ ifindex: ifIndex('uplink', R), netns: R, direction: 'ingress', ...CPE_TC_FILTER }), 0);
    assert.deepEqual(await listRules(R, { protocol: RT_PROTO_OPENTRANSIT }), []);
    assert.deepEqual(await listRoutes(R, { protocol: RT_PROTO_OPENTRANSIT }), []);
    const dp = openCpeDataplane({ node: CPE_NODE, base });
    try {
      assert.deepEqual(readCpeTunnels(dp.maps, cookie), []);
      assert.equal(dp.maps.decaps.entries().filter(([k]) => k.netns_cookie === cookie).length, 0);
    } finally {
      dp.close();
    }
    // A netns that is gone: nothing to do, no error.
    await teardownCustomerRouterGre({ netns: `${ns.prefix}gone`, node: CPE_NODE, base, uplink: 'uplink' });
  });
});
