/** Cross-object rules, through the one-object operations the API uses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addGreTunnel,
  addPrefix,
  addRoute,
  checkSettingsChange,
  ConflictError,
  defaultSettings,
  deleteGreTunnel,
  deletePrefix,
  deleteRoute,
  emptyRegistry,
  newAccountDocument,
  NotFoundError,
  replaceFirewall,
  replaceGreTunnel,
  replaceRoute,
  updatePrefix,
  ValidationError,
  withAccount,
  type AccountDocument,
  type ModelContext,
  type ModelError,
} from '../../src/model/index.js';

function counter(): () => string {
  let n = 0;
  return () => (++n).toString(16).padStart(32, '0');
}

function ctxWith(...others: AccountDocument[]): ModelContext {
  let registry = emptyRegistry();
  for (const o of others) registry = withAccount(registry, o);
  return { settings: defaultSettings(), registry, newId: counter() };
}

const tunnel = {
  name: 'acme-chi',
  customer_gre_endpoint: '198.51.100.2',
  edge_gre_endpoint: '192.0.2.10',
  interface_address: '10.200.0.0/31',
};

/** Acme with 203.0.113.0/24, tunnel acme-chi and a route over it. */
function acme(ctx: ModelContext): AccountDocument {
  let doc = newAccountDocument('a'.repeat(32), 'acme');
  doc = addPrefix(doc, { cidr: '203.0.113.0/24', advertised: true }, ctx).doc;
  doc = addGreTunnel(doc, tunnel, ctx).doc;
  doc = addRoute(doc, { prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }, ctx).doc;
  return doc;
}

function fails(fn: () => unknown, type: new (...args: never[]) => ModelError, field: string | undefined, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal((err as ModelError).field, field);
    assert.match((err as Error).message, reason);
    return true;
  });
}

test('building an account one object at a time', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  assert.equal(doc.prefixes.length, 1);
  assert.equal(doc.gre_tunnels[0]!.mtu, 1476);
  assert.deepEqual(doc.routes[0], {
    id: doc.routes[0]!.id,
    prefix: '203.0.113.0/24',
    nexthop: '10.200.0.1',
    priority: 100,
    weight: 1,
    description: '',
  });
  assert.match(doc.routes[0]!.id, /^[0-9a-f]{32}$/);
});

test('operations are pure: the input document is never changed', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  const snapshot = structuredClone(doc);
  addPrefix(doc, { cidr: '198.51.100.0/24' }, ctx);
  updatePrefix(doc, doc.prefixes[0]!.id, { advertised: false }, ctx);
  deleteRoute(doc, doc.routes[0]!.id, ctx);
  replaceFirewall(doc, { default_action: 'block' }, ctx);
  assert.deepEqual(doc, snapshot);
});

test('prefix: exact duplicate refused, nested allowed', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  fails(() => addPrefix(doc, { cidr: '203.0.113.0/24' }, ctx), ConflictError, 'cidr', /already a prefix of this account/);
  const nested = addPrefix(doc, { cidr: '203.0.113.128/25', advertised: true }, ctx).doc;
  assert.equal(nested.prefixes.length, 2);
  const wider = addPrefix(doc, { cidr: '203.0.112.0/22' }, ctx).doc;
  assert.equal(wider.prefixes.length, 2);
});

test('prefix overlapping another account is refused both ways (409)', () => {
  const other = acme(ctxWith());
  const mine = { ...newAccountDocument('b'.repeat(32), 'beta') };
  const ctx = ctxWith(other);
  fails(() => addPrefix(mine, { cidr: '203.0.113.0/24' }, ctx), ConflictError, 'cidr', /belongs to another account/);
  fails(() => addPrefix(mine, { cidr: '203.0.113.64/26' }, ctx), ConflictError, 'cidr', /overlaps 203\.0\.113\.0\/24 of another account/);
  fails(() => addPrefix(mine, { cidr: '203.0.0.0/16' }, ctx), ConflictError, 'cidr', /overlaps 203\.0\.113\.0\/24 of another account/);
  assert.equal(addPrefix(mine, { cidr: '203.0.114.0/24' }, ctx).doc.prefixes.length, 1);
  // The account's own registry entry never counts as "another account".
  const own = acme(ctxWith());
  const selfCtx = ctxWith(own);
  assert.equal(addPrefix(own, { cidr: '203.0.113.0/25' }, selfCtx).doc.prefixes.length, 2);
});

test('prefix holding an anycast endpoint is refused', () => {
  const ctx = ctxWith();
  const doc = newAccountDocument('c'.repeat(32), 'gamma');
  fails(() => addPrefix(doc, { cidr: '192.0.2.0/24' }, ctx), ConflictError, 'cidr', /holds the operator's anycast endpoint 192\.0\.2\.10/);
});

test('prefix: ids come from the server; patch; not found', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  fails(() => addPrefix(doc, { id: 'f'.repeat(32), cidr: '198.51.100.0/24' }, ctx), ValidationError, 'id', /assigned by the server/);
  const patched = updatePrefix(doc, doc.prefixes[0]!.id, { advertised: false }, ctx);
  assert.equal(patched.item.advertised, false);
  assert.equal(patched.item.cidr, '203.0.113.0/24');
  fails(() => updatePrefix(doc, 'f'.repeat(32), { advertised: false }, ctx), NotFoundError, undefined, /no prefix with id/);
});

test('deleting a prefix a route needs is refused (409), unless another prefix still covers the route', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  fails(() => deletePrefix(doc, doc.prefixes[0]!.id, ctx), ConflictError, undefined, /would break route 203\.0\.113\.0\/24 via 10\.200\.0\.1: 203\.0\.113\.0\/24 is not inside any of this account's prefixes/);
  const covered = addPrefix(doc, { cidr: '203.0.112.0/22' }, ctx).doc;
  assert.equal(deletePrefix(covered, covered.prefixes[0]!.id, ctx).doc.prefixes.length, 1);
});

test('tunnel: unique name, unique endpoints, edge endpoint from the pool, interface subnets disjoint', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  fails(() => addGreTunnel(doc, { ...tunnel, customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' }, ctx), ConflictError, 'name', /another GRE tunnel of this account is named acme-chi/);
  fails(() => addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', interface_address: '10.200.0.2/31' }, ctx), ConflictError, 'customer_gre_endpoint', /already runs between 198\.51\.100\.2 and 192\.0\.2\.10/);
  fails(() => addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.1/31' }, ctx), ConflictError, 'interface_address', /10\.200\.0\.0\/31 overlaps the interface subnet of GRE tunnel acme-chi/);
  fails(() => addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.1/30' }, ctx), ConflictError, 'interface_address', /overlaps/);
  fails(() => addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', edge_gre_endpoint: '192.0.2.11', interface_address: '10.200.0.2/31' }, ctx), ValidationError, 'edge_gre_endpoint', /192\.0\.2\.11 is not one of the operator's anycast endpoints \(192\.0\.2\.10\)/);
  fails(() => addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', customer_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.2/31' }, ctx), ConflictError, 'customer_gre_endpoint', /is one of the operator's anycast endpoints/);
  const two = addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' }, ctx).doc;
  assert.equal(two.gre_tunnels.length, 2);
});

test('tunnel endpoints used by another account are refused (409)', () => {
  const other = acme(ctxWith());
  const ctx = ctxWith(other);
  const mine = newAccountDocument('b'.repeat(32), 'beta');
  fails(() => addGreTunnel(mine, tunnel, ctx), ConflictError, 'customer_gre_endpoint', /a GRE tunnel of another account already runs between/);
  // The same interface subnet is refused too: every edge accepts a tunnel subnet as an inner source of its
  // account in one trie for all accounts (health checks), so two accounts cannot share one.
  fails(() => addGreTunnel(mine, { ...tunnel, customer_gre_endpoint: '198.51.100.9' }, ctx), ConflictError, 'interface_address', /overlaps the tunnel subnet 10\.200\.0\.0\/31 of another account/);
  // Another customer router with its own subnet is fine.
  assert.equal(addGreTunnel(mine, { ...tunnel, customer_gre_endpoint: '198.51.100.9', interface_address: '10.201.0.0/31' }, ctx).doc.gre_tunnels.length, 1);
});

test('deleting a tunnel a route uses is refused (409); changing its interface address too', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  const tid = doc.gre_tunnels[0]!.id;
  fails(() => deleteGreTunnel(doc, tid, ctx), ConflictError, undefined, /would break route 203\.0\.113\.0\/24 via 10\.200\.0\.1: 10\.200\.0\.1 is not the customer-side address/);
  fails(() => replaceGreTunnel(doc, tid, { ...tunnel, interface_address: '10.200.0.4/31' }, ctx), ConflictError, undefined, /would break route/);
  // Other changes are fine, and the id stays.
  const renamed = replaceGreTunnel(doc, tid, { ...tunnel, name: 'acme-ord', mtu: 1400 }, ctx);
  assert.equal(renamed.item.id, tid);
  assert.equal(renamed.item.name, 'acme-ord');
  assert.equal(renamed.item.ttl, 64, 'PUT replaces: omitted fields take defaults');
  fails(() => replaceGreTunnel(doc, tid, { ...tunnel, id: 'f'.repeat(32) }, ctx), ValidationError, 'id', /does not match the id in the path/);
  assert.equal(replaceGreTunnel(doc, tid, { ...tunnel, id: tid }, ctx).item.id, tid);
  const noRoute = deleteRoute(doc, doc.routes[0]!.id, ctx).doc;
  assert.equal(deleteGreTunnel(noRoute, tid, ctx).doc.gre_tunnels.length, 0);
  fails(() => deleteGreTunnel(doc, 'f'.repeat(32), ctx), NotFoundError, undefined, /no GRE tunnel with id/);
});

test('route: prefix inside the account, nexthop a tunnel peer, unique per (prefix, nexthop)', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  const route = { prefix: '203.0.113.0/25', nexthop: '10.200.0.1', priority: 100 };
  assert.equal(addRoute(doc, route, ctx).doc.routes.length, 2);
  fails(() => addRoute(doc, { ...route, prefix: '198.51.100.0/24' }, ctx), ValidationError, 'prefix', /198\.51\.100\.0\/24 is not inside any of this account's prefixes \(203\.0\.113\.0\/24\)/);
  fails(() => addRoute(doc, { ...route, prefix: '203.0.112.0/23' }, ctx), ValidationError, 'prefix', /not inside any of this account's prefixes/);
  fails(() => addRoute(doc, { ...route, nexthop: '10.200.0.9' }, ctx), ValidationError, 'nexthop', /10\.200\.0\.9 is not the customer-side address of any of this account's GRE tunnels \(10\.200\.0\.1 for acme-chi\)/);
  fails(() => addRoute(doc, { ...route, nexthop: '10.200.0.0' }, ctx), ValidationError, 'nexthop', /it is the edge side of GRE tunnel acme-chi, whose customer side is 10\.200\.0\.1/);
  fails(() => addRoute(doc, { ...route, prefix: '203.0.113.0/24', priority: 5 }, ctx), ConflictError, 'prefix', /another route of this account is 203\.0\.113\.0\/24 via 10\.200\.0\.1/);
  const empty = newAccountDocument('d'.repeat(32), 'delta');
  fails(() => addRoute(empty, route, ctx), ValidationError, 'prefix', /none yet/);
});

test('route: replace keeps the id; ECMP routes are separate objects', () => {
  const ctx = ctxWith();
  let doc = acme(ctx);
  doc = addGreTunnel(doc, { ...tunnel, name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' }, ctx).doc;
  doc = addRoute(doc, { prefix: '203.0.113.0/24', nexthop: '10.200.0.3', priority: 100, weight: 3 }, ctx).doc;
  const rid = doc.routes[0]!.id;
  const changed = replaceRoute(doc, rid, { prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 200 }, ctx);
  assert.equal(changed.item.id, rid);
  assert.equal(changed.item.priority, 200);
  fails(() => replaceRoute(doc, rid, { prefix: '203.0.113.0/24', nexthop: '10.200.0.3', priority: 1 }, ctx), ConflictError, 'prefix', /another route/);
  fails(() => replaceRoute(doc, 'f'.repeat(32), { prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 1 }, ctx), NotFoundError, undefined, /no route/);
});

test('firewall: replace keeps rule ids by id, content, then position; unknown ids refused', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  const first = replaceFirewall(
    doc,
    {
      default_action: 'block',
      rules: [
        { action: 'allow', expression: 'tcp.dstport == 22' },
        { action: 'allow', expression: 'tcp.dstport == 80' },
      ],
    },
    ctx,
  );
  const [ssh, http] = first.item.rules.map((r) => r.id);
  // Reordered by content and a new rule on top: ids follow the rules.
  const second = replaceFirewall(
    first.doc,
    {
      default_action: 'block',
      rules: [
        { action: 'block', expression: 'ip.src == 198.51.100.66' },
        { action: 'allow', expression: 'tcp.dstport == 80' },
        { action: 'allow', expression: 'tcp.dstport == 22' },
      ],
    },
    ctx,
  );
  assert.deepEqual(second.item.rules.slice(1).map((r) => r.id), [http, ssh]);
  assert.ok(![ssh, http].includes(second.item.rules[0]!.id));
  // An edited expression at the same position keeps its id.
  const third = replaceFirewall(
    first.doc,
    { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 2222' }, { action: 'allow', expression: 'tcp.dstport == 80' }] },
    ctx,
  );
  assert.deepEqual(third.item.rules.map((r) => r.id), [ssh, http]);
  fails(
    () => replaceFirewall(first.doc, { default_action: 'block', rules: [{ id: 'f'.repeat(32), action: 'allow', expression: 'tcp.dstport == 22' }] }, ctx),
    ValidationError,
    'rules[0].id',
    /no rule with id/,
  );
  fails(() => replaceFirewall(doc, { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == ' }] }, ctx), ValidationError, 'rules[0].expression', /invalid expression at \d+/);
});

test('settings: removing an anycast endpoint a tunnel uses is refused; unused ones can go', () => {
  const ctx = ctxWith();
  const doc = acme(ctx);
  const registry = withAccount(emptyRegistry(), doc);
  const before = { ...defaultSettings(), anycast_endpoints: ['192.0.2.10', '192.0.2.11'] };
  fails(
    () => checkSettingsChange(before, { ...before, anycast_endpoints: ['192.0.2.11'] }, [doc], registry),
    ConflictError,
    'anycast_endpoints',
    /would break GRE tunnel acme-chi of account acme: 192\.0\.2\.10 is not one of the operator's anycast endpoints/,
  );
  checkSettingsChange(before, { ...before, anycast_endpoints: ['192.0.2.10'] }, [doc], registry);
  fails(
    () => checkSettingsChange(before, { ...before, anycast_endpoints: ['192.0.2.10', '203.0.113.1'] }, [doc], registry),
    ConflictError,
    undefined,
    /prefix 203\.0\.113\.0\/24 of account acme: 203\.0\.113\.0\/24 holds the operator's anycast endpoint 203\.0\.113\.1/,
  );
});
