/** The declarative account document: resolution (defaults, stable ids), whole-document rules, and the diff. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accountToConfig,
  ConflictError,
  decodeAccountDocument,
  AccountDocumentError,
  defaultSettings,
  diffAccounts,
  diffConfig,
  emptyRegistry,
  encodeAccountDocument,
  newAccountDocument,
  planConfig,
  resolveConfig,
  ValidationError,
  withAccount,
  type AccountDocument,
  type ConsistencyContext,
  type ModelError,
} from '../../src/model/index.js';

const ACME = {
  account: 'acme',
  prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
  gre_tunnels: [
    { name: 'acme-chi', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' },
  ],
  routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }],
  firewall: {
    default_action: 'block',
    rules: [{ action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}' }],
  },
};

function ctx(...others: AccountDocument[]): ConsistencyContext {
  let registry = emptyRegistry();
  for (const o of others) registry = withAccount(registry, o);
  return { settings: defaultSettings(), registry };
}

function empty(): AccountDocument {
  return newAccountDocument('a'.repeat(32), 'acme', new Date('2026-01-01T00:00:00Z'));
}

function fails(fn: () => unknown, type: new (...args: never[]) => ModelError, field: string | undefined, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal((err as ModelError).field, field);
    assert.match((err as Error).message, reason);
    return true;
  });
}

test('the example document creates every object with defaults', () => {
  const { doc, changes } = planConfig(empty(), ACME, ctx());
  assert.deepEqual(
    changes.map((c) => `${c.op} ${c.kind} ${c.key}`),
    [
      'create prefix 203.0.113.0/24',
      'create gre_tunnel acme-chi',
      'create route 203.0.113.0/24 via 10.200.0.1',
      'create firewall_rule rules[0]',
      'update firewall firewall',
    ],
  );
  assert.deepEqual(changes[4]!.before, { default_action: 'allow' });
  assert.deepEqual(changes[4]!.after, { default_action: 'block' });
  const t = doc.gre_tunnels[0]!;
  assert.deepEqual({ ...t, id: undefined }, {
    id: undefined,
    name: 'acme-chi',
    customer_gre_endpoint: '198.51.100.2',
    edge_gre_endpoint: '192.0.2.10',
    interface_address: '10.200.0.0/31',
    ttl: 64,
    mtu: 1476,
    health_check: { enabled: true, type: 'reply', rate: 'mid' },
    description: '',
  });
  assert.equal(doc.routes[0]!.weight, 1);
  assert.equal(doc.firewall.rules[0]!.enabled, true);
  assert.equal(doc.created_at, '2026-01-01T00:00:00.000Z');
});

test('re-applying the same document, or the GET /config output, changes nothing and keeps ids', () => {
  const first = planConfig(empty(), ACME, ctx()).doc;
  const again = planConfig(first, ACME, ctx());
  assert.deepEqual(again.changes, []);
  assert.deepEqual(again.doc, first);
  const roundTrip = planConfig(first, structuredClone(accountToConfig(first)), ctx());
  assert.deepEqual(roundTrip.changes, []);
  assert.deepEqual(roundTrip.doc, first);
});

test('objects are matched by natural key: an update keeps the id', () => {
  const first = planConfig(empty(), ACME, ctx()).doc;
  const edited = structuredClone(ACME);
  edited.routes[0]!.priority = 200;
  edited.gre_tunnels[0] = { ...edited.gre_tunnels[0]!, mtu: 1400 } as (typeof edited.gre_tunnels)[0];
  edited.prefixes[0]!.advertised = false;
  const { doc, changes } = planConfig(first, edited, ctx());
  assert.deepEqual(changes.map((c) => `${c.op} ${c.kind} ${c.key}`), [
    'update prefix 203.0.113.0/24',
    'update gre_tunnel acme-chi',
    'update route 203.0.113.0/24 via 10.200.0.1',
  ]);
  assert.equal(doc.routes[0]!.id, first.routes[0]!.id);
  assert.equal(doc.gre_tunnels[0]!.id, first.gre_tunnels[0]!.id);
  assert.deepEqual((changes[2]!.before as { priority: number }).priority, 100);
  assert.deepEqual((changes[2]!.after as { priority: number }).priority, 200);
});

test('an id in the document wins over the natural key: renaming a tunnel keeps it', () => {
  const first = planConfig(empty(), ACME, ctx()).doc;
  const cfg = structuredClone(accountToConfig(first));
  cfg.gre_tunnels[0]!.name = 'acme-ord';
  const { doc, changes } = planConfig(first, cfg, ctx());
  assert.deepEqual(changes.map((c) => `${c.op} ${c.kind} ${c.key}`), ['update gre_tunnel acme-ord']);
  assert.equal(doc.gre_tunnels[0]!.id, first.gre_tunnels[0]!.id);
  // Without the id it is a different tunnel.
  const { changes: noId } = planConfig(first, { ...ACME, gre_tunnels: [{ ...ACME.gre_tunnels[0]!, name: 'acme-ord' }] }, ctx());
  assert.deepEqual(noId.map((c) => `${c.op} ${c.kind} ${c.key}`), ['create gre_tunnel acme-ord', 'delete gre_tunnel acme-chi']);
});

test('unknown or repeated ids are refused', () => {
  const first = planConfig(empty(), ACME, ctx()).doc;
  fails(() => planConfig(first, { ...ACME, routes: [{ ...ACME.routes[0]!, id: 'f'.repeat(32) }] }, ctx()), ValidationError, 'routes[0].id', /no route with id f{32} \(omit the id/);
  const pid = first.prefixes[0]!.id;
  fails(
    () => planConfig(first, { ...ACME, prefixes: [{ id: pid, cidr: '203.0.113.0/24' }, { id: pid, cidr: '203.0.112.0/24' }] }, ctx()),
    ValidationError,
    'prefixes[1].id',
    /appears twice/,
  );
});

test('leaving things out deletes them; an omitted firewall is allow-all', () => {
  const first = planConfig(empty(), ACME, ctx()).doc;
  const { doc, changes } = planConfig(first, { account: 'acme' }, ctx());
  assert.deepEqual(changes.map((c) => `${c.op} ${c.kind} ${c.key}`), [
    'delete prefix 203.0.113.0/24',
    'delete gre_tunnel acme-chi',
    'delete route 203.0.113.0/24 via 10.200.0.1',
    'delete firewall_rule rules[0]',
    'update firewall firewall',
  ]);
  assert.deepEqual(doc.firewall, { default_action: 'allow', rules: [] });
  assert.equal(doc.id, first.id);
  assert.equal(doc.name, 'acme');
});

test('firewall rule diff: inserts do not count as reorders; real reorders and edits do', () => {
  const rules = (exprs: string[]) => ({ default_action: 'block', rules: exprs.map((expression) => ({ action: 'allow', expression })) });
  const first = planConfig(empty(), { ...ACME, firewall: rules(['tcp.dstport == 22', 'tcp.dstport == 80']) }, ctx()).doc;
  const inserted = planConfig(first, { ...ACME, firewall: rules(['udp.dstport == 53', 'tcp.dstport == 22', 'tcp.dstport == 80']) }, ctx());
  assert.deepEqual(inserted.changes.map((c) => `${c.op} ${c.kind} ${c.key}`), ['create firewall_rule rules[0]']);
  const swapped = planConfig(first, { ...ACME, firewall: rules(['tcp.dstport == 80', 'tcp.dstport == 22']) }, ctx());
  assert.deepEqual(swapped.changes.map((c) => `${c.op} ${c.kind} ${c.key}`), ['update firewall firewall']);
  const [a, b] = first.firewall.rules.map((r) => r.id);
  assert.deepEqual(swapped.changes[0]!.before, { default_action: 'block', rule_order: [a, b] });
  assert.deepEqual(swapped.changes[0]!.after, { default_action: 'block', rule_order: [b, a] });
  const edited = planConfig(first, { ...ACME, firewall: rules(['tcp.dstport == 2222', 'tcp.dstport == 80']) }, ctx());
  assert.deepEqual(edited.changes.map((c) => `${c.op} ${c.kind} ${c.key}`), ['update firewall_rule rules[0]']);
  const removed = planConfig(first, { ...ACME, firewall: rules(['tcp.dstport == 80']) }, ctx());
  assert.deepEqual(removed.changes.map((c) => `${c.op} ${c.kind} ${c.key}`), ['delete firewall_rule rules[0]']);
});

test('whole-document rules name the field by its path', () => {
  const bad = (patch: Record<string, unknown>) => () => planConfig(empty(), { ...ACME, ...patch }, ctx());
  fails(bad({ account: 'other' }), ValidationError, 'account', /document is for account "other" but this account is "acme"/);
  fails(bad({ routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.9', priority: 1 }] }), ValidationError, 'routes[0].nexthop', /not the customer-side address/);
  fails(bad({ routes: [{ prefix: '198.51.100.0/24', nexthop: '10.200.0.1', priority: 1 }] }), ValidationError, 'routes[0].prefix', /not inside any of this account's prefixes/);
  fails(bad({ prefixes: [{ cidr: '203.0.113.0/24' }, { cidr: '203.0.113.0/24' }] }), ValidationError, 'prefixes[0].cidr', /already a prefix/);
  fails(bad({ gre_tunnels: [{ ...ACME.gre_tunnels[0]!, mtu: 9000 }] }), ValidationError, 'gre_tunnels[0].mtu', /at most 1476/);
  fails(bad({ gre_tunnels: [{ ...ACME.gre_tunnels[0]!, edge_gre_endpoint: '192.0.2.99' }] }), ValidationError, 'gre_tunnels[0].edge_gre_endpoint', /not one of the operator's anycast endpoints/);
  fails(bad({ firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport in {20..' }] } }), ValidationError, 'firewall.rules[0].expression', /invalid expression at \d+: expected/);
  fails(bad({ routez: [] }), ValidationError, 'routez', /not a known field/);
  fails(bad({ prefixes: {} }), ValidationError, 'prefixes', /must be a list, not an object/);
  fails(bad({ prefixes: { 0: { cidr: '203.0.113.0/24' } } }), ValidationError, 'prefixes', /must be a list, not an object/);
  fails(bad({ gre_tunnels: [{ ...ACME.gre_tunnels[0]!, health_check: [] }] }), ValidationError, 'gre_tunnels[0].health_check', /must be an object, not a list/);
  fails(bad({ firewall: { default_action: 'block', rules: {} } }), ValidationError, 'firewall.rules', /must be a list/);
  fails(() => planConfig(empty(), 'acme', ctx()), ValidationError, undefined, /the input must be an object/);
});

test('a document clashing with another account is a conflict (409)', () => {
  const other = planConfig(newAccountDocument('b'.repeat(32), 'beta'), { prefixes: [{ cidr: '203.0.112.0/22' }] }, ctx()).doc;
  fails(() => planConfig(empty(), ACME, ctx(other)), ConflictError, 'prefixes[0].cidr', /overlaps 203\.0\.112\.0\/22 of another account/);
});

test('resolveConfig does not change the stored document; diffConfig is the changes alone', () => {
  const stored = planConfig(empty(), ACME, ctx()).doc;
  const snapshot = structuredClone(stored);
  resolveConfig(stored, { account: 'acme' }, ctx());
  assert.deepEqual(stored, snapshot);
  assert.equal(diffConfig(stored, { account: 'acme' }, ctx()).changes.length, 5);
  assert.deepEqual(diffAccounts(stored, stored), { changes: [] });
});

test('stored documents decode with a shape check', () => {
  const doc = planConfig(empty(), ACME, ctx()).doc;
  assert.deepEqual(decodeAccountDocument(encodeAccountDocument(doc)), doc);
  assert.throws(() => decodeAccountDocument('{'), AccountDocumentError);
  assert.throws(() => decodeAccountDocument(JSON.stringify({ ...doc, routes: 'x' })), /routes/);
});

test('property: re-applying is a no-op, ids follow natural keys, and the diff is exactly the id-set difference', async () => {
  const fc = (await import('fast-check')).default;
  const PREFIXES = ['203.0.113.0/24', '203.0.113.0/25', '198.18.0.0/24', '198.18.1.0/24', '2001:db8::/48'];
  const TUNNELS = [0, 1, 2].map((i) => ({
    name: `t${i}`,
    customer_gre_endpoint: `198.51.100.${i + 1}`,
    edge_gre_endpoint: '192.0.2.10',
    interface_address: `10.200.0.${2 * i}/31`,
  }));
  const EXPRESSIONS = ['tcp.dstport == 22', 'udp.dstport == 53', 'ip.src in {198.51.100.0/24}', 'ip.proto == "icmp"'];
  const documentArb = fc
    .record({
      prefixes: fc.subarray(PREFIXES, { minLength: 1 }).chain((cidrs) =>
        fc.tuple(...cidrs.map((cidr) => fc.record({ cidr: fc.constant(cidr), advertised: fc.boolean() }))),
      ),
      tunnels: fc.subarray([0, 1, 2]).chain((idx) =>
        fc.tuple(...idx.map((i) => fc.record({ mtu: fc.integer({ min: 1400, max: 1476 }) }).map((o) => ({ ...TUNNELS[i]!, ...o })))),
      ),
      routeSeeds: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 3 })), { maxLength: 6 }),
      rules: fc.array(fc.record({ action: fc.constantFrom('allow', 'block'), expression: fc.constantFrom(...EXPRESSIONS), enabled: fc.boolean() }), { maxLength: 5 }),
      default_action: fc.constantFrom('allow', 'block'),
    })
    .map(({ prefixes, tunnels, routeSeeds, rules, default_action }) => {
      const routes = new Map<string, { prefix: string; nexthop: string; priority: number }>();
      if (tunnels.length > 0) {
        for (const [p, t, priority] of routeSeeds) {
          const prefix = prefixes[p % prefixes.length]!.cidr;
          const n = Number(tunnels[t % tunnels.length]!.interface_address.split('.')[3]!.split('/')[0]) + 1;
          const nexthop = `10.200.0.${n}`;
          routes.set(`${prefix} ${nexthop}`, { prefix, nexthop, priority });
        }
      }
      return { prefixes, gre_tunnels: tunnels, routes: [...routes.values()], firewall: { default_action, rules } };
    });
  const ids = (doc: AccountDocument) => ({
    prefix: doc.prefixes.map((o) => o.id),
    gre_tunnel: doc.gre_tunnels.map((o) => o.id),
    route: doc.routes.map((o) => o.id),
    firewall_rule: doc.firewall.rules.map((o) => o.id),
  });
  fc.assert(
    fc.property(documentArb, documentArb, (d1, d2) => {
      const before = resolveConfig(empty(), d1, ctx());
      const after = resolveConfig(before, d2, ctx());
      assert.deepEqual(planConfig(after, d2, ctx()).changes, [], 're-applying changes nothing');
      assert.deepEqual(resolveConfig(after, d2, ctx()), after, 'and keeps every id');
      for (const p of after.prefixes) {
        const old = before.prefixes.find((q) => q.cidr === p.cidr);
        if (old) assert.equal(p.id, old.id, `prefix ${p.cidr} keeps its id`);
      }
      for (const t of after.gre_tunnels) {
        const old = before.gre_tunnels.find((u) => u.name === t.name);
        if (old) assert.equal(t.id, old.id, `tunnel ${t.name} keeps its id`);
      }
      const { changes } = diffAccounts(before, after);
      const b = ids(before);
      const a = ids(after);
      for (const kind of ['prefix', 'gre_tunnel', 'route', 'firewall_rule'] as const) {
        const of = (op: string) => changes.filter((c) => c.kind === kind && c.op === op).map((c) => (c.after ?? c.before) as { id: string });
        assert.deepEqual(of('create').map((o) => o.id).sort(), a[kind].filter((id) => !b[kind].includes(id)).sort(), `${kind} creates`);
        assert.deepEqual(of('delete').map((o) => o.id).sort(), b[kind].filter((id) => !a[kind].includes(id)).sort(), `${kind} deletes`);
        for (const u of of('update')) assert.ok(a[kind].includes(u.id) && b[kind].includes(u.id), `${kind} updates exist on both sides`);
      }
    }),
    { numRuns: 200 },
  );
});
