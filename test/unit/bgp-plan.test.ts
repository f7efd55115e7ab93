// Which prefixes an edge may announce, from its view of the desired state and its own reconcile results
// (src/agent/bgp/plan.ts, with announce.ts), and the anycast endpoints it makes local (anycast-local.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { edgeAnnouncements } from '../../src/agent/bgp/announce.js';
import { ANYCAST_LABEL, anycastLoopbackDesired } from '../../src/agent/bgp/anycast-local.js';
import { accountsForBgp, type AppliedAdvertised } from '../../src/agent/bgp/plan.js';
import type { AccountStatus } from '../../src/model/node-status.js';
import type { AccountDocument } from '../../src/model/schemas.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

function doc(id: string, prefixes: Array<[string, boolean]>): AccountDocument {
  return {
    id,
    name: id.slice(0, 4),
    created_at: '2024-01-01T00:00:00.000Z',
    prefixes: prefixes.map(([cidr, advertised], i) => ({ id: `${i}`.padStart(32, '0'), cidr, advertised, description: '' })),
    gre_tunnels: [],
    routes: [],
    firewall: { default_action: 'allow', rules: [] },
  };
}

function announced(docs: Map<string, { doc: AccountDocument; revision: number }>, states: Record<string, AccountStatus>, applied: AppliedAdvertised, servable?: Map<string, Set<string>>) {
  const plan = accountsForBgp({ docs, states, ...(servable ? { servable } : {}) }, applied);
  const a = edgeAnnouncements({ nodeId: 'n', routerId: '10.0.0.1', asn: 64512, peers: [], accounts: plan.accounts, anycastEndpoints: [], dataPlaneReady: true, drained: false });
  return { prefixes: a.prefixes, plan };
}

test('a ready account announces what its applied revision advertised; a failing one is withdrawn alone', () => {
  const applied: AppliedAdvertised = new Map();
  const docs = new Map([
    [A, { doc: doc(A, [['203.0.113.0/24', true], ['198.18.0.0/24', false]]), revision: 5 }],
    [B, { doc: doc(B, [['198.18.1.0/24', true]]), revision: 6 }],
  ]);
  const ok = (rev: number): AccountStatus => ({ name: 'x', state: 'ok', applied_revision: rev });
  let r = announced(docs, { [A]: ok(5), [B]: ok(6) }, applied);
  assert.deepEqual(r.prefixes, ['198.18.1.0/24', '203.0.113.0/24']);

  // B fails its next pass: only B's prefix goes, and the status says why.
  r = announced(docs, { [A]: ok(5), [B]: { name: 'b', state: 'error', error: 'nft', applied_revision: 6 } }, applied);
  assert.deepEqual(r.prefixes, ['203.0.113.0/24']);
  assert.deepEqual(r.plan.notReady, { [B]: ['198.18.1.0/24'] });

  // A new revision of A advertises a second prefix: held until the pass that sets it up succeeds.
  docs.set(A, { doc: doc(A, [['203.0.113.0/24', true], ['198.18.0.0/24', true]]), revision: 9 });
  r = announced(docs, { [A]: ok(5) }, applied);
  assert.deepEqual(r.prefixes, ['203.0.113.0/24']);
  assert.deepEqual(r.plan.held.map((h) => h.value), ['198.18.0.0/24']);
  r = announced(docs, { [A]: ok(9) }, applied);
  assert.deepEqual(r.prefixes, ['198.18.0.0/24', '203.0.113.0/24']);

  // advertised: false withdraws at once, before any reconcile.
  docs.set(A, { doc: doc(A, [['203.0.113.0/24', false], ['198.18.0.0/24', true]]), revision: 10 });
  r = announced(docs, { [A]: ok(9) }, applied);
  assert.deepEqual(r.prefixes, ['198.18.0.0/24']);

  // A prefix the kernel does not route to the account's namespace is refused with the reason.
  r = announced(docs, { [A]: ok(10) }, applied, new Map([[A, new Set<string>()]]));
  assert.deepEqual(r.prefixes, []);
  assert.match(r.plan.held[0]!.reason, /no route/);

  // Deleted accounts are forgotten.
  docs.delete(A);
  announced(docs, {}, applied);
  assert.equal(applied.has(A), false);
});

test('pending or unknown accounts announce nothing', () => {
  const docs = new Map([[A, { doc: doc(A, [['203.0.113.0/24', true]]), revision: 1 }]]);
  assert.deepEqual(announced(docs, {}, new Map()).prefixes, []);
  assert.deepEqual(announced(docs, { [A]: { name: 'a', state: 'pending' } }, new Map()).prefixes, []);
});

test('anycast endpoints become labelled /32s on lo; bad or duplicate ones are skipped', () => {
  assert.deepEqual(anycastLoopbackDesired(['192.0.2.10', '192.0.2.10', '10.0.0.1', 'x', '192.0.2.11']), [
    { dev: 'lo', cidr: '192.0.2.10/32', label: ANYCAST_LABEL },
    { dev: 'lo', cidr: '192.0.2.11/32', label: ANYCAST_LABEL },
  ]);
});

test('address ops: a label is written as `label lo:ot` and checked', async () => {
  const { addressReplaceOp } = await import('../../src/kernel/addresses.js');
  assert.deepEqual(addressReplaceOp({ dev: 'lo', cidr: '192.0.2.10/32', label: 'lo:ot' }).args, ['address', 'replace', '192.0.2.10/32', 'dev', 'lo', 'label', 'lo:ot']);
  assert.throws(() => addressReplaceOp({ dev: 'lo', cidr: '192.0.2.10/32', label: 'eth0:ot' }), /label/);
  assert.throws(() => addressReplaceOp({ dev: 'lo', cidr: '192.0.2.10/32', label: 'lo:o t' }), /label/);
  assert.throws(() => addressReplaceOp({ dev: 'lo', cidr: '2001:db8::1/128', label: 'lo:ot' }), /IPv4/);
});
