/**
 * ot_xdp_edge through BPF_PROG_RUN: a table of packets (each feature, each malformed shape) with the verdict, the
 * output bytes and the one counter each packet must land in; the token bucket; sampling to the ring buffer; and a
 * fuzz run (OT_FUZZ_PACKETS, default 100000; OT_FUZZ_SEED to replay) checking that every packet is counted exactly
 * once under a reason of the verdict the program returned.
 *
 * Everything is pinned under a unique bpffs directory, removed at the end (and checked gone).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BPFFS, RingBuffer, ensureBpffs, numPossibleCpus, unpin } from '../../src/kernel/bpf/index.js';
import {
  ipv4Be32,
  lpmKey,
  loadDataplane,
  macBytes,
  monotonicNowNs,
  readCounters,
  removeDataplane,
  type Dataplane,
} from '../../src/kernel/bpf/dataplane.js';
import { syncBlocklistV4Index } from '../../src/kernel/bpf/blocklist4.js';
import { Action, BL4_NAMES, type Bl4, OT_REASON_SLOTS, REASON_NAMES, REASON_VERDICT, Reason, Sample, Verdict, type Rule } from '../../src/kernel/bpf/abi.generated.js';
import {
  ETH_P_ARP,
  IPPROTO,
  TCP,
  ethernet,
  gre,
  icmp,
  ipv4,
  ipv6,
  padFrame,
  raw,
  tcp,
  udp,
  type Segment,
} from '../support/packets.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_REDIRECT = 4;
const ACTION_OF_VERDICT: Record<number, number> = { [Verdict.PASS]: XDP_PASS, [Verdict.DROP]: XDP_DROP, [Verdict.REDIRECT]: XDP_REDIRECT };

// The world of these tests (documentation/private ranges only).
const ACME = 1; // 203.0.113.0/24, 2001:db8:100::/48; GRE peer 198.51.100.10; delivered to ifindex 7
const BETA = 2; // 198.18.0.0/24; GRE peer 198.51.100.20; no delivery interface
const ANYCAST = '192.0.2.1';
const ACME_PEER = '198.51.100.10';
const BETA_PEER = '198.51.100.20';
const STRANGER = '198.51.100.99';
const BLOCKED = '198.51.100.66';
const DELIVERY = { ifindex: 7, dmac: '02:00:00:00:aa:01', smac: '02:00:00:00:bb:01' };

const base = `${BPFFS}/ot-test-xdp-${process.pid}-${randomBytes(3).toString('hex')}`;
let dp: Dataplane;

function rule(r: Partial<Rule> & { action: number }): Rule {
  return {
    expires_ns: 0n, slot: 0, rate_pps: 0, burst: 0, sport_min: 0, sport_max: 0xffff, dport_min: 0, dport_max: 0xffff,
    len_min: 0, len_max: 0xffff, proto: 0, tcp_flags_mask: 0, tcp_flags_value: 0, ttl_min: 0, ttl_max: 255, ...r,
  };
}

// Rules of 203.0.113.0/24, copied into every more specific prefix's set (the longest match alone applies).
const ACME_RULES: Rule[] = [
  rule({ slot: 1, action: Action.DROP, proto: IPPROTO.TCP, dport_min: 22, dport_max: 22, tcp_flags_mask: TCP.SYN | TCP.ACK, tcp_flags_value: TCP.SYN }),
  rule({ slot: 2, action: Action.DROP, ttl_min: 0, ttl_max: 2 }),
];

before(() => {
  ensureBpffs();
  dp = loadDataplane({ node: 'edge', base });
  const m = dp.maps;
  m.prefixes.set(lpmKey('203.0.113.0/24'), ACME);
  m.prefixes.set(lpmKey('2001:db8:100::/48'), ACME);
  m.prefixes.set(lpmKey('198.18.0.0/24'), BETA);
  m.blocklist.set(lpmKey(`${BLOCKED}/32`), 1);
  m.blocklist.set(lpmKey('2001:db8:bad::/48'), 2);
  // IPv4 sources are looked up in the blocklist's index (blocklist4.ts). With budgets of 1 page and 2 level-2
  // bitmaps, every state occurs: 10.64.0.0/10 covers its /16s; 10.128.0.0/17 (128 /24s, the densest) gets the page;
  // 198.51.100.66/32 (1 bitmap) is in level 2; 172.16.5.0/24 + 172.16.7.128/25 (2 more) are left to the trie.
  for (const cidr of ['10.64.0.0/10', '172.16.5.0/24', '172.16.7.128/25', '10.128.0.0/17']) m.blocklist.set(lpmKey(cidr), 3);
  syncBlocklistV4Index(m, [], { pages: 1, l2Max: 2 });
  assert.deepEqual(
    [0x0a40, 0x0a80, 0xc633, 0xac10].map((s16) => BL4_NAMES[(m.bl4Slash16.get(s16)! & 0xff) as Bl4]),
    ['COVERED', 'PAGE', 'HOSTS', 'TRIE'],
  );
  m.anycast.set(ipv4Be32(ANYCAST), 0);
  m.grePeers.set(ipv4Be32(ACME_PEER), { account: ACME, flags: 0 });
  m.grePeers.set(ipv4Be32(BETA_PEER), { account: BETA, flags: 0 });
  m.delivery.set(ACME, { ifindex: DELIVERY.ifindex, dmac: macBytes(DELIVERY.dmac), smac: macBytes(DELIVERY.smac), mtu6: 0 });
  m.mitigation.set(lpmKey('203.0.113.0/24'), { count: ACME_RULES.length, rules: ACME_RULES });
  m.mitigation.set(lpmKey('203.0.113.53/32'), {
    count: 3,
    rules: [rule({ slot: 3, action: Action.DROP, proto: IPPROTO.UDP, dport_min: 53, dport_max: 53, len_min: 1000 }), ...ACME_RULES],
  });
  m.mitigation.set(lpmKey('203.0.113.99/32'), {
    count: 2,
    rules: [
      rule({ slot: 4, action: Action.PASS, proto: IPPROTO.UDP, sport_min: 123, sport_max: 123 }),
      rule({ slot: 5, action: Action.DROP, proto: IPPROTO.UDP }),
    ],
  });
  m.mitigation.set(lpmKey('203.0.113.77/32'), { count: 1, rules: [rule({ slot: 6, action: Action.DROP, expires_ns: monotonicNowNs() - 1n })] });
  m.mitigation.set(lpmKey('2001:db8:100::53/128'), {
    count: 1,
    rules: [rule({ slot: 7, action: Action.DROP, proto: IPPROTO.UDP, dport_min: 53, dport_max: 53 })],
  });
});

after(() => {
  dp?.close();
  removeDataplane({ node: 'edge', base });
  assert.deepEqual(readdirSync(base), [], 'no pins left in the test directory');
  unpin(base);
  assert.equal(existsSync(base), false);
});

// --- counters --------------------------------------------------------------------------------------------------

type Snapshot = Map<number, { packets: bigint; bytes: bigint }>;

function snapshot(): Snapshot {
  const s: Snapshot = new Map();
  for (const c of readCounters(dp.maps.counters)) s.set(c.account * OT_REASON_SLOTS + c.reason, { packets: c.packets, bytes: c.bytes });
  return s;
}

/** What changed between two snapshots: slot → [packets, bytes]. */
function delta(before: Snapshot, after: Snapshot): Map<number, [bigint, bigint]> {
  const d = new Map<number, [bigint, bigint]>();
  for (const [slot, a] of after) {
    const b = before.get(slot) ?? { packets: 0n, bytes: 0n };
    if (a.packets !== b.packets || a.bytes !== b.bytes) d.set(slot, [a.packets - b.packets, a.bytes - b.bytes]);
  }
  return d;
}

const slotName = (slot: number) => `account ${Math.floor(slot / OT_REASON_SLOTS)} ${REASON_NAMES[(slot % OT_REASON_SLOTS) as Reason]}`;

function describeDelta(d: Map<number, [bigint, bigint]>): string[] {
  return [...d].map(([slot, [p, b]]) => `${slotName(slot)}: +${p} packets +${b} bytes`);
}

// --- the table -------------------------------------------------------------------------------------------------

interface Fixture {
  description: string;
  input: Buffer;
  verdict: number;
  reason: Reason;
  account: number;
  /** Expected output bytes (default: the input, unchanged). */
  output?: Buffer;
}

const eth = (payload: Buffer, vlans?: number[]) => padFrame(ethernet(vlans ? { vlans } : {}, payload));
const v4 = (src: string, dst: string, l4: Segment, o: Partial<Parameters<typeof ipv4>[0]> = {}) => ipv4({ src, dst, ...o }, l4);
const v6 = (src: string, dst: string, l4: Segment, o: Partial<Parameters<typeof ipv6>[0]> = {}) => ipv6({ src, dst, ...o }, l4);
const web = () => tcp({ sport: 40000, dport: 443, flags: TCP.ACK }, Buffer.from('hello'));
const dns = (size = 40) => udp({ sport: 5353, dport: 53 }, Buffer.alloc(size, 0x61));

const innerV4 = v4('203.0.113.5', '198.51.100.200', udp({ sport: 1000, dport: 2000 }, Buffer.from('inner payload')));
const innerV6 = v6('2001:db8:100::5', '2001:db8:ffff::1', udp({ sport: 1000, dport: 2000 }, Buffer.from('inner payload')));
const decapped = (inner: Buffer, type = 0x0800) => ethernet({ dst: DELIVERY.dmac, src: DELIVERY.smac, type }, inner);

/** A frame cut to `n` bytes (a truncated capture); BPF_PROG_RUN refuses fewer than 14. */
const cut = (frame: Buffer, n: number) => frame.subarray(0, n);

function fixtures(): Fixture[] {
  const F: Fixture[] = [];
  const pass = (description: string, input: Buffer, account = ACME) => F.push({ description, input, verdict: XDP_PASS, reason: Reason.PASS, account });
  const drop = (description: string, input: Buffer, reason: Reason, account = ACME) => F.push({ description, input, verdict: XDP_DROP, reason, account });

  // Plain traffic.
  pass('IPv4 TCP to a customer', eth(v4('198.51.100.7', '203.0.113.10', web())));
  pass('IPv4 UDP to a customer', eth(v4('198.51.100.7', '203.0.113.10', dns())));
  pass('IPv4 ICMP echo to a customer', eth(v4('198.51.100.7', '203.0.113.10', icmp())));
  pass('IPv4 to nobody: account 0', eth(v4('198.51.100.7', '192.0.2.200', web())), 0);
  pass('IPv4 with options (IHL 6)', eth(v4('198.51.100.7', '203.0.113.10', web(), { options: Buffer.from([1, 1, 1, 0]) })));
  pass('IPv4 with 40 bytes of options (IHL 15)', eth(v4('198.51.100.7', '203.0.113.10', web(), { options: Buffer.alloc(40, 1) })));
  pass('IPv4 in one 802.1Q tag', eth(v4('198.51.100.7', '203.0.113.10', web()), [100]));
  pass('IPv4 other protocol (ESP): no ports looked at', eth(v4('198.51.100.7', '203.0.113.10', raw(IPPROTO.ESP, Buffer.alloc(24, 7)))));
  pass('IPv6 TCP to a customer', eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web())));
  pass('IPv6 ICMPv6 echo', eth(v6('2001:db8:ffff::7', '2001:db8:100::10', icmp({ v6: true }))));
  pass('IPv6 in one 802.1Q tag', eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web()), [200]));
  pass(
    'IPv6 hop-by-hop + routing + destination options before TCP',
    eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web(), { ext: [{ type: IPPROTO.HOPOPTS }, { type: IPPROTO.ROUTING, extraUnits: 2 }, { type: IPPROTO.DSTOPTS }] })),
  );
  F.push({ description: 'ARP is not ours to judge', input: padFrame(ethernet({ type: ETH_P_ARP }, Buffer.alloc(28, 1))), verdict: XDP_PASS, reason: Reason.PASS_NON_IP, account: 0 });
  drop('two VLAN tags (QinQ)', eth(v4('198.51.100.7', '203.0.113.10', web()), [10, 20]), Reason.DROP_UNSUPPORTED, 0);
  drop(
    'IPv6 with 7 extension headers',
    eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web(), { ext: new Array(7).fill({ type: IPPROTO.DSTOPTS }) })),
    Reason.DROP_UNSUPPORTED,
  );

  // Fragments: non-first ones carry no L4 header, so port rules cannot match them.
  pass('IPv4 non-first fragment of UDP to the DNS-rule host', eth(v4('198.51.100.7', '203.0.113.53', raw(IPPROTO.UDP, Buffer.alloc(1200, 0x61)), { fragOffset: 185 })));
  drop('IPv4 first fragment with a full UDP header meets the DNS rule', eth(v4('198.51.100.7', '203.0.113.53', dns(1200), { mf: true })), Reason.DROP_RULE);
  drop('IPv4 tiny first fragment (UDP header cut)', eth(v4('198.51.100.7', '203.0.113.10', raw(IPPROTO.UDP, Buffer.alloc(4)), { mf: true })), Reason.DROP_MALFORMED);
  pass(
    'IPv6 non-first fragment',
    eth(v6('2001:db8:ffff::7', '2001:db8:100::53', raw(IPPROTO.UDP, Buffer.alloc(64, 1)), { ext: [{ type: IPPROTO.FRAGMENT, fragOffset: 100 }] })),
  );
  drop(
    'IPv6 first fragment with a UDP header meets the IPv6 DNS rule',
    eth(v6('2001:db8:ffff::7', '2001:db8:100::53', dns(), { ext: [{ type: IPPROTO.FRAGMENT, more: true }] })),
    Reason.DROP_RULE,
  );

  // Blocklist.
  drop('IPv4 source in the blocklist (index: HOSTS)', eth(v4(BLOCKED, '203.0.113.10', web())), Reason.DROP_BLOCKLIST);
  drop('IPv6 source in a blocklisted /48', eth(v6('2001:db8:bad:1::9', '2001:db8:100::10', web())), Reason.DROP_BLOCKLIST);
  drop('blocklist applies to traffic for nobody too', eth(v4(BLOCKED, '192.0.2.200', web())), Reason.DROP_BLOCKLIST, 0);
  drop('IPv4 source in a blocklisted /10 (index: COVERED)', eth(v4('10.100.1.2', '203.0.113.10', web())), Reason.DROP_BLOCKLIST);
  drop('IPv4 source in a blocklisted /17 (index: PAGE)', eth(v4('10.128.3.4', '203.0.113.10', web())), Reason.DROP_BLOCKLIST);
  pass('IPv4 source in the same /16 past the /17 (index: PAGE, bit clear)', eth(v4('10.128.200.1', '203.0.113.10', web())));
  pass('IPv4 source in a /24 without a bitmap (index: HOSTS)', eth(v4('198.51.101.1', '203.0.113.10', web())));
  drop('IPv4 source in a blocklisted /24 (index: TRIE)', eth(v4('172.16.5.9', '203.0.113.10', web())), Reason.DROP_BLOCKLIST);
  drop('IPv4 source in a blocklisted /25 (index: TRIE)', eth(v4('172.16.7.200', '203.0.113.10', web())), Reason.DROP_BLOCKLIST);
  pass('IPv4 source in the other half of that /24 (index: TRIE)', eth(v4('172.16.7.100', '203.0.113.10', web())));
  pass('IPv4 source in a /24 without entries, in a /16 with some (index: TRIE)', eth(v4('172.16.6.1', '203.0.113.10', web())));
  drop('IPv4 source blocklisted, in a 802.1Q tag', eth(v4('172.16.5.9', '203.0.113.10', web()), [100]), Reason.DROP_BLOCKLIST);
  drop('IPv6 packet from ::ffff:172.16.5.9 (IPv4-mapped, in a blocklisted /24): the trie, as ever', eth(v6('::ffff:ac10:509', '2001:db8:100::10', web())), Reason.DROP_BLOCKLIST);

  // Mitigation rules.
  drop('TCP SYN to port 22 (flags rule)', eth(v4('198.51.100.7', '203.0.113.22', tcp({ sport: 40000, dport: 22, flags: TCP.SYN }))), Reason.DROP_RULE);
  pass('TCP SYN-ACK to port 22 does not match SYN only', eth(v4('198.51.100.7', '203.0.113.22', tcp({ sport: 40000, dport: 22, flags: TCP.SYN | TCP.ACK }))));
  pass('TCP SYN to port 23 is outside the port range', eth(v4('198.51.100.7', '203.0.113.22', tcp({ sport: 40000, dport: 23, flags: TCP.SYN }))));
  drop('TTL 2 hits the TTL-range rule', eth(v4('198.51.100.7', '203.0.113.10', web(), { ttl: 2 })), Reason.DROP_RULE);
  pass('TTL 3 is outside the TTL range', eth(v4('198.51.100.7', '203.0.113.10', web(), { ttl: 3 })));
  drop('large DNS answer (length >= 1000) to .53', eth(v4('198.51.100.7', '203.0.113.53', dns(1200))), Reason.DROP_RULE);
  pass('small DNS to .53 is under the length range', eth(v4('198.51.100.7', '203.0.113.53', dns(40))));
  drop('the /24 rules are copied into the /32 set', eth(v4('198.51.100.7', '203.0.113.53', web(), { ttl: 1 })), Reason.DROP_RULE);
  pass('a pass rule ahead of a drop rule (NTP)', eth(v4('198.51.100.7', '203.0.113.99', udp({ sport: 123, dport: 123 }))));
  drop('the drop rule after it (other UDP)', eth(v4('198.51.100.7', '203.0.113.99', udp({ sport: 124, dport: 123 }))), Reason.DROP_RULE);
  pass('an expired rule is ignored', eth(v4('198.51.100.7', '203.0.113.77', web())));
  drop('IPv6 DNS rule', eth(v6('2001:db8:ffff::7', '2001:db8:100::53', dns())), Reason.DROP_RULE);
  pass('IPv6 DNS rule: other port', eth(v6('2001:db8:ffff::7', '2001:db8:100::53', udp({ sport: 1, dport: 54 }))));

  // GRE from customer endpoints.
  const greTo = (src: string, l4: Segment, o: Partial<Parameters<typeof ipv4>[0]> = {}) => eth(v4(src, ANYCAST, l4, o));
  F.push({ description: 'GRE IPv4 from Acme: decapsulated, redirected', input: greTo(ACME_PEER, gre({}, innerV4)), verdict: XDP_REDIRECT, reason: Reason.REDIRECT_GRE, account: ACME, output: decapped(innerV4) });
  F.push({ description: 'GRE IPv6 from Acme: decapsulated, redirected', input: greTo(ACME_PEER, gre({}, innerV6)), verdict: XDP_REDIRECT, reason: Reason.REDIRECT_GRE, account: ACME, output: decapped(innerV6, 0x86dd) });
  F.push({
    description: 'GRE in a VLAN-tagged frame: the tag goes with the outer headers',
    input: eth(v4(ACME_PEER, ANYCAST, gre({}, innerV4)), [300]),
    verdict: XDP_REDIRECT,
    reason: Reason.REDIRECT_GRE,
    account: ACME,
    output: decapped(innerV4),
  });
  F.push({
    description: 'GRE with outer IP options',
    input: greTo(ACME_PEER, gre({}, innerV4), { options: Buffer.from([1, 1, 1, 1]) }),
    verdict: XDP_REDIRECT,
    reason: Reason.REDIRECT_GRE,
    account: ACME,
    output: decapped(innerV4),
  });
  drop('GRE with the key bit', greTo(ACME_PEER, gre({ key: 42 }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE with the checksum bit', greTo(ACME_PEER, gre({ checksum: true }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE with the sequence bit', greTo(ACME_PEER, gre({ seq: 7 }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE with the routing bit', greTo(ACME_PEER, gre({ flags: 0x4000 }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE version 1 (PPTP)', greTo(ACME_PEER, gre({ flags: 0x0001 }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE carrying Ethernet (0x6558)', greTo(ACME_PEER, gre({ proto: 0x6558 }, innerV4)), Reason.DROP_GRE_UNSUPPORTED);
  drop('fragmented GRE', greTo(ACME_PEER, gre({}, innerV4), { mf: true }), Reason.DROP_GRE_UNSUPPORTED);
  drop('GRE from an unknown endpoint', greTo(STRANGER, gre({}, innerV4)), Reason.DROP_GRE_UNKNOWN, 0);
  drop('GRE from Acme with Beta\'s inner source (spoofed)', greTo(ACME_PEER, gre({}, v4('198.18.0.5', '198.51.100.200', udp({ sport: 1, dport: 2 })))), Reason.DROP_GRE_SPOOFED);
  drop('GRE from Acme with an inner source of no customer', greTo(ACME_PEER, gre({}, v4('192.0.2.99', '198.51.100.200', udp({ sport: 1, dport: 2 })))), Reason.DROP_GRE_SPOOFED);
  drop('GRE IPv6 from Acme with a foreign inner source', greTo(ACME_PEER, gre({}, v6('2001:db8:ffff::5', '2001:db8:ffff::1', udp({ sport: 1, dport: 2 })))), Reason.DROP_GRE_SPOOFED);
  drop('GRE from Beta, which has no delivery interface', greTo(BETA_PEER, gre({}, v4('198.18.0.5', '198.51.100.200', udp({ sport: 1, dport: 2 })))), Reason.DROP_GRE_NO_DELIVERY, BETA);
  drop('GRE header cut (2 bytes)', greTo(ACME_PEER, raw(IPPROTO.GRE, Buffer.from([0, 0]))), Reason.DROP_MALFORMED);
  drop('GRE inner IPv4 header cut', greTo(ACME_PEER, gre({}, innerV4.subarray(0, 12))), Reason.DROP_MALFORMED);
  drop('GRE inner IPv4 longer than the outer datagram', greTo(ACME_PEER, gre({}, Buffer.concat([innerV4.subarray(0, 2), Buffer.from([0x05, 0xdc]), innerV4.subarray(4)]))), Reason.DROP_MALFORMED);
  drop('GRE inner IPv6 header cut', greTo(ACME_PEER, gre({ proto: 0x86dd }, innerV6.subarray(0, 30))), Reason.DROP_MALFORMED);
  drop('GRE inner claims IPv4 but is version 6', greTo(ACME_PEER, gre({ proto: 0x0800 }, innerV6)), Reason.DROP_MALFORMED);
  drop('GRE from a blocklisted source', greTo(BLOCKED, gre({}, innerV4)), Reason.DROP_BLOCKLIST, 0);
  pass('GRE between others, to a customer prefix, is transit traffic', eth(v4(ACME_PEER, '203.0.113.9', gre({}, innerV4))));

  // Malformed: truncated at each header, inconsistent lengths.
  const full = eth(v4('198.51.100.7', '203.0.113.10', web()));
  drop('VLAN tag cut', cut(ethernet({ vlans: [5] }, v4('198.51.100.7', '203.0.113.10', web())), 16), Reason.DROP_MALFORMED, 0);
  drop('IPv4 header cut', cut(full, 14 + 10), Reason.DROP_MALFORMED, 0);
  drop('IPv4 options cut (IHL 15, 24 bytes present)', cut(eth(v4('198.51.100.7', '203.0.113.10', web(), { options: Buffer.alloc(40, 1) })), 14 + 24), Reason.DROP_MALFORMED, 0);
  drop('IPv4 IHL 4 (below the minimum)', eth(v4('198.51.100.7', '203.0.113.10', web(), { ihl: 4 })), Reason.DROP_MALFORMED, 0);
  drop('IPv4 version 5', eth(v4('198.51.100.7', '203.0.113.10', web(), { version: 5 })), Reason.DROP_MALFORMED, 0);
  drop('IPv4 total length beyond the frame', eth(v4('198.51.100.7', '203.0.113.10', web(), { totalLength: 1500 })), Reason.DROP_MALFORMED, 0);
  drop('IPv4 total length below the header', eth(v4('198.51.100.7', '203.0.113.10', web(), { totalLength: 16 })), Reason.DROP_MALFORMED, 0);
  drop('TCP header cut (frame)', cut(full, 14 + 20 + 10), Reason.DROP_MALFORMED, 0);
  drop('TCP header cut (IP length says 10 bytes of TCP)', eth(v4('198.51.100.7', '203.0.113.10', web(), { totalLength: 30 })), Reason.DROP_MALFORMED);
  drop('TCP data offset 4', eth(v4('198.51.100.7', '203.0.113.10', tcp({ sport: 1, dport: 2, dataOffset: 4 }))), Reason.DROP_MALFORMED);
  drop('TCP data offset beyond the datagram', eth(v4('198.51.100.7', '203.0.113.10', tcp({ sport: 1, dport: 2, dataOffset: 15 }))), Reason.DROP_MALFORMED);
  drop('UDP header cut', eth(v4('198.51.100.7', '203.0.113.10', raw(IPPROTO.UDP, Buffer.alloc(5)))), Reason.DROP_MALFORMED);
  drop('ICMP header cut', eth(v4('198.51.100.7', '203.0.113.10', raw(IPPROTO.ICMP, Buffer.alloc(6)))), Reason.DROP_MALFORMED);
  const full6 = eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web()));
  drop('IPv6 header cut', cut(full6, 14 + 30), Reason.DROP_MALFORMED, 0);
  drop('IPv6 version 4 in an IPv6 EtherType', ethernet({ type: 0x86dd }, Buffer.concat([Buffer.from([0x45]), full6.subarray(15)])), Reason.DROP_MALFORMED, 0);
  drop('IPv6 payload length beyond the frame', eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web(), { payloadLength: 1000 })), Reason.DROP_MALFORMED, 0);
  drop('IPv6 TCP cut', cut(full6, 14 + 40 + 8), Reason.DROP_MALFORMED, 0);
  drop(
    'IPv6 extension header beyond the payload',
    eth(v6('2001:db8:ffff::7', '2001:db8:100::10', raw(IPPROTO.DSTOPTS, Buffer.from([6, 0])), { nextHeader: IPPROTO.DSTOPTS })),
    Reason.DROP_MALFORMED,
  );
  return F;
}

describe('ot_xdp_edge packet table (BPF_PROG_RUN)', () => {
  test('every fixture: verdict, output bytes, and exactly one counter', () => {
    const failures: string[] = [];
    for (const f of fixtures()) {
      const before = snapshot();
      const r = dp.xdpEdge.testRun(f.input);
      const d = delta(before, snapshot());
      const want = f.output ?? f.input;
      const slot = f.account * OT_REASON_SLOTS + f.reason;
      const problems: string[] = [];
      if (r.retval !== f.verdict) problems.push(`verdict ${r.retval}, expected ${f.verdict}`);
      if (!r.data.equals(want)) problems.push(`output differs:\n    got  ${r.data.toString('hex')}\n    want ${want.toString('hex')}`);
      const hit = d.get(slot);
      if (d.size !== 1 || !hit || hit[0] !== 1n || hit[1] !== BigInt(f.input.length))
        problems.push(`counters: expected ${slotName(slot)} +1 packet +${f.input.length} bytes, got [${describeDelta(d).join('; ')}]`);
      if (ACTION_OF_VERDICT[REASON_VERDICT[f.reason]] !== f.verdict) problems.push('fixture error: reason and verdict disagree');
      if (problems.length) failures.push(`${f.description}: ${problems.join('; ')}`);
    }
    assert.deepEqual(failures, []);
  });

  test('BPF_PROG_RUN refuses frames shorter than an Ethernet header (so does every NIC)', () => {
    assert.throws(() => dp.xdpEdge.testRun(Buffer.alloc(13)), (e: unknown) => (e as { code?: string }).code === 'EINVAL');
  });

  test('per-rule statistics count matches and drops', () => {
    const stats = dp.maps.ruleStats.getPerCpu(1)!;
    const sum = stats.reduce((a, s) => ({ p: a.p + s.packets, d: a.d + s.dropped_packets }), { p: 0n, d: 0n });
    assert.ok(sum.p >= 1n && sum.d === sum.p, `slot 1 (SYN to 22): ${sum.p} matched, ${sum.d} dropped`);
    const passStats = dp.maps.ruleStats.getPerCpu(4)!;
    assert.ok(passStats.reduce((a, s) => a + s.packets, 0n) >= 1n, 'the pass rule counts its matches');
    assert.equal(passStats.reduce((a, s) => a + s.dropped_packets, 0n), 0n, 'and drops none');
  });
});

describe('the per-CPU destination cache (ot_dst_cache) follows every write to ot_prefixes and ot_mitigation', () => {
  // Each step sends the same destination again, so a stale cached answer (account or rules) would show.
  test('a rule added, changed and removed, and an owner added and removed, apply from the next packet on', () => {
    const host = '203.0.113.130';
    const other = '192.0.2.130';
    const frame = eth(v4('198.51.100.7', host, dns()));
    const verdict = (f: Buffer) => {
      const before = snapshot();
      const r = dp.xdpEdge.testRun(f, { repeat: 3 }); // repeat: the 2nd and 3rd runs answer from the cache
      const d = delta(before, snapshot());
      assert.equal(d.size, 1, describeDelta(d).join('; '));
      const [slot] = [...d.keys()];
      return [r.retval, slotName(slot!)];
    };
    const generation = () => dp.maps.generation.get(0)!;
    assert.deepEqual(verdict(frame), [XDP_PASS, 'account 1 PASS']);
    const g0 = generation();
    dp.maps.mitigation.set(lpmKey(`${host}/32`), { count: 1, rules: [rule({ slot: 30, action: Action.DROP, proto: IPPROTO.UDP })] });
    assert.ok(generation() > g0, 'a write bumps the generation');
    assert.deepEqual(verdict(frame), [XDP_DROP, 'account 1 DROP_RULE']);
    dp.maps.mitigation.set(lpmKey(`${host}/32`), { count: 1, rules: [rule({ slot: 30, action: Action.DROP, proto: IPPROTO.TCP })] });
    assert.deepEqual(verdict(frame), [XDP_PASS, 'account 1 PASS']);
    dp.maps.mitigation.delete(lpmKey(`${host}/32`));
    assert.deepEqual(verdict(frame), [XDP_PASS, 'account 1 PASS']);

    const toOther = eth(v4('198.51.100.7', other, dns()));
    assert.deepEqual(verdict(toOther), [XDP_PASS, 'account 0 PASS']);
    dp.maps.prefixes.set(lpmKey(`${other}/32`), BETA);
    assert.deepEqual(verdict(toOther), [XDP_PASS, 'account 2 PASS']);
    dp.maps.prefixes.delete(lpmKey(`${other}/32`));
    assert.deepEqual(verdict(toOther), [XDP_PASS, 'account 0 PASS']);
    // IPv6 destinations are cached the same way.
    const v6frame = eth(v6('2001:db8:ffff::7', '2001:db8:100::53', dns()));
    assert.deepEqual(verdict(v6frame), [XDP_DROP, 'account 1 DROP_RULE']);
    dp.maps.mitigation.delete(lpmKey('2001:db8:100::53/128'));
    try {
      assert.deepEqual(verdict(v6frame), [XDP_PASS, 'account 1 PASS']);
    } finally {
      dp.maps.mitigation.set(lpmKey('2001:db8:100::53/128'), { count: 1, rules: [rule({ slot: 7, action: Action.DROP, proto: IPPROTO.UDP, dport_min: 53, dport_max: 53 })] });
    }
  });
});

describe('rate limiting (per-CPU token bucket)', () => {
  // BPF_PROG_RUN's repeat runs the program N times on one CPU: a burst of N packets through one bucket.
  test('burst 3: three pass, the rest are dropped; a zero rate drops everything', () => {
    const host = '203.0.113.120';
    const slot = 20;
    dp.maps.rlState.set(slot, { tokens: 0n, last_ns: 0n });
    dp.maps.mitigation.set(lpmKey(`${host}/32`), { count: 1, rules: [rule({ slot, action: Action.RATELIMIT, proto: IPPROTO.ICMP, rate_pps: 1, burst: 3 })] });
    const frame = eth(v4('198.51.100.7', host, icmp()));
    const before = snapshot();
    const r = dp.xdpEdge.testRun(frame, { repeat: 5 });
    const d = delta(before, snapshot());
    assert.equal(r.retval, XDP_DROP, 'the 5th packet of the burst is dropped');
    assert.deepEqual(
      describeDelta(d).sort(),
      [`account 1 DROP_RATELIMIT: +2 packets +${2 * frame.length} bytes`, `account 1 PASS: +3 packets +${3 * frame.length} bytes`].sort(),
    );
    const icmpOther = eth(v4('198.51.100.7', host, web()));
    assert.equal(dp.xdpEdge.testRun(icmpOther).retval, XDP_PASS, 'other protocols are not limited');

    dp.maps.mitigation.set(lpmKey(`${host}/32`), { count: 1, rules: [rule({ slot, action: Action.RATELIMIT, proto: IPPROTO.ICMP, rate_pps: 0, burst: 3 })] });
    assert.equal(dp.xdpEdge.testRun(frame).retval, XDP_DROP, 'rate 0 fails closed');
    dp.maps.mitigation.delete(lpmKey(`${host}/32`));
  });

  test('tokens refill with time', async () => {
    const host = '203.0.113.121';
    const slot = 21;
    dp.maps.rlState.set(slot, { tokens: 0n, last_ns: 0n });
    dp.maps.mitigation.set(lpmKey(`${host}/32`), { count: 1, rules: [rule({ slot, action: Action.RATELIMIT, rate_pps: 1000, burst: 1 })] });
    const frame = eth(v4('198.51.100.7', host, icmp()));
    assert.equal(dp.xdpEdge.testRun(frame, { repeat: 2 }).retval, XDP_DROP, 'burst 1: the second back-to-back packet is dropped');
    // 1000 pps refills one token per ms; after 20 ms every CPU's bucket is full again, whichever CPU runs next.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(dp.xdpEdge.testRun(frame).retval, XDP_PASS);
    dp.maps.mitigation.delete(lpmKey(`${host}/32`));
  });
});

describe('sampling to the ring buffer', () => {
  test('sample_every 1 copies every packet with its verdict; 0 stops', async () => {
    const records: Buffer[] = [];
    const rb = new RingBuffer(dp.maps.samples, (batch) => records.push(...batch));
    try {
      dp.maps.config.set(0, { sample_every: 1, flags: 0, fwmark: 0, fib_table: 0 });
      const blocked = eth(v4(BLOCKED, '203.0.113.10', web()));
      const big = eth(v4('198.51.100.7', '203.0.113.10', udp({ sport: 1, dport: 2 }, Buffer.alloc(300, 0x5a))));
      const tunnelled = eth(v4(ACME_PEER, ANYCAST, gre({}, innerV4)));
      dp.xdpEdge.testRun(blocked);
      dp.xdpEdge.testRun(big);
      dp.xdpEdge.testRun(tunnelled);
      // Delivered by the event loop (epoll fd on a libuv poll handle), not by a synchronous call.
      for (let i = 0; i < 100 && records.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(records.length, 3);
      const s = records.map((r) => Sample.decode(r));
      assert.deepEqual(
        s.map((x) => [x.reason, x.account, x.pkt_len, x.cap_len, x.hook]),
        [
          [Reason.DROP_BLOCKLIST, ACME, blocked.length, blocked.length, 1],
          [Reason.PASS, ACME, big.length, 128, 1],
          [Reason.REDIRECT_GRE, ACME, tunnelled.length, tunnelled.length, 1],
        ],
      );
      assert.ok(s[0]!.data.subarray(0, blocked.length).equals(blocked), 'the sample holds the packet');
      assert.ok(s[1]!.data.equals(big.subarray(0, 128)), 'the first 128 bytes of a longer packet');
      assert.ok(s[2]!.data.subarray(0, tunnelled.length).equals(tunnelled), 'a tunnelled packet is sampled before decap');
      assert.ok(s[0]!.ts_ns > 0n);

      dp.maps.config.set(0, { sample_every: 0, flags: 0, fwmark: 0, fib_table: 0 });
      dp.xdpEdge.testRun(blocked);
      assert.equal(rb.consume(), 0, 'sampling off: nothing more');
    } finally {
      rb.close();
      dp.maps.config.set(0, { sample_every: 0, flags: 0, fwmark: 0, fib_table: 0 });
    }
  });
});

describe('the packet builder agrees with an independent decoder (scapy)', () => {
  test('checksums and fields of a few fixtures', () => {
    const frames = [
      eth(v4('198.51.100.7', '203.0.113.10', web(), { options: Buffer.from([1, 1, 1, 0]) })),
      eth(v4('198.51.100.7', '203.0.113.10', dns())),
      eth(v4('198.51.100.7', '203.0.113.10', icmp())),
      eth(v6('2001:db8:ffff::7', '2001:db8:100::10', web())),
      eth(v6('2001:db8:ffff::7', '2001:db8:100::10', icmp({ v6: true }))),
      eth(v4(ACME_PEER, ANYCAST, gre({}, innerV4))),
    ];
    // scapy recomputes every checksum it is asked to forget; equal bytes mean ours were right. Debian's python3
    // (python3-scapy), not whatever python3 comes first in PATH.
    const script = [
      'import sys, json',
      'from scapy.all import Ether, NoPayload',
      'out = []',
      'for h in json.load(sys.stdin):',
      '    p = Ether(bytes.fromhex(h))',
      '    l = p',
      '    while l is not None and not isinstance(l, NoPayload):',
      '        for f in ("chksum", "cksum"):',
      '            if any(fd.name == f for fd in l.fields_desc): setattr(l, f, None)',
      '        l = l.payload',
      '    out.append(bytes(p).hex())',
      'print(json.dumps(out))',
    ].join('\n');
    const out = execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(frames.map((f) => f.toString('hex'))), encoding: 'utf8' });
    const rebuilt = JSON.parse(out) as string[];
    assert.deepEqual(rebuilt, frames.map((f) => f.toString('hex')));
  });
});

// --- fuzz ------------------------------------------------------------------------------------------------------

/** xorshift128+: fast, seeded, replayable. */
function prng(seed: bigint): () => number {
  let s0 = seed | 1n;
  let s1 = (seed * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number((s1 + y) & 0xffffffffn) / 0x100000000;
  };
}

describe('fuzz: random and mutated packets', () => {
  test('no crash; every packet counted exactly once, under a reason of the verdict returned', (t) => {
    const count = Number(process.env.OT_FUZZ_PACKETS ?? 100_000);
    const seed = BigInt(process.env.OT_FUZZ_SEED ?? Date.now());
    t.diagnostic(`OT_FUZZ_PACKETS=${count} OT_FUZZ_SEED=${seed} (${numPossibleCpus()} CPUs)`);
    const rnd = prng(seed);
    const int = (n: number) => Math.floor(rnd() * n);
    const seeds = fixtures().map((f) => f.input);
    const byVerdict = new Map<number, number>();
    let bytes = 0n;
    const before = snapshot();
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      let p: Buffer;
      const kind = int(10);
      if (kind === 0) {
        p = randomBytes(14 + int(200)); // noise
      } else {
        p = Buffer.from(seeds[int(seeds.length)]!);
        const flips = 1 + int(4);
        // Mutations aim at the headers (the first 80 bytes) most of the time.
        for (let j = 0; j < flips; j++) p[int(rnd() < 0.8 ? Math.min(80, p.length) : p.length)] = int(256);
        if (kind < 4) p = p.subarray(0, Math.max(14, int(p.length + 1)));
      }
      const r = dp.xdpEdge.testRun(p, { dataOutSize: p.length + 64 });
      byVerdict.set(r.retval, (byVerdict.get(r.retval) ?? 0) + 1);
      bytes += BigInt(p.length);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.diagnostic(`${count} packets in ${ms.toFixed(0)} ms (${((ms / count) * 1e3).toFixed(2)} µs each; 1M ≈ ${((ms / count) * 1e6 / 1000).toFixed(1)} s)`);
    const d = delta(before, snapshot());
    let packets = 0n;
    let countedBytes = 0n;
    const perAction = new Map<number, bigint>();
    for (const [slot, [p, b]] of d) {
      packets += p;
      countedBytes += b;
      const action = ACTION_OF_VERDICT[REASON_VERDICT[(slot % OT_REASON_SLOTS) as Reason]]!;
      perAction.set(action, (perAction.get(action) ?? 0n) + p);
    }
    assert.equal(packets, BigInt(count), 'packets counted');
    assert.equal(countedBytes, bytes, 'bytes counted');
    for (const v of byVerdict.keys()) assert.ok([XDP_DROP, XDP_PASS, XDP_REDIRECT].includes(v), `unexpected verdict ${v}`);
    for (const action of [XDP_DROP, XDP_PASS, XDP_REDIRECT])
      assert.equal(perAction.get(action) ?? 0n, BigInt(byVerdict.get(action) ?? 0), `counters of verdict ${action} = packets that got it`);
    t.diagnostic(`verdicts: ${JSON.stringify(Object.fromEntries(byVerdict))}; reasons: ${describeDelta(d).join('; ')}`);
  });
});
