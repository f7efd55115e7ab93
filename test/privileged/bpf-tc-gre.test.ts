/**
 * ot_tc_gre through BPF_PROG_RUN: encapsulation bytes (outer IPv4 with a correct checksum, GRE, Ethernet rewrite),
 * the tunnel lookup by (netns cookie, destination MAC), fail-closed misses, and one counter per packet.
 * BPF_PROG_RUN runs a tc program on the calling thread's netns loopback, so that netns's cookie is the key here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BPFFS, ensureBpffs, netnsCookie, unpin } from '../../src/kernel/bpf/index.js';
import { ipv4Be32, loadDataplane, macBytes, removeDataplane, tunnelMac, type Dataplane } from '../../src/kernel/bpf/dataplane.js';
import { OT_TUNNEL_F_DF } from '../../src/kernel/bpf/abi.generated.js';
import { ETH_P_ARP, TCP, ethernet, gre, internetChecksum, ipv4, ipv6, tcp, udp } from '../support/packets.js';
import { reasonCountersDelta } from '../support/bpf-counters.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const ACME = 1;
const HOST_MAC = '02:00:00:00:bb:01';
const VETH_MAC = '02:00:00:00:aa:01';

const base = `${BPFFS}/ot-test-tc-${process.pid}-${randomBytes(3).toString('hex')}`;
let dp: Dataplane;
let cookie: bigint;

before(() => {
  ensureBpffs();
  dp = loadDataplane({ node: 'edge', base });
  cookie = netnsCookie();
  const t = { local: ipv4Be32('192.0.2.1'), remote: ipv4Be32('198.51.100.10'), account: ACME, host_mac: macBytes(HOST_MAC) };
  dp.maps.tunnels.set({ netns_cookie: cookie, mac: macBytes(tunnelMac(1)) }, { ...t, ttl: 64, flags: OT_TUNNEL_F_DF });
  dp.maps.tunnels.set({ netns_cookie: cookie, mac: macBytes(tunnelMac(2)) }, { ...t, remote: ipv4Be32('198.51.100.11'), ttl: 255, flags: 0 });
  // The same tunnel MAC in another netns must not match here.
  dp.maps.tunnels.set({ netns_cookie: cookie + 1n, mac: macBytes(tunnelMac(3)) }, { ...t, ttl: 64, flags: 0 });
});

after(() => {
  dp?.close();
  removeDataplane({ node: 'edge', base });
  unpin(base);
  assert.equal(existsSync(base), false, 'no pins left');
});

const countersDelta = (run: () => void): string[] => reasonCountersDelta(dp.maps.counters, run);

const innerV4 = ipv4({ src: '198.51.100.200', dst: '203.0.113.5' }, tcp({ sport: 443, dport: 40000, flags: TCP.ACK }, Buffer.from('response')));
const innerV6 = ipv6({ src: '2001:db8:ffff::1', dst: '2001:db8:100::5' }, udp({ sport: 53, dport: 5353 }, Buffer.from('answer')));

test('IPv4 to a tunnel MAC: outer IPv4 (DF, TTL, checksum) + GRE, Ethernet to the host veth', () => {
  const frame = ethernet({ dst: tunnelMac(1), src: VETH_MAC }, innerV4);
  let r!: ReturnType<typeof dp.tcGre.testRun>;
  assert.deepEqual(countersDelta(() => (r = dp.tcGre.testRun(frame))), ['account 1 ENCAP_GRE +1']);
  assert.equal(r.retval, TC_ACT_OK);
  const want = ethernet({ dst: HOST_MAC, src: VETH_MAC }, ipv4({ src: '192.0.2.1', dst: '198.51.100.10', ttl: 64, df: true, id: 0 }, gre({}, innerV4)));
  assert.equal(r.data.toString('hex'), want.toString('hex'));
  assert.equal(internetChecksum(r.data.subarray(14, 34)), 0, 'the outer header checksum verifies');
});

test('IPv6 inside: GRE protocol 0x86dd; a tunnel without DF gets a random IP ID and its own TTL', () => {
  const frame = ethernet({ dst: tunnelMac(2), src: VETH_MAC }, innerV6);
  const r = dp.tcGre.testRun(frame);
  assert.equal(r.retval, TC_ACT_OK);
  const id = r.data.readUInt16BE(14 + 4);
  const want = ethernet({ dst: HOST_MAC, src: VETH_MAC }, ipv4({ src: '192.0.2.1', dst: '198.51.100.11', ttl: 255, id }, gre({}, innerV6)));
  assert.equal(r.data.toString('hex'), want.toString('hex'));
  assert.equal(r.data.readUInt16BE(14 + 20 + 2), 0x86dd);
  const ids = new Set(Array.from({ length: 8 }, () => dp.tcGre.testRun(frame).data.readUInt16BE(18)));
  assert.ok(ids.size > 1, 'IP IDs vary without DF');
});

test('a tunnel MAC with no tunnel in this netns is dropped and counted (fail closed)', () => {
  for (const id of [99, 3]) {
    const frame = ethernet({ dst: tunnelMac(id), src: VETH_MAC }, innerV4);
    let r!: ReturnType<typeof dp.tcGre.testRun>;
    assert.deepEqual(countersDelta(() => (r = dp.tcGre.testRun(frame))), ['account 0 DROP_TUNNEL_MISS +1'], `tunnel ${id}`);
    assert.equal(r.retval, TC_ACT_SHOT);
  }
});

test('frames to other MACs pass untouched; a non-IP frame to a tunnel is dropped', () => {
  const toHost = ethernet({ dst: HOST_MAC, src: VETH_MAC }, innerV4);
  let r!: ReturnType<typeof dp.tcGre.testRun>;
  assert.deepEqual(countersDelta(() => (r = dp.tcGre.testRun(toHost))), ['account 0 PASS_NOT_TUNNEL +1']);
  assert.equal(r.retval, TC_ACT_OK);
  assert.ok(r.data.equals(toHost));
  const arp = ethernet({ dst: tunnelMac(1), src: VETH_MAC, type: ETH_P_ARP }, Buffer.alloc(28, 1));
  assert.deepEqual(countersDelta(() => (r = dp.tcGre.testRun(arp))), ['account 1 DROP_ENCAP_FAILED +1']);
  assert.equal(r.retval, TC_ACT_SHOT);
});
