/** Bad input over HTTP: every refusal is a clear 4xx in the one error shape, and the store is left as it was. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorOf, openApi, tunnel } from '../support/api-fixture.js';

test('malformed JSON, empty or non-object bodies, poisoned keys → 400, nothing stored', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/gre_tunnels`;
    const t = { token: acme.token };
    const cases: Array<[string, string, string | undefined, RegExp]> = [
      ['{"name": "acme-chi",', 'invalid_json', undefined, /^the request body is not valid JSON: /],
      ["{'name': 'x'}", 'invalid_json', undefined, /not valid JSON/],
      ['', 'invalid', undefined, /^the input is missing \(expected an object\)$/],
      ['[]', 'invalid', undefined, /the input must be an object, not a list/],
      ['null', 'invalid', undefined, /the input must be an object, not null/],
      ['"acme-chi"', 'invalid', undefined, /the input must be an object, not a string/],
      [JSON.stringify({ ...tunnel(), mtu: null }), 'invalid', 'mtu', /must be an integer, not null/],
      [JSON.stringify({ ...tunnel(), name: ['acme'] }), 'invalid', 'name', /must be a string, not a list/],
      [JSON.stringify({ ...tunnel(), health_check: 'on' }), 'invalid', 'health_check', /must be an object, not a string/],
      [JSON.stringify({ ...tunnel(), ttl: 1e400 }).replace('null', '1e400'), 'invalid', 'ttl', /must be/],
      ['{"__proto__": {"admin": true}, "name": "acme-chi"}', 'invalid_json', undefined, /forbidden key "__proto__"/],
      ['{"constructor": {"prototype": {"admin": true}}}', 'invalid_json', undefined, /forbidden key "constructor"/],
    ];
    for (const [raw, code, field, message] of cases) {
      const before = await api.snapshot();
      const res = await api.call('POST', url, { ...t, raw });
      assert.equal(res.statusCode, 400, `${raw}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.code, code, raw);
      assert.equal(err.field, field, raw);
      assert.match(err.message, message, raw);
      assert.deepEqual(await api.snapshot(), before, `${raw}: nothing stored`);
    }
    assert.deepEqual(({} as Record<string, unknown>).admin, undefined, 'no prototype was polluted');
  } finally {
    await api.close();
  }
});

test('bodies over the limit → 413; other media types → 415; nothing stored', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/config`;
    const before = await api.snapshot();
    // A syntactically valid document of 2 MiB (a huge description list would be refused anyway; size comes first).
    const huge = JSON.stringify({ account: 'acme', prefixes: [{ cidr: '203.0.113.0/24', description: 'x'.repeat(2 * 1024 * 1024) }] });
    const big = await api.call('PUT', url, { token: acme.token, raw: huge });
    assert.equal(big.statusCode, 413);
    assert.deepEqual(errorOf(big), { code: 'payload_too_large', message: 'the request body is too large' });
    const text = await api.call('POST', '/v1/accounts', { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(text.statusCode, 415);
    assert.deepEqual(await api.snapshot(), before);
    // Just under the limit is read (and then judged on its merits).
    const fits = JSON.stringify({ account: 'acme', prefixes: [{ cidr: '203.0.113.0/24', description: 'x'.repeat(1000 * 1000) }] });
    const judged = await api.call('PUT', url, { token: acme.token, raw: fits });
    assert.equal(judged.statusCode, 400);
    assert.equal(errorOf(judged).field, 'prefixes[0].description');
  } finally {
    await api.close();
  }
});

test('YAML bodies: the declarative document as written; syntax errors give line and column', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/config`;
    const yaml = [
      'account: acme',
      'prefixes:',
      '  - cidr: 203.0.113.0/24',
      '    advertised: true',
      'gre_tunnels:',
      '  - name: acme-chi',
      '    customer_gre_endpoint: 198.51.100.2',
      '    edge_gre_endpoint: 192.0.2.10',
      '    interface_address: 10.200.0.0/31',
      'routes:',
      '  - prefix: 203.0.113.0/24',
      '    nexthop: 10.200.0.1',
      '    priority: 100',
      'firewall:',
      '  default_action: block',
      '  rules:',
      '    - action: allow',
      '      expression: ip.dst == 203.0.113.100 and tcp.dstport in {20..21}',
      '',
    ].join('\n');
    for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml']) {
      const res = await api.call('PUT', `${url}?dry_run=true`, { token: acme.token, raw: yaml, headers: { 'content-type': type } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json() as { changes: unknown[] }).changes.length, 5);
    }
    const before = await api.snapshot();
    const broken = await api.call('PUT', url, { token: acme.token, raw: 'account: acme\nprefixes: [\n  - cidr: x\n', headers: { 'content-type': 'application/yaml' } });
    assert.equal(broken.statusCode, 400);
    assert.equal(errorOf(broken).code, 'invalid_yaml');
    assert.match(errorOf(broken).message, /^the request body is not valid YAML at line \d+, column \d+: /);
    const dupKey = await api.call('PUT', url, { token: acme.token, raw: 'account: acme\naccount: beta\n', headers: { 'content-type': 'application/yaml' } });
    assert.equal(errorOf(dupKey).code, 'invalid_yaml');
    const poison = await api.call('PUT', url, { token: acme.token, raw: 'account: acme\n__proto__:\n  admin: true\n', headers: { 'content-type': 'application/yaml' } });
    assert.equal(errorOf(poison).message, 'the request body has a forbidden key "__proto__"');
    const wrongType = await api.call('PUT', url, { token: acme.token, raw: 'account: acme\nroutes: 5\n', headers: { 'content-type': 'application/yaml' } });
    assert.deepEqual(errorOf(wrongType), { code: 'invalid', message: 'routes: must be a list, not an integer', field: 'routes' });
    assert.deepEqual(await api.snapshot(), before);
  } finally {
    await api.close();
  }
});

test('a smaller configured body limit applies', async () => {
  const api = await openApi({ bodyLimit: 1000 });
  try {
    const res = await api.call('POST', '/v1/accounts', { raw: JSON.stringify({ name: 'a'.repeat(2000) }) });
    assert.equal(res.statusCode, 413);
  } finally {
    await api.close();
  }
});

test('objects that do not exist, and unknown endpoints or methods → 404', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const none = 'f'.repeat(32);
    for (const [method, url] of [
      ['GET', `/v1/accounts/${acme.id}/gre_tunnels/${none}`],
      ['GET', `/v1/accounts/${acme.id}/routes/${none}`],
      ['GET', `/v1/accounts/${acme.id}/prefixes/${none}`],
      ['DELETE', `/v1/accounts/${acme.id}/routes/${none}`],
      ['GET', `/v1/accounts/${none}`],
      ['GET', `/v1/accounts/${none}/config`],
      ['PATCH', `/v1/accounts/${acme.id}/routes/${none}`],
      ['GET', '/v1/accounts/x/y/z'],
    ] as const) {
      const res = await api.call(method, url);
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      assert.equal(errorOf(res).code, 'not_found');
    }
  } finally {
    await api.close();
  }
});
