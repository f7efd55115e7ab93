/**
 * The customer router's GRE programs (bpf/cpe_gre.c) through BPF_PROG_RUN: what ot_cpe_decap strips and where it
 * redirects, what it leaves to the kernel and what it drops; the outer header ot_cpe_encap builds; one counter per
 * packet. BPF_PROG_RUN runs tc programs on the calling thread's netns loopback (ifindex 1), so that netns's cookie
 * and ifindex 1 are the keys here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BPFFS, ensureBpffs, netnsCookie, unpin } from '../../src/kernel/bpf/index.js';
import { ipv4Be32, macBytes } from '../../src/kernel/bpf/dataplane.js';
import { loadCpeDataplane, openCpeDataplane, removeCpeDataplane, type CpeDataplane } from '../../src/kernel/bpf/cpe.js';
import { OT_TUNNEL_F_DF } from '../../src/kernel/bpf/abi.generated.js';
import { ETH_P_ARP, TCP, ethernet, gre, internetChecksum, ipv4, ipv6, tcp, udp } from '../support/packets.js';
import { reasonCountersDelta } from '../support/bpf-counters.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const LO = 1;
const TUN_IFINDEX = 42;
const TUN_MAC = '02:00:00:00:47:01';
const UPLINK_MAC = '02:00:00:00:0e:01';
const EDGE_MAC = '02:00:00:00:0e:00';
const ROUTER = '198.51.100.2';
const ANYCAST = '192.0.2.10';

const base = `${BPFFS}/ot-test-cpe-${process.pid}-${randomBytes(3).toString('hex')}`;
let dp: CpeDataplane;
let cookie: bigint;

before(() => {
  ensureBpffs();
  dp = loadCpeDataplane({ node: 'lab', base });
  cookie = netnsCookie();
  dp.maps.decaps.set({ netns_cookie: cookie, local: ipv4Be32(ROUTER), remote: ipv4Be32(ANYCAST) }, { ifindex: TUN_IFINDEX, mac: macBytes(TUN_MAC) });
  // The same endpoints in another router's netns must not match here.
  dp.maps.decaps.set({ netns_cookie: cookie + 1n, local: ipv4Be32(ROUTER), remote: ipv4Be32('192.0.2.11') }, { ifindex: 7, mac: macBytes(TUN_MAC) });
  dp.maps.encaps.set({ netns_cookie: cookie, ifindex: LO }, { local: ipv4Be32(ROUTER), remote: ipv4Be32(ANYCAST), uplink_ifindex: 3, ttl: 64, flags: OT_TUNNEL_F_DF });
});

after(() => {
  dp?.close();
  removeCpeDataplane({ node: 'lab', base });
  unpin(base);
  assert.equal(existsSync(base), false, 'no pins left');
});

const countersDelta = (run: () => void): string[] => reasonCountersDelta(dp.maps.counters, run);

type Run = ReturnType<CpeDataplane['decap']['testRun']>;
function runDecap(frame: Buffer): { r: Run; counted: string[] } {
  let r!: Run;
  const counted = countersDelta(() => (r = dp.decap.testRun(frame)));
  return { r, counted };
}

const innerV4 = ipv4({ src: '198.51.100.100', dst: '203.0.113.100' }, tcp({ sport: 40000, dport: 21, flags: TCP.SYN }, Buffer.from('hello')));
const innerV6 = ipv6({ src: '2001:db8:ffff::1', dst: '2001:db8:100::5' }, udp({ sport: 53, dport: 5353 }, Buffer.from('answer')));
const fromEdge = (payload: Buffer, o: { src?: string; dst?: string } = {}) =>
  ethernet({ dst: UPLINK_MAC, src: EDGE_MAC }, ipv4({ src: o.src ?? ANYCAST, dst: o.dst ?? ROUTER, ttl: 63, df: true, id: 0 }, gre({}, payload)));

test('decap: plain GRE from the anycast endpoint loses its outer headers and goes to the tunnel device', () => {
  const { r, counted } = runDecap(fromEdge(innerV4));
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.deepEqual(counted, ['account 0 REDIRECT_GRE +1']);
  assert.equal(r.data.toString('hex'), ethernet({ dst: TUN_MAC, src: EDGE_MAC }, innerV4).toString('hex'));
});

test('decap: IPv6 inside comes out with EtherType 0x86dd', () => {
  const { r, counted } = runDecap(fromEdge(innerV6));
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.deepEqual(counted, ['account 0 REDIRECT_GRE +1']);
  assert.equal(r.data.toString('hex'), ethernet({ dst: TUN_MAC, src: EDGE_MAC }, innerV6).toString('hex'));
});

test('decap: what is not GRE of one of this router\'s tunnels passes untouched', () => {
  const cases: [string, Buffer, string][] = [
    ['ARP', ethernet({ dst: UPLINK_MAC, src: EDGE_MAC, type: ETH_P_ARP }, Buffer.alloc(28, 1)), 'PASS_NON_IP'],
    ['TCP to the router', ethernet({ dst: UPLINK_MAC, src: EDGE_MAC }, innerV4), 'PASS'],
    ['GRE from another source', fromEdge(innerV4, { src: '192.0.2.99' }), 'PASS'],
    ['GRE to another address', fromEdge(innerV4, { dst: '198.51.100.3' }), 'PASS'],
    ["GRE of another router's tunnel", fromEdge(innerV4, { src: '192.0.2.11' }), 'PASS'],
  ];
  for (const [what, frame, reason] of cases) {
    const { r, counted } = runDecap(frame);
    assert.equal(r.retval, TC_ACT_OK, what);
    assert.deepEqual(counted, [`account 0 ${reason} +1`], what);
    assert.ok(r.data.equals(frame), `${what}: unchanged`);
  }
});

test('decap: GRE of a tunnel that is not plain, or broken, is dropped', () => {
  const badChecksum = fromEdge(innerV4);
  badChecksum.writeUInt16BE(badChecksum.readUInt16BE(14 + 10) ^ 0x0101, 14 + 10);
  const outerOf = (o: Parameters<typeof ipv4>[0], payload: ReturnType<typeof gre>) => ethernet({ dst: UPLINK_MAC, src: EDGE_MAC }, ipv4(o, payload));
  const hdr = { src: ANYCAST, dst: ROUTER };
  const cases: [string, Buffer, string][] = [
    ['GRE key', outerOf(hdr, gre({ key: 7 }, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['GRE checksum', outerOf(hdr, gre({ checksum: true }, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['GRE sequence number', outerOf(hdr, gre({ seq: 1 }, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['GRE version 1', outerOf(hdr, gre({ flags: 1 }, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['Ethernet inside (transparent bridging)', outerOf(hdr, gre({ proto: 0x6558 }, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['a fragment', outerOf({ ...hdr, mf: true }, gre({}, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['IPv4 options', outerOf({ ...hdr, options: Buffer.from([1, 1, 1, 0]) }, gre({}, innerV4)), 'DROP_GRE_UNSUPPORTED'],
    ['a bad outer checksum', badChecksum, 'DROP_MALFORMED'],
    ['IPv6 inside an IPv4 EtherType', outerOf(hdr, gre({ proto: 0x0800 }, innerV6)), 'DROP_MALFORMED'],
    ['a total length beyond the frame', outerOf({ ...hdr, totalLength: 1400 }, gre({}, innerV4)), 'DROP_MALFORMED'],
    ['nothing after the GRE header', outerOf(hdr, gre({}, Buffer.alloc(0))), 'DROP_MALFORMED'],
  ];
  for (const [what, frame, reason] of cases) {
    const { r, counted } = runDecap(frame);
    assert.equal(r.retval, TC_ACT_SHOT, what);
    assert.deepEqual(counted, [`account 0 ${reason} +1`], what);
  }
});

test('encap: outer IPv4 (router → anycast endpoint, DF, TTL, checksum) + GRE, handed to the uplink', () => {
  const frame = ethernet({ dst: TUN_MAC, src: TUN_MAC }, innerV4);
  let r!: Run;
  assert.deepEqual(countersDelta(() => (r = dp.encap.testRun(frame))), ['account 0 ENCAP_GRE +1']);
  // bpf_redirect_neigh: the kernel fills in both MACs from the next hop's neighbour entry when it redirects.
  assert.equal(r.retval, TC_ACT_REDIRECT);
  const want = ethernet({ dst: '00:00:00:00:00:00', src: TUN_MAC }, ipv4({ src: ROUTER, dst: ANYCAST, ttl: 64, df: true, id: 0 }, gre({}, innerV4)));
  assert.equal(r.data.toString('hex'), want.toString('hex'));
  assert.equal(internetChecksum(r.data.subarray(14, 34)), 0, 'the outer header checksum verifies');
  const r6 = dp.encap.testRun(ethernet({ dst: TUN_MAC, src: TUN_MAC }, innerV6));
  assert.equal(r6.retval, TC_ACT_REDIRECT);
  assert.equal(r6.data.readUInt16BE(14 + 20 + 2), 0x86dd);
});

test('encap: a device without a tunnel, and non-IP frames, are dropped', () => {
  dp.maps.encaps.delete({ netns_cookie: cookie, ifindex: LO });
  try {
    let r!: Run;
    assert.deepEqual(countersDelta(() => (r = dp.encap.testRun(ethernet({ dst: TUN_MAC, src: TUN_MAC }, innerV4)))), ['account 0 DROP_TUNNEL_MISS +1']);
    assert.equal(r.retval, TC_ACT_SHOT);
  } finally {
    dp.maps.encaps.set({ netns_cookie: cookie, ifindex: LO }, { local: ipv4Be32(ROUTER), remote: ipv4Be32(ANYCAST), uplink_ifindex: 3, ttl: 64, flags: OT_TUNNEL_F_DF });
  }
  let r!: Run;
  const arp = ethernet({ dst: TUN_MAC, src: TUN_MAC, type: ETH_P_ARP }, Buffer.alloc(28, 1));
  assert.deepEqual(countersDelta(() => (r = dp.encap.testRun(arp))), ['account 0 DROP_ENCAP_FAILED +1']);
  assert.equal(r.retval, TC_ACT_SHOT);
});

test('a reload keeps the pinned maps and their entries; open finds the new programs', () => {
  const again = loadCpeDataplane({ node: 'lab', base });
  try {
    assert.equal(again.maps.decaps.map.id, dp.maps.decaps.map.id, 'the same map');
    assert.equal(again.maps.decaps.entries().length, 2, 'with its entries');
    assert.notEqual(again.decap.id, dp.decap.id, 'a new program');
    const opened = openCpeDataplane({ node: 'lab', base });
    assert.equal(opened.encap.id, again.encap.id);
    opened.close();
  } finally {
    again.close();
  }
});
