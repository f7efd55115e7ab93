// What an edge announces (src/agent/bgp/announce.ts), and the BIRD spec that announces exactly that.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bgpPeerProtocolName, edgeAnnouncements, edgeBirdSpec, type EdgeBgpInput } from '../../src/agent/bgp/announce.js';
import { checkBirdConfig } from '../../src/kernel/bird.js';
import { parseBgpPeerInput } from '../../src/model/bgp.js';

const ACME = 'a'.repeat(32);
const BETA = 'b'.repeat(32);

const input = (over: Partial<EdgeBgpInput> = {}): EdgeBgpInput => ({
  nodeId: 'edge-1',
  routerId: '100.64.0.2',
  asn: 65001,
  peers: [
    parseBgpPeerInput({ address: '100.64.0.1', asn: 65000, bfd: true, hold_time: 9, keepalive: 3, password: 'pw!1' }),
    parseBgpPeerInput({ address: '2001:db8:ffff::1', asn: 65000 }),
  ],
  accounts: [
    {
      id: ACME,
      ready: true,
      prefixes: [
        { cidr: '203.0.113.0/24', advertised: true },
        { cidr: '203.0.113.128/25', advertised: true },
        { cidr: '198.51.100.0/25', advertised: false },
        { cidr: '2001:DB8:1::/48', advertised: true },
      ],
    },
    { id: BETA, ready: true, prefixes: [{ cidr: '198.18.0.0/24', advertised: true }] },
  ],
  anycastEndpoints: ['192.0.2.10', '192.0.2.11'],
  dataPlaneReady: true,
  drained: false,
  ...over,
});

test('announces advertised prefixes of ready accounts and the anycast endpoints, canonical and sorted', () => {
  const a = edgeAnnouncements(input());
  assert.deepEqual(a.prefixes, ['198.18.0.0/24', '203.0.113.0/24', '203.0.113.128/25', '2001:db8:1::/48']);
  assert.deepEqual(a.endpoints, ['192.0.2.10/32', '192.0.2.11/32']);
  assert.deepEqual(a.all, [...a.prefixes, ...a.endpoints]);
  assert.deepEqual(a.refused, []);
  assert.equal(a.withheld, undefined);
});

test('an account not ready on this node is not announced; a non-advertised prefix never is', () => {
  const a = edgeAnnouncements(input({ accounts: [{ ...input().accounts[0]!, ready: false }, input().accounts[1]!] }));
  assert.deepEqual(a.prefixes, ['198.18.0.0/24']);
  assert.ok(!a.all.includes('198.51.100.0/25'), 'not advertised');
});

test('drained: nothing; data plane not ready: nothing (not even customer prefixes)', () => {
  const drained = edgeAnnouncements(input({ drained: true }));
  assert.deepEqual([drained.all, drained.withheld], [[], 'drained']);
  const notReady = edgeAnnouncements(input({ dataPlaneReady: false }));
  assert.deepEqual([notReady.all, notReady.withheld], [[], 'data-plane-not-ready']);
  // The sessions stay: a drained edge withdraws by UPDATE, it does not drop its peers.
  const { spec } = edgeBirdSpec(input({ drained: true }));
  assert.equal(spec.bgpPeers.length, 2);
  assert.deepEqual(spec.staticRoutes, []);
  assert.deepEqual(spec.bgpPeers.map((p) => p.export), [[], []]);
});

test('every prefix is checked again: invalid CIDRs and prefixes claimed by two tenants are refused with a reason', () => {
  const a = edgeAnnouncements(
    input({
      accounts: [
        {
          id: ACME,
          ready: true,
          prefixes: [
            { cidr: '203.0.113.0/24', advertised: true },
            { cidr: '203.0.113.5/24', advertised: true },
            { cidr: '127.0.0.0/8', advertised: true },
            { cidr: '0.0.0.0/0', advertised: true },
            { cidr: '203.0.113.0/24"; }', advertised: true },
            { cidr: 'garbage', advertised: false },
          ],
        },
        { id: BETA, ready: false, prefixes: [{ cidr: '203.0.113.128/25', advertised: true }] },
      ],
    }),
  );
  assert.deepEqual(a.prefixes, []);
  const byValue = Object.fromEntries(a.refused.map((r) => [r.value, r]));
  assert.match(byValue['203.0.113.5/24']!.reason, /host bits/);
  assert.match(byValue['127.0.0.0/8']!.reason, /loopback|never routed/);
  assert.match(byValue['0.0.0.0/0']!.reason, /outside the allowed/);
  assert.ok(byValue['203.0.113.0/24"; }'], 'injection attempt refused');
  assert.match(byValue['203.0.113.0/24']!.reason, new RegExp(`overlaps 203.0.113.128/25 of account ${BETA}`));
  assert.equal(byValue['203.0.113.0/24']!.accountId, ACME);
  assert.equal(byValue['garbage'], undefined, 'a prefix that is not advertised is not reported');
});

test('anycast endpoints: public IPv4 only, never inside a tenant prefix', () => {
  const a = edgeAnnouncements(input({ anycastEndpoints: ['192.0.2.10', '10.1.1.1', '203.0.113.7', 'nope', '192.0.2.10'] }));
  assert.deepEqual(a.endpoints, ['192.0.2.10/32']);
  const reasons = Object.fromEntries(a.refused.map((r) => [r.value, r.reason]));
  assert.match(reasons['10.1.1.1']!, /not a public unicast/);
  assert.match(reasons['203.0.113.7']!, new RegExp(`inside 203.0.113.0/24 of account ${ACME}`));
  assert.ok(reasons['nope'], 'garbage refused');
});

test('the BIRD spec: one blackhole per announcement, each peer exports exactly its family, imports nothing', () => {
  const { spec, announcements } = edgeBirdSpec(input({ sessionTimers: { connectRetryTime: 5 } }));
  assert.deepEqual(
    spec.staticRoutes.map((r) => [r.prefix, r.type]),
    announcements.all.map((p) => [p, 'blackhole']),
  );
  assert.deepEqual(spec.kernel, { export: 'none', mergePaths: false });
  const [v4, v6] = spec.bgpPeers;
  assert.equal(v4!.name, 'peer_100_64_0_1');
  assert.deepEqual(v4!.export, ['198.18.0.0/24', '203.0.113.0/24', '203.0.113.128/25', '192.0.2.10/32', '192.0.2.11/32']);
  assert.equal(v4!.import, 'none');
  assert.equal(v4!.password, 'pw!1');
  assert.equal(v4!.bfd, true);
  assert.deepEqual([v4!.holdTime, v4!.keepaliveTime, v4!.connectRetryTime], [9, 3, 5]);
  assert.equal(v6!.name, 'peer_2001_db8_ffff__1');
  assert.deepEqual(v6!.export, ['2001:db8:1::/48']);
});

test('the spec renders and bird -p accepts it; the text does not change when nothing changed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ot-bird-announce-'));
  try {
    const a = await checkBirdConfig(edgeBirdSpec(input()).spec, dir);
    const b = await checkBirdConfig(edgeBirdSpec(input({ accounts: [...input().accounts].reverse() })).spec, dir);
    assert.equal(a, b, 'account order must not change the config (a change would cost a reconfigure)');
    await checkBirdConfig(edgeBirdSpec(input({ drained: true })).spec, dir);
    await checkBirdConfig(edgeBirdSpec(input({ peers: [] })).spec, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('peer protocol names come from the address: stable when other peers come and go', () => {
  assert.equal(bgpPeerProtocolName('198.51.100.1'), 'peer_198_51_100_1');
  assert.equal(bgpPeerProtocolName('2001:db8::1'), 'peer_2001_db8__1');
  const one = edgeBirdSpec(input()).spec.bgpPeers.map((p) => p.name);
  const other = edgeBirdSpec(input({ peers: input().peers.slice(1) })).spec.bgpPeers.map((p) => p.name);
  assert.deepEqual(other, one.slice(1));
});
