/**
 * The addon against real devices in network namespaces: XDP attach/replace/detach (native and generic) and tc
 * clsact attach inside a netns, pins that survive reloads, and an end-to-end run of both programs:
 *
 *   netns C (customer)              netns H (host)                       netns D (delivery)
 *   c0 ──tc egress: GRE encap──► h0 ──XDP: decap, redirect──► h1 ──────► d1
 *   a datagram to 198.51.100.200 via a tunnel peer whose neighbour MAC names tunnel 1; tshark checks the GRE on c0
 *   (checksums validated) and the decapsulated ICMP on d1.
 *
 * For the loop, H's XDP treats the tunnel's remote (198.51.100.10) as its anycast endpoint and the tunnel's local
 * (192.0.2.1) as the customer endpoint. Namespaces are unique to this run and deleted at the end, even on failure.
 */
import { tsharkCapture } from '../../src/lab/tshark.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  BPFFS,
  attachTc,
  attachXdp,
  detachTc,
  detachXdp,
  ensureBpffs,
  ifIndex,
  isNativeError,
  netnsCookie,
  queryTc,
  queryXdp,
  removeClsact,
  unpin,
} from '../../src/kernel/bpf/index.js';
import {
  dataplaneExists,
  ipv4Be32,
  loadDataplane,
  lpmKey,
  macBytes,
  openDataplane,
  readCounters,
  removeDataplane,
  tunnelMac,
  type Dataplane,
} from '../../src/kernel/bpf/dataplane.js';
import { OT_TUNNEL_F_DF, Reason } from '../../src/kernel/bpf/abi.generated.js';

const tag = `${process.pid}${randomBytes(2).toString('hex')}`;
const NS_PREFIX = `ot-bpft-${tag}-`;
const C = `${NS_PREFIX}c`;
const H = `${NS_PREFIX}h`;
const D = `${NS_PREFIX}d`;
const MAC = { c0: '02:00:00:00:0c:00', h0: '02:00:00:00:0a:00', h1: '02:00:00:00:0a:01', d1: '02:00:00:00:0d:01' };
const base = `${BPFFS}/ot-test-netns-${tag}`;
const ACME = 1;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const nsExec = (ns: string, ...args: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const ourNamespaces = () =>
  ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(NS_PREFIX));

let dp: Dataplane;

function cleanup(): void {
  for (const ns of ourNamespaces()) ip('netns', 'del', ns);
  removeDataplane({ node: 'edge', base });
  removeDataplane({ node: 'other', base });
  unpin(base);
}

before(() => {
  ensureBpffs();
  for (const ns of [C, H, D]) ip('netns', 'add', ns);
  ip('-n', C, 'link', 'add', 'c0', 'address', MAC.c0, 'type', 'veth', 'peer', 'name', 'h0', 'address', MAC.h0, 'netns', H);
  ip('-n', H, 'link', 'add', 'h1', 'address', MAC.h1, 'type', 'veth', 'peer', 'name', 'd1', 'address', MAC.d1, 'netns', D);
  for (const [ns, dev] of [[C, 'c0'], [C, 'lo'], [H, 'h0'], [H, 'h1'], [D, 'd1']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
  // Real checksums on the wire for tshark (DESIGN.md §2: with offloads on, veth leaves inner checksums partial).
  nsExec(C, 'ethtool', '-K', 'c0', 'tx', 'off');
  // DESIGN.md §2: frames XDP-redirected into a veth vanish unless its peer has GRO on (or an XDP program).
  nsExec(D, 'ethtool', '-K', 'd1', 'gro', 'on');
  ip('-n', C, 'addr', 'add', '10.10.0.0/31', 'dev', 'c0');
  ip('-n', C, 'neigh', 'replace', '10.10.0.1', 'lladdr', tunnelMac(1), 'nud', 'permanent', 'dev', 'c0');
  ip('-n', C, 'route', 'add', '198.51.100.0/24', 'via', '10.10.0.1', 'dev', 'c0', 'onlink');
  dp = loadDataplane({ node: 'edge', base });
});

after(() => {
  dp?.close();
  cleanup();
  assert.deepEqual(ourNamespaces(), [], 'no namespaces left');
  assert.equal(existsSync(base), false, 'no pins left');
});

const code = (e: unknown) => (isNativeError(e) ? e.code : String(e));

describe('devices in a netns', () => {
  test('ifIndex and netnsCookie resolve inside the given netns', () => {
    const h0 = ifIndex('h0', H);
    assert.ok(h0 > 0);
    assert.throws(() => ifIndex('h0'), (e: unknown) => code(e) === 'ENODEV', 'h0 does not exist in our own netns');
    assert.throws(() => ifIndex('nope0', H), (e: unknown) => code(e) === 'ENODEV');
    assert.throws(() => ifIndex('h0', `${NS_PREFIX}missing`), (e: unknown) => code(e) === 'ENOENT');
    const cookies = new Set([netnsCookie(), netnsCookie(C), netnsCookie(H), netnsCookie(`/run/netns/${D}`)]);
    assert.equal(cookies.size, 4, 'every netns has its own cookie');
    assert.equal(netnsCookie(C), netnsCookie(C), 'and keeps it');
  });

  test('XDP: attach only if empty, atomic replace of the expected program, detach', () => {
    const other = loadDataplane({ node: 'other', base });
    try {
      const ifindex = ifIndex('h1', H);
      attachXdp({ ifindex, netns: H, prog: dp.xdpEdge, mode: 'native', replace: null });
      assert.deepEqual(queryXdp({ ifindex, netns: H }), { progId: dp.xdpEdge.id, mode: 'native' });
      assert.throws(() => attachXdp({ ifindex, netns: H, prog: other.xdpEdge, mode: 'native', replace: null }), (e: unknown) => code(e) === 'EBUSY');
      // Replace expecting the wrong program: refused, nothing changes.
      assert.throws(() => attachXdp({ ifindex, netns: H, prog: other.xdpEdge, mode: 'native', replace: other.xdpEdge }), (e: unknown) => code(e) === 'EEXIST');
      assert.equal(queryXdp({ ifindex, netns: H }).progId, dp.xdpEdge.id);
      attachXdp({ ifindex, netns: H, prog: other.xdpEdge, mode: 'native', replace: dp.xdpEdge });
      assert.equal(queryXdp({ ifindex, netns: H }).progId, other.xdpEdge.id);
      assert.throws(() => detachXdp({ ifindex, netns: H, mode: 'native', expected: dp.xdpEdge }), (e: unknown) => code(e) === 'EEXIST');
      detachXdp({ ifindex, netns: H, mode: 'native', expected: other.xdpEdge });
      assert.deepEqual(queryXdp({ ifindex, netns: H }), { progId: 0, mode: 'none' });
      // Generic (skb) mode, for devices whose driver has no XDP.
      attachXdp({ ifindex, netns: H, prog: dp.xdpEdge, mode: 'generic' });
      assert.deepEqual(queryXdp({ ifindex, netns: H }), { progId: dp.xdpEdge.id, mode: 'generic' });
      detachXdp({ ifindex, netns: H, mode: 'generic' });
      assert.equal(queryXdp({ ifindex, netns: H }).progId, 0);
    } finally {
      other.close();
      removeDataplane({ node: 'other', base });
    }
  });

  test('tc: clsact + direct-action filter in a netns, replace, detach, remove the qdisc', () => {
    const other = loadDataplane({ node: 'other', base });
    try {
      const ifindex = ifIndex('d1', D);
      const a = attachTc({ ifindex, netns: D, direction: 'egress', prog: dp.tcGre });
      assert.deepEqual(a, { handle: 1, priority: 1, progId: dp.tcGre.id });
      assert.equal(queryTc({ ifindex, netns: D, direction: 'egress' }), dp.tcGre.id);
      assert.equal(queryTc({ ifindex, netns: D, direction: 'ingress' }), 0);
      assert.throws(() => attachTc({ ifindex, netns: D, direction: 'egress', prog: other.tcGre, replace: false }), (e: unknown) => code(e) === 'EEXIST');
      attachTc({ ifindex, netns: D, direction: 'egress', prog: other.tcGre });
      assert.equal(queryTc({ ifindex, netns: D, direction: 'egress' }), other.tcGre.id);
      assert.match(nsExec(D, 'tc', 'filter', 'show', 'dev', 'd1', 'egress'), /ot_tc_gre.*direct-action/s, 'what tc shows');
      assert.equal(detachTc({ ifindex, netns: D, direction: 'egress' }), true);
      assert.equal(detachTc({ ifindex, netns: D, direction: 'egress' }), false);
      assert.equal(removeClsact({ ifindex, netns: D }), true);
      assert.equal(removeClsact({ ifindex, netns: D }), false);
      assert.doesNotMatch(nsExec(D, 'tc', 'qdisc', 'show', 'dev', 'd1'), /clsact/);
    } finally {
      other.close();
      removeDataplane({ node: 'other', base });
    }
  });

  test('a reload keeps the pinned maps and their contents, and replaces the program pins', () => {
    dp.maps.blocklist.set(lpmKey('198.51.100.77/32'), 9);
    const again = loadDataplane({ node: 'edge', base });
    try {
      assert.equal(again.maps.blocklist.map.id, dp.maps.blocklist.map.id, 'the same map');
      assert.equal(again.maps.blocklist.get(lpmKey('198.51.100.77/32')), 9, 'with its contents');
      assert.notEqual(again.xdpEdge.id, dp.xdpEdge.id, 'a new program');
      const opened = openDataplane({ node: 'edge', base });
      assert.equal(opened.xdpEdge.id, again.xdpEdge.id, 'the pin now names the new program');
      assert.equal(opened.maps.counters.map.id, dp.maps.counters.map.id);
      opened.close();
    } finally {
      again.close();
      dp.maps.blocklist.delete(lpmKey('198.51.100.77/32'));
    }
    assert.ok(dataplaneExists({ node: 'edge', base }));
    assert.equal(dataplaneExists({ node: 'missing', base }), false);
  });
});

describe('end to end: tc encap in a customer netns, XDP decap and redirect in the host netns', () => {
  test('a datagram through both programs; tshark decodes the GRE with good checksums', async () => {
    const cookieC = netnsCookie(C);
    dp.maps.tunnels.set(
      { netns_cookie: cookieC, mac: macBytes(tunnelMac(1)) },
      { local: ipv4Be32('192.0.2.1'), remote: ipv4Be32('198.51.100.10'), account: ACME, ttl: 64, flags: OT_TUNNEL_F_DF, host_mac: macBytes(MAC.h0) },
    );
    dp.maps.anycast.set(ipv4Be32('198.51.100.10'), 0);
    dp.maps.grePeers.set(ipv4Be32('192.0.2.1'), { account: ACME, flags: 0 });
    dp.maps.prefixes.set(lpmKey('10.10.0.0/31'), ACME);
    dp.maps.delivery.set(ACME, { ifindex: ifIndex('h1', H), dmac: macBytes(MAC.d1), smac: macBytes(MAC.h1), mtu6: 0 });
    attachTc({ ifindex: ifIndex('c0', C), netns: C, direction: 'egress', prog: dp.tcGre });
    attachXdp({ ifindex: ifIndex('h0', H), netns: H, prog: dp.xdpEdge, mode: 'native', replace: null });
    const before = readCounters(dp.maps.counters);

    const wire = await tsharkCapture({ netns: C, dev: 'c0', filter: 'ip proto 47', timeoutS: 10, fields: ['ip.src', 'ip.dst', 'ip.checksum.status', 'ip.flags.df', 'ip.ttl', 'gre.proto', 'udp.dstport', 'udp.checksum.status'] });
    const delivered = await tsharkCapture({ netns: D, dev: 'd1', filter: 'udp', timeoutS: 10, fields: ['eth.src', 'eth.dst', 'ip.src', 'ip.dst', 'ip.checksum.status', 'udp.dstport', 'udp.checksum.status', 'data.len'] });
    // One UDP datagram from the customer netns (Debian's python3: the image has no ping).
    nsExec(C, '/usr/bin/python3', '-c', "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x' * 32, ('198.51.100.200', 9))");
    const [[w], [d]] = await Promise.all([wire.done, delivered.done]);
    // Status 1 = checksum good. The outer header is ours (DF, TTL 64), the inner the kernel's.
    assert.deepEqual(w, ['192.0.2.1,10.10.0.0', '198.51.100.10,198.51.100.200', '1,1', '1,1', '64,64', '0x0800', '9', '1']);
    assert.deepEqual(d, [MAC.h1, MAC.d1, '10.10.0.0', '198.51.100.200', '1', '9', '1', '32']);

    const after = readCounters(dp.maps.counters);
    const grew = (reason: Reason) =>
      (after.find((c) => c.account === ACME && c.reason === reason)?.packets ?? 0n) - (before.find((c) => c.account === ACME && c.reason === reason)?.packets ?? 0n);
    assert.ok(grew(Reason.ENCAP_GRE) >= 1n, 'tc counted the encapsulation');
    assert.ok(grew(Reason.REDIRECT_GRE) >= 1n, 'XDP counted the redirect');
  });
});
