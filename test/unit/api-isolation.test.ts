/**
 * Tenant isolation for every endpoint: account B's token against account A's resources answers 404 and changes
 * nothing (while A's own token gets the same request through), and account tokens on operator endpoints get 403.
 * The endpoint list is checked against the OpenAPI document, so a new endpoint without a case here fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACME_CONFIG, errorOf, openApi, route, tunnel, type ApiFixture } from '../support/api-fixture.js';

interface Case {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI path template. */
  path: string;
  body?: unknown;
}

const A = '/v1/accounts/{id}';

/** Valid requests on account A (ordered so that deletes come last and hit objects nothing needs). */
const TENANT_CASES: Case[] = [
  { method: 'GET', path: A },
  { method: 'GET', path: `${A}/prefixes` },
  { method: 'POST', path: `${A}/prefixes`, body: { cidr: '198.18.0.0/24' } },
  { method: 'GET', path: `${A}/prefixes/{pid}` },
  { method: 'PATCH', path: `${A}/prefixes/{pid}`, body: { advertised: false } },
  { method: 'GET', path: `${A}/gre_tunnels` },
  { method: 'POST', path: `${A}/gre_tunnels`, body: tunnel({ name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' }) },
  { method: 'GET', path: `${A}/gre_tunnels/{tid}` },
  { method: 'PUT', path: `${A}/gre_tunnels/{tid}`, body: tunnel({ name: 'acme-spare', customer_gre_endpoint: '198.51.100.9', interface_address: '10.200.0.8/31', mtu: 1400 }) },
  { method: 'GET', path: `${A}/routes` },
  { method: 'POST', path: `${A}/routes`, body: route({ prefix: '203.0.113.0/25' }) },
  { method: 'GET', path: `${A}/routes/{rid}` },
  { method: 'PUT', path: `${A}/routes/{rid}`, body: route({ prefix: '203.0.113.128/25', priority: 5 }) },
  { method: 'GET', path: `${A}/firewall` },
  { method: 'PUT', path: `${A}/firewall`, body: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 22' }] } },
  { method: 'GET', path: `${A}/config` },
  { method: 'DELETE', path: `${A}/routes/{rid}` },
  { method: 'DELETE', path: `${A}/gre_tunnels/{tid}` },
  { method: 'DELETE', path: `${A}/prefixes/{pid}` },
  // Last: PUT /config rewrites everything.
  { method: 'PUT', path: `${A}/config`, body: ACME_CONFIG },
];

const OPERATOR_CASES: Case[] = [
  { method: 'POST', path: '/v1/accounts', body: { name: 'gamma' } },
  { method: 'DELETE', path: A },
  { method: 'GET', path: '/v1/settings' },
  { method: 'PUT', path: '/v1/settings', body: { anycast_endpoints: ['192.0.2.10'] } },
  { method: 'GET', path: '/v1/nodes' },
  { method: 'GET', path: '/v1/nodes/{id}/config' },
  { method: 'PUT', path: '/v1/nodes/{id}/config', body: { bgp: { router_id: '192.0.2.1' } } },
  { method: 'DELETE', path: '/v1/nodes/{id}/config' },
  { method: 'POST', path: '/v1/nodes/{id}/drain', body: {} },
  { method: 'POST', path: '/v1/nodes/{id}/undrain', body: {} },
  { method: 'GET', path: '/v1/mitigations' },
  { method: 'POST', path: '/v1/mitigations', body: { prefix: '198.18.7.0/24', action: 'drop' } },
  { method: 'GET', path: '/v1/mitigations/{mid}' },
  { method: 'DELETE', path: '/v1/mitigations/{mid}' },
];

const SCOPED_CASES: Case[] = [
  { method: 'GET', path: '/v1/accounts' },
  { method: 'GET', path: '/v1/counters' },
];
const PUBLIC_CASES: Case[] = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/openapi.json' },
];

/** Account A with one object of each kind dedicated to these requests (a prefix, a tunnel and a route nothing needs). */
async function setUp(api: ApiFixture) {
  const a = await api.createAccount('acme');
  const b = await api.createAccount('beta');
  await api.call('PUT', `/v1/accounts/${a.id}/config`, {
    token: a.token,
    body: {
      ...ACME_CONFIG,
      prefixes: [...ACME_CONFIG.prefixes, { cidr: '198.18.1.0/24' }],
      gre_tunnels: [...ACME_CONFIG.gre_tunnels, tunnel({ name: 'acme-old', customer_gre_endpoint: '198.51.100.4', interface_address: '10.200.0.4/31' })],
      routes: [...ACME_CONFIG.routes, route({ prefix: '203.0.113.128/25', priority: 300 })],
    },
  });
  const config = (await api.call('GET', `/v1/accounts/${a.id}/config`, { token: a.token })).json() as {
    prefixes: Array<{ id: string }>;
    gre_tunnels: Array<{ id: string }>;
    routes: Array<{ id: string }>;
  };
  const mitigation = (await api.call('POST', '/v1/mitigations', { body: { prefix: '203.0.113.0/24', protocol: 'udp', action: 'drop' } })).json() as { id: string };
  const ids = { id: a.id, pid: config.prefixes[1]!.id, tid: config.gre_tunnels[1]!.id, rid: config.routes[1]!.id, mid: mitigation.id };
  const url = (path: string) => path.replace(/\{(\w+)\}/g, (_m, k: keyof typeof ids) => ids[k]);
  return { a, b, url };
}

test('every endpoint is covered by an isolation case', async () => {
  const api = await openApi();
  try {
    const doc = (await api.call('GET', '/openapi.json', { token: null })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    documented.push('GET /openapi.json'); // hidden from its own document
    const covered = [...TENANT_CASES, ...OPERATOR_CASES, ...SCOPED_CASES, ...PUBLIC_CASES].map((c) => `${c.method} ${c.path}`);
    assert.deepEqual([...new Set(documented)].sort(), [...new Set(covered)].sort());
  } finally {
    await api.close();
  }
});

test("account B's token gets 404 on every one of account A's endpoints, and changes nothing", async () => {
  const api = await openApi();
  try {
    const { a, b, url } = await setUp(api);
    for (const c of TENANT_CASES) {
      const before = await api.snapshot();
      const res = await api.call(c.method, url(c.path), { token: b.token, body: c.body });
      assert.equal(res.statusCode, 404, `${c.method} ${c.path}: ${res.body}`);
      assert.equal(errorOf(res).code, 'not_found');
      assert.equal(res.headers.etag, undefined, 'no revision leaks');
      assert.deepEqual(await api.snapshot(), before, `${c.method} ${c.path} changed nothing`);
      // The same request with A's own token goes through (so the 404 is isolation, not a bad request).
      const own = await api.call(c.method, url(c.path), { token: a.token, body: c.body });
      assert.ok(own.statusCode >= 200 && own.statusCode < 300, `${c.method} ${c.path} as A: ${own.statusCode} ${own.body}`);
    }
    // A malformed or unknown account id is a 404 too, whoever asks.
    for (const id of ['nope', 'f'.repeat(32), '..%2Ftokens']) {
      assert.equal((await api.call('GET', `/v1/accounts/${id}/routes`, { token: b.token })).statusCode, 404);
      assert.equal((await api.call('GET', `/v1/accounts/${id}/routes`)).statusCode, 404);
    }
  } finally {
    await api.close();
  }
});

test('account tokens get 403 on operator endpoints (even for their own account) and change nothing', async () => {
  const api = await openApi();
  try {
    const { a, url } = await setUp(api);
    for (const c of OPERATOR_CASES) {
      const before = await api.snapshot();
      const res = await api.call(c.method, url(c.path), { token: a.token, body: c.body });
      assert.equal(res.statusCode, 403, `${c.method} ${c.path}: ${res.body}`);
      assert.deepEqual(errorOf(res), { code: 'forbidden', message: 'this endpoint needs the operator token' });
      assert.deepEqual(await api.snapshot(), before);
    }
    // The operator gets through.
    for (const c of OPERATOR_CASES) {
      const res = await api.call(c.method, url(c.path), { body: c.body });
      assert.ok(res.statusCode >= 200 && res.statusCode < 300, `${c.method} ${c.path} as operator: ${res.statusCode} ${res.body}`);
    }
  } finally {
    await api.close();
  }
});

test('the account list is scoped to the token', async () => {
  const api = await openApi();
  try {
    const { a, b } = await setUp(api);
    assert.deepEqual((await api.call('GET', '/v1/accounts', { token: b.token })).json(), { items: [{ id: b.id, name: 'beta' }] });
    assert.deepEqual((await api.call('GET', '/v1/accounts', { token: a.token })).json(), { items: [{ id: a.id, name: 'acme' }] });
    assert.equal(((await api.call('GET', '/v1/accounts')).json() as { items: unknown[] }).items.length, 2);
  } finally {
    await api.close();
  }
});
