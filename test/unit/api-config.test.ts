/** `GET|PUT /v1/accounts/{id}/config`: the declarative document over HTTP, dry runs, and atomicity. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys } from '../../src/model/keys.js';
import { ACME_CONFIG, errorOf, openApi, route, tunnel } from '../support/api-fixture.js';

interface Change {
  op: string;
  kind: string;
  key: string;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}
const summary = (changes: Change[]) => changes.map((c) => `${c.op} ${c.kind} ${c.key}`);

test('apply the example document, re-apply it (no changes), round-trip GET /config', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/config`;
    const t = { token: acme.token };
    const applied = await api.call('PUT', url, { ...t, body: ACME_CONFIG });
    assert.equal(applied.statusCode, 200, applied.body);
    const result = applied.json() as { changes: Change[]; revision: number };
    assert.deepEqual(summary(result.changes), [
      'create prefix 203.0.113.0/24',
      'create gre_tunnel acme-chi',
      'create route 203.0.113.0/24 via 10.200.0.1',
      'create firewall_rule rules[0]',
      'update firewall firewall',
    ]);
    assert.equal(result.revision, (await api.store.get(keys.account(acme.id)))!.modRevision);
    assert.equal(applied.headers.etag, `"${result.revision}"`);

    const got = await api.call('GET', url, t);
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers.etag, `"${result.revision}"`);
    const config = got.json() as typeof ACME_CONFIG & { routes: Array<{ id: string; weight: number }> };
    assert.equal(config.account, 'acme');
    assert.match(config.routes[0]!.id, /^[0-9a-f]{32}$/);
    assert.equal(config.routes[0]!.weight, 1);

    const again = await api.call('PUT', url, { ...t, body: ACME_CONFIG });
    assert.deepEqual(again.json(), { changes: [], revision: result.revision }, 'nothing changed, nothing written');
    const roundTrip = await api.call('PUT', url, { ...t, body: config });
    assert.deepEqual(roundTrip.json(), { changes: [], revision: result.revision });
    assert.deepEqual((await api.call('GET', url, t)).json(), config, 'ids are stable across applies');

    // The imperative endpoints see the same objects.
    const routes = (await api.call('GET', `/v1/accounts/${acme.id}/routes`, t)).json() as { items: unknown[] };
    assert.deepEqual(routes.items, config.routes);
  } finally {
    await api.close();
  }
});

test('dry_run returns the diff and stores nothing', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/config`;
    await api.call('PUT', url, { token: acme.token, body: ACME_CONFIG });
    const before = await api.snapshot();
    const desired = {
      ...ACME_CONFIG,
      gre_tunnels: [tunnel(), tunnel({ name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' })],
      routes: [route({ priority: 200 }), route({ nexthop: '10.200.0.3' })],
      firewall: { default_action: 'allow', rules: [] },
    };
    const dry = await api.call('PUT', `${url}?dry_run=true`, { token: acme.token, body: desired });
    assert.equal(dry.statusCode, 200, dry.body);
    const { changes, revision } = dry.json() as { changes: Change[]; revision: number };
    assert.deepEqual(summary(changes), [
      'create gre_tunnel acme-nyc',
      'update route 203.0.113.0/24 via 10.200.0.1',
      'create route 203.0.113.0/24 via 10.200.0.3',
      'delete firewall_rule rules[0]',
      'update firewall firewall',
    ]);
    assert.equal(changes[1]!.before!.priority, 100);
    assert.equal(changes[1]!.after!.priority, 200);
    assert.equal(revision, before.revision, 'a dry run reports the current revision');
    assert.deepEqual(await api.snapshot(), before, 'a dry run stores nothing');
    // dry_run=false applies.
    const real = await api.call('PUT', `${url}?dry_run=false`, { token: acme.token, body: desired });
    assert.deepEqual(summary((real.json() as { changes: Change[] }).changes), summary(changes));
    assert.ok((real.json() as { revision: number }).revision > before.revision);
    // A misspelt option must not apply for real.
    const typo = await api.call('PUT', `${url}?dryrun=true`, { token: acme.token, body: ACME_CONFIG });
    assert.equal(typo.statusCode, 400);
    assert.deepEqual(errorOf(typo), { code: 'invalid', message: 'dryrun: is not a known query parameter', field: 'dryrun' });
    const badValue = await api.call('PUT', `${url}?dry_run=yes`, { token: acme.token, body: ACME_CONFIG });
    assert.equal(errorOf(badValue).field, 'dry_run');
  } finally {
    await api.close();
  }
});

test('a bad document is refused as a whole, naming the field by path; nothing is stored', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const beta = await api.createAccount('beta');
    await api.call('POST', `/v1/accounts/${beta.id}/prefixes`, { token: beta.token, body: { cidr: '198.51.100.0/24' } });
    const betaTunnel = await api.call('POST', `/v1/accounts/${beta.id}/gre_tunnels`, {
      token: beta.token,
      body: tunnel({ name: 'beta-1', customer_gre_endpoint: '192.0.2.77', interface_address: '10.210.0.0/31' }),
    });
    assert.equal(betaTunnel.statusCode, 201, betaTunnel.body);
    const url = `/v1/accounts/${acme.id}/config`;
    await api.call('PUT', url, { token: acme.token, body: ACME_CONFIG });
    const cases: Array<[unknown, number, string, string, RegExp]> = [
      [{ ...ACME_CONFIG, gre_tunnels: [tunnel({ mtu: 1500 })] }, 400, 'invalid', 'gre_tunnels[0].mtu', /must be at most 1476/],
      [{ ...ACME_CONFIG, gre_tunnels: [tunnel({ mtu: 'big' })] }, 400, 'invalid', 'gre_tunnels[0].mtu', /must be an integer, not a string/],
      [{ ...ACME_CONFIG, routes: [route({ nexthop: '10.200.0.7' })] }, 400, 'invalid', 'routes[0].nexthop', /not the customer-side address/],
      [{ ...ACME_CONFIG, routes: [route({ prefix: '198.18.0.0/24' })] }, 400, 'invalid', 'routes[0].prefix', /not inside any of this account's prefixes/],
      [{ ...ACME_CONFIG, prefixes: [...ACME_CONFIG.prefixes, { cidr: '198.51.100.0/25' }] }, 409, 'conflict', 'prefixes[1].cidr', /overlaps 198\.51\.100\.0\/24 of another account/],
      [
        { ...ACME_CONFIG, gre_tunnels: [tunnel({ interface_address: '10.210.0.1/31' })], routes: [] },
        409,
        'conflict',
        'gre_tunnels[0].interface_address',
        /10\.210\.0\.0\/31 overlaps the tunnel subnet 10\.210\.0\.0\/31 of another account/,
      ],
      [
        { ...ACME_CONFIG, firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'ip.dst == 203.0.113.100 and' }] } },
        400,
        'invalid',
        'firewall.rules[0].expression',
        /invalid expression at 27: expected a field name/,
      ],
      [{ ...ACME_CONFIG, account: 'beta' }, 400, 'invalid', 'account', /document is for account "beta"/],
      [{ ...ACME_CONFIG, gre_tunnelz: [] }, 400, 'invalid', 'gre_tunnelz', /is not a known field/],
      [{ ...ACME_CONFIG, routes: [{ ...route(), id: 'e'.repeat(32) }] }, 400, 'invalid', 'routes[0].id', /no route with id/],
    ];
    for (const [body, status, code, field, message] of cases) {
      const before = await api.snapshot();
      const res = await api.call('PUT', url, { token: acme.token, body });
      assert.equal(res.statusCode, status, `${field}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.code, code, field);
      assert.equal(err.field, field);
      assert.match(err.message, message);
      assert.ok(err.message.startsWith(`${field}: `), err.message);
      assert.deepEqual(await api.snapshot(), before, `${field}: nothing stored`);
      // Dry runs validate the same way.
      const dry = await api.call('PUT', `${url}?dry_run=true`, { token: acme.token, body });
      assert.equal(dry.statusCode, status);
      assert.equal(errorOf(dry).field, field);
    }
  } finally {
    await api.close();
  }
});

test('If-Match on PUT /config', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/config`;
    const etag = String((await api.call('GET', url, { token: acme.token })).headers.etag);
    const ok = await api.call('PUT', url, { token: acme.token, body: ACME_CONFIG, headers: { 'if-match': etag } });
    assert.equal(ok.statusCode, 200);
    const before = await api.snapshot();
    const stale = await api.call('PUT', url, { token: acme.token, body: { account: 'acme' }, headers: { 'if-match': etag } });
    assert.equal(stale.statusCode, 409);
    assert.equal(errorOf(stale).code, 'stale');
    const staleDry = await api.call('PUT', `${url}?dry_run=true`, { token: acme.token, body: { account: 'acme' }, headers: { 'if-match': etag } });
    assert.equal(errorOf(staleDry).code, 'stale');
    assert.deepEqual(await api.snapshot(), before);
  } finally {
    await api.close();
  }
});

test('the stored account document is what agents read: one key, consistent', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    await api.call('PUT', `/v1/accounts/${acme.id}/config`, { token: acme.token, body: ACME_CONFIG });
    const kv = await api.store.get(keys.account(acme.id));
    const doc = JSON.parse(kv!.value) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), ['id', 'name', 'created_at', 'prefixes', 'gre_tunnels', 'routes', 'firewall']);
    const registry = JSON.parse((await api.store.get(keys.registry))!.value) as { names: Record<string, string>; accounts: Record<string, { prefixes: string[] }> };
    assert.equal(registry.names.acme, acme.id);
    assert.deepEqual(registry.accounts[acme.id]!.prefixes, ['203.0.113.0/24']);
  } finally {
    await api.close();
  }
});
