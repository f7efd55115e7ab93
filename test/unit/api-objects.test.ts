/** CRUD of prefixes, GRE tunnels, routes and the firewall; ETag / If-Match; cross-object rules over HTTP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys } from '../../src/model/keys.js';
import { errorOf, openApi, route, tunnel, type ApiFixture } from '../support/api-fixture.js';

const etagOf = (res: { headers: Record<string, unknown> }) => Number(/^"(\d+)"$/.exec(String(res.headers.etag))![1]);

/** Runs `fn`, expecting status/code/field, and proves the store did not change. */
async function refused(
  api: ApiFixture,
  fn: () => Promise<{ statusCode: number; body: string; json(): unknown }>,
  status: number,
  code: string,
  field: string | undefined,
  message: RegExp,
): Promise<void> {
  const before = await api.snapshot();
  const res = await fn();
  assert.equal(res.statusCode, status, res.body);
  const err = errorOf(res as never);
  assert.equal(err.code, code);
  assert.equal(err.field, field);
  assert.match(err.message, message);
  assert.deepEqual(await api.snapshot(), before, 'a refused request changes nothing');
}

test('prefixes: create, list, get, patch, delete, with ETags', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const base = `/v1/accounts/${acme.id}/prefixes`;
    const created = await api.call('POST', base, { token: acme.token, body: { cidr: '203.0.113.0/24', advertised: true, description: 'main' } });
    assert.equal(created.statusCode, 201);
    const p = created.json() as { id: string };
    assert.deepEqual(p, { id: p.id, cidr: '203.0.113.0/24', advertised: true, description: 'main' });
    const rev = etagOf(created);
    assert.equal(rev, await api.store.revision(), 'the ETag of a write is the revision it committed');
    const v6 = await api.call('POST', base, { token: acme.token, body: { cidr: '2001:DB8:1::/48' } });
    assert.equal((v6.json() as { cidr: string }).cidr, '2001:db8:1::/48', 'stored normalised');

    const list = await api.call('GET', base, { token: acme.token });
    assert.equal(list.statusCode, 200);
    assert.equal(etagOf(list), etagOf(v6));
    assert.deepEqual((list.json() as { items: Array<{ cidr: string }> }).items.map((i) => i.cidr), ['203.0.113.0/24', '2001:db8:1::/48']);
    assert.deepEqual((await api.call('GET', `${base}/${p.id}`, { token: acme.token })).json(), p);

    const patched = await api.call('PATCH', `${base}/${p.id}`, { token: acme.token, body: { advertised: false } });
    assert.equal(patched.statusCode, 200);
    assert.deepEqual(patched.json(), { ...p, advertised: false });
    assert.ok(etagOf(patched) > etagOf(v6));
    // A patch that changes nothing writes nothing: same revision.
    const same = await api.call('PATCH', `${base}/${p.id}`, { token: acme.token, body: { advertised: false } });
    assert.equal(etagOf(same), etagOf(patched));

    await refused(api, () => api.call('PATCH', `${base}/${p.id}`, { token: acme.token, body: { cidr: '203.0.112.0/24' } }), 400, 'invalid', 'cidr', /is not a known field/);
    await refused(api, () => api.call('POST', base, { token: acme.token, body: { cidr: '203.0.113.0/24' } }), 409, 'conflict', 'cidr', /already a prefix of this account/);
    await refused(api, () => api.call('POST', base, { token: acme.token, body: { cidr: '203.0.113.1/24' } }), 400, 'invalid', 'cidr', /host bits set \(did you mean 203\.0\.113\.0\/24\?\)/);
    await refused(api, () => api.call('POST', base, { token: acme.token, body: { cidr: '10.0.0.0/7' } }), 400, 'invalid', 'cidr', /prefix lengths \/8–\/32/);
    await refused(api, () => api.call('POST', base, { token: acme.token, body: { cidr: '192.0.2.0/24' } }), 409, 'conflict', 'cidr', /anycast endpoint 192\.0\.2\.10/);

    const del = await api.call('DELETE', `${base}/${p.id}`, { token: acme.token });
    assert.equal(del.statusCode, 204);
    assert.equal((await api.call('GET', `${base}/${p.id}`, { token: acme.token })).statusCode, 404);
    await refused(api, () => api.call('DELETE', `${base}/${p.id}`, { token: acme.token }), 404, 'not_found', undefined, /no prefix with id/);
  } finally {
    await api.close();
  }
});

test('overlapping prefixes across accounts are refused (409) in both directions', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const beta = await api.createAccount('beta');
    await api.call('POST', `/v1/accounts/${acme.id}/prefixes`, { token: acme.token, body: { cidr: '203.0.113.0/24' } });
    const url = `/v1/accounts/${beta.id}/prefixes`;
    await refused(api, () => api.call('POST', url, { token: beta.token, body: { cidr: '203.0.113.0/24' } }), 409, 'conflict', 'cidr', /belongs to another account/);
    await refused(api, () => api.call('POST', url, { token: beta.token, body: { cidr: '203.0.113.128/25' } }), 409, 'conflict', 'cidr', /overlaps 203\.0\.113\.0\/24 of another account/);
    await refused(api, () => api.call('POST', url, { token: beta.token, body: { cidr: '203.0.0.0/16' } }), 409, 'conflict', 'cidr', /overlaps/);
    assert.equal((await api.call('POST', url, { token: beta.token, body: { cidr: '198.51.100.0/24' } })).statusCode, 201);
  } finally {
    await api.close();
  }
});

test('GRE tunnels: create, get, replace, delete; validation and references', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const a = `/v1/accounts/${acme.id}`;
    const t = { token: acme.token };
    const created = await api.call('POST', `${a}/gre_tunnels`, { ...t, body: tunnel() });
    assert.equal(created.statusCode, 201);
    const tun = created.json() as { id: string };
    assert.deepEqual(tun, {
      id: tun.id,
      ...tunnel(),
      ttl: 64,
      mtu: 1476,
      health_check: { enabled: true, type: 'reply', rate: 'mid' },
      description: '',
    });
    assert.deepEqual((await api.call('GET', `${a}/gre_tunnels/${tun.id}`, t)).json(), tun);
    assert.equal(((await api.call('GET', `${a}/gre_tunnels`, t)).json() as { items: unknown[] }).items.length, 1);

    const replaced = await api.call('PUT', `${a}/gre_tunnels/${tun.id}`, { ...t, body: tunnel({ mtu: 1400, health_check: { type: 'request' } }) });
    assert.equal(replaced.statusCode, 200);
    assert.equal((replaced.json() as { mtu: number }).mtu, 1400);
    assert.deepEqual((replaced.json() as { health_check: unknown }).health_check, { enabled: true, type: 'request', rate: 'mid' });
    assert.equal((replaced.json() as { id: string }).id, tun.id);

    const post = (body: unknown) => () => api.call('POST', `${a}/gre_tunnels`, { ...t, body });
    const other = { name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' };
    await refused(api, post(tunnel({ ...other, mtu: 1500 })), 400, 'invalid', 'mtu', /^mtu: must be at most 1476$/);
    await refused(api, post(tunnel({ ...other, ttl: '64' })), 400, 'invalid', 'ttl', /must be an integer, not a string/);
    await refused(api, post(tunnel({ ...other, name: 'a-very-long-tunnel-name' })), 400, 'invalid', 'name', /1–15 characters|at most 15/);
    await refused(api, post(tunnel({ ...other, customer_gre_endpoint: '10.1.1.1' })), 400, 'invalid', 'customer_gre_endpoint', /private-use/);
    await refused(api, post(tunnel({ ...other, customer_gre_endpoint: '224.0.0.1' })), 400, 'invalid', 'customer_gre_endpoint', /multicast/);
    await refused(api, post(tunnel({ ...other, edge_gre_endpoint: '192.0.2.99' })), 400, 'invalid', 'edge_gre_endpoint', /not one of the operator's anycast endpoints \(192\.0\.2\.10\)/);
    await refused(api, post(tunnel({ ...other, interface_address: '10.200.0.0/30' })), 400, 'invalid', 'interface_address', /network address/);
    await refused(api, post(tunnel({ ...other, interface_address: '100.64.0.0/31' })), 400, 'invalid', 'interface_address', /RFC 1918/);
    await refused(api, post(tunnel({ ...other, interface_address: '10.200.0.1/31' })), 409, 'conflict', 'interface_address', /overlaps the interface subnet of GRE tunnel acme-chi/);
    await refused(api, post(tunnel({ customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' })), 409, 'conflict', 'name', /named acme-chi/);
    await refused(api, post(tunnel({ ...other, id: tun.id })), 400, 'invalid', 'id', /assigned by the server/);
    await refused(api, () => api.call('PUT', `${a}/gre_tunnels/${'f'.repeat(32)}`, { ...t, body: tunnel() }), 404, 'not_found', undefined, /no GRE tunnel/);

    // A route over the tunnel pins it.
    await api.call('POST', `${a}/prefixes`, { ...t, body: { cidr: '203.0.113.0/24' } });
    assert.equal((await api.call('POST', `${a}/routes`, { ...t, body: route() })).statusCode, 201);
    await refused(api, () => api.call('DELETE', `${a}/gre_tunnels/${tun.id}`, t), 409, 'conflict', undefined, /would break route 203\.0\.113\.0\/24 via 10\.200\.0\.1/);
    await refused(api, () => api.call('PUT', `${a}/gre_tunnels/${tun.id}`, { ...t, body: tunnel({ interface_address: '10.200.0.8/31' }) }), 409, 'conflict', undefined, /would break route/);
  } finally {
    await api.close();
  }
});

test('routes: create, get, replace, delete; prefix and nexthop rules', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const a = `/v1/accounts/${acme.id}`;
    const t = { token: acme.token };
    const prefix = (await api.call('POST', `${a}/prefixes`, { ...t, body: { cidr: '203.0.113.0/24' } })).json() as { id: string };
    await api.call('POST', `${a}/gre_tunnels`, { ...t, body: tunnel() });
    await api.call('POST', `${a}/gre_tunnels`, { ...t, body: tunnel({ name: 'acme-nyc', customer_gre_endpoint: '198.51.100.3', interface_address: '10.200.0.2/31' }) });
    const r1 = await api.call('POST', `${a}/routes`, { ...t, body: route() });
    assert.equal(r1.statusCode, 201);
    const created = r1.json() as { id: string };
    assert.deepEqual(created, { id: created.id, ...route(), weight: 1, description: '' });
    const ecmp = await api.call('POST', `${a}/routes`, { ...t, body: route({ nexthop: '10.200.0.3', weight: 3 }) });
    assert.equal(ecmp.statusCode, 201);
    assert.deepEqual((await api.call('GET', `${a}/routes/${created.id}`, t)).json(), created);
    assert.equal(((await api.call('GET', `${a}/routes`, t)).json() as { items: unknown[] }).items.length, 2);

    const put = await api.call('PUT', `${a}/routes/${created.id}`, { ...t, body: route({ priority: 200, prefix: '203.0.113.0/25' }) });
    assert.equal(put.statusCode, 200);
    assert.deepEqual(put.json(), { id: created.id, ...route({ priority: 200, prefix: '203.0.113.0/25' }), weight: 1, description: '' });

    const post = (body: unknown) => () => api.call('POST', `${a}/routes`, { ...t, body });
    await refused(api, post(route({ nexthop: '10.200.0.9' })), 400, 'invalid', 'nexthop', /10\.200\.0\.9 is not the customer-side address of any of this account's GRE tunnels/);
    await refused(api, post(route({ nexthop: '10.200.0.0' })), 400, 'invalid', 'nexthop', /edge side of GRE tunnel acme-chi/);
    await refused(api, post(route({ prefix: '198.51.100.0/24' })), 400, 'invalid', 'prefix', /not inside any of this account's prefixes \(203\.0\.113\.0\/24\)/);
    await refused(api, post(route({ nexthop: '10.200.0.3' })), 409, 'conflict', 'prefix', /another route of this account is 203\.0\.113\.0\/24 via 10\.200\.0\.3/);
    await refused(api, post(route({ priority: 2 ** 31 + 1 })), 400, 'invalid', 'priority', /at most 2147483648/);
    await refused(api, post(route({ weight: 0 })), 400, 'invalid', 'weight', /at least 1/);
    await refused(api, post({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1' }), 400, 'invalid', 'priority', /is required/);

    // The prefix is needed by the routes.
    await refused(api, () => api.call('DELETE', `${a}/prefixes/${prefix.id}`, t), 409, 'conflict', undefined, /would break route .*not inside any of this account's prefixes/);
    assert.equal((await api.call('DELETE', `${a}/routes/${created.id}`, t)).statusCode, 204);
    assert.equal((await api.call('GET', `${a}/routes/${created.id}`, t)).statusCode, 404);
  } finally {
    await api.close();
  }
});

test('firewall: get the default, replace, bad expression names its position', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/firewall`;
    const t = { token: acme.token };
    assert.deepEqual((await api.call('GET', url, t)).json(), { default_action: 'allow', rules: [] });
    const put = await api.call('PUT', url, {
      ...t,
      body: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport in {20..21}', description: 'ftp' }] },
    });
    assert.equal(put.statusCode, 200);
    const fw = put.json() as { rules: Array<{ id: string }> };
    assert.deepEqual(fw, {
      default_action: 'block',
      rules: [{ id: fw.rules[0]!.id, action: 'allow', expression: 'tcp.dstport in {20..21}', description: 'ftp', enabled: true }],
    });
    assert.deepEqual((await api.call('GET', url, t)).json(), fw);
    await refused(
      api,
      () => api.call('PUT', url, { ...t, body: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport in {20..' }] } }),
      400,
      'invalid',
      'rules[0].expression',
      /^rules\[0\]\.expression: invalid expression at 20: expected a port number .*found end of input/,
    );
    await refused(api, () => api.call('PUT', url, { ...t, body: { default_action: 'deny' } }), 400, 'invalid', 'default_action', /one of: allow, block/);
  } finally {
    await api.close();
  }
});

test('If-Match: a stale revision is 409 "stale" and changes nothing; the current one, bare or quoted, works', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/prefixes`;
    const t = { token: acme.token };
    const first = await api.call('POST', url, { ...t, body: { cidr: '203.0.113.0/24' } });
    const rev = etagOf(first);
    // Someone else writes meanwhile.
    const second = await api.call('POST', url, { ...t, body: { cidr: '198.51.100.0/24' } });
    await refused(api, () => api.call('POST', url, { ...t, body: { cidr: '198.18.0.0/24' }, headers: { 'if-match': `"${rev}"` } }), 409, 'stale', undefined, /the account is at revision \d+, not \d+/);
    const current = etagOf(second);
    const ok = await api.call('POST', url, { ...t, body: { cidr: '198.18.0.0/24' }, headers: { 'if-match': `"${current}"` } });
    assert.equal(ok.statusCode, 201);
    const bare = await api.call('POST', url, { ...t, body: { cidr: '198.18.1.0/24' }, headers: { 'if-match': String(etagOf(ok)) } });
    assert.equal(bare.statusCode, 201);
    const star = await api.call('POST', url, { ...t, body: { cidr: '198.18.2.0/24' }, headers: { 'if-match': '*' } });
    assert.equal(star.statusCode, 201);
    await refused(api, () => api.call('POST', url, { ...t, body: { cidr: '198.18.3.0/24' }, headers: { 'if-match': 'yesterday' } }), 400, 'invalid', 'If-Match', /not a revision/);
    // The ETag is the account document's modRevision in the store.
    const kv = await api.store.get(keys.account(acme.id));
    assert.equal(etagOf(await api.call('GET', url, t)), kv!.modRevision);
  } finally {
    await api.close();
  }
});

test('concurrent writers without If-Match all succeed (CAS retries), none is lost', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const url = `/v1/accounts/${acme.id}/prefixes`;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_v, i) => api.call('POST', url, { token: acme.token, body: { cidr: `198.18.${i}.0/24` } })),
    );
    assert.deepEqual(results.map((r) => r.statusCode), new Array(20).fill(201));
    const items = ((await api.call('GET', url, { token: acme.token })).json() as { items: unknown[] }).items;
    assert.equal(items.length, 20);
  } finally {
    await api.close();
  }
});

test('settings: defaults, replace, anycast endpoints in use are protected', async () => {
  const api = await openApi();
  try {
    const got = await api.call('GET', '/v1/settings');
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 64512, peers: [] }, blocklist: [] });
    assert.equal(got.headers.etag, '"0"');
    const put = await api.call('PUT', '/v1/settings', {
      body: { anycast_endpoints: ['192.0.2.10', '192.0.2.11'], blocklist: [{ cidr: '198.51.100.128/25', description: 'attackers' }] },
    });
    assert.equal(put.statusCode, 200);
    assert.deepEqual(put.json(), {
      anycast_endpoints: ['192.0.2.10', '192.0.2.11'],
      bgp: { asn: 64512, peers: [] },
      blocklist: [{ cidr: '198.51.100.128/25', description: 'attackers' }],
    });
    const acme = await api.createAccount('acme');
    assert.equal((await api.call('POST', `/v1/accounts/${acme.id}/gre_tunnels`, { token: acme.token, body: tunnel({ edge_gre_endpoint: '192.0.2.11' }) })).statusCode, 201);
    await refused(api, () => api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.10'] } }), 409, 'conflict', 'anycast_endpoints', /would break GRE tunnel acme-chi of account acme: 192\.0\.2\.11 is not one of/);
    await refused(api, () => api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['10.0.0.1'] } }), 400, 'invalid', 'anycast_endpoints[0]', /private-use/);
    await refused(api, () => api.call('PUT', '/v1/settings', { body: { anycast_endpoints: [], bgp_peers: [{}] } }), 400, 'invalid', 'bgp_peers', /moved to bgp\.peers/);
    const etag = String((await api.call('GET', '/v1/settings')).headers.etag);
    const dropUnused = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.11'] }, headers: { 'if-match': etag } });
    assert.equal(dropUnused.statusCode, 200);
    await refused(api, () => api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.11'] }, headers: { 'if-match': etag } }), 409, 'stale', undefined, /settings are at revision/);
  } finally {
    await api.close();
  }
});

test('nodes: the agents\' status documents, one item per node; stale when the liveness lease is gone or the report is old', async () => {
  const api = await openApi();
  try {
    assert.deepEqual((await api.call('GET', '/v1/nodes')).json(), { items: [] });
    await api.store.txn([], [
      { type: 'put', key: keys.nodeStatus('edge-1'), value: JSON.stringify({ applied_revision: 7 }) },
      { type: 'put', key: keys.nodeDrain('edge-1'), value: 'true' },
    ]);
    // A status without a time of report cannot be trusted: stale.
    assert.deepEqual((await api.call('GET', '/v1/nodes')).json(), { items: [{ id: 'edge-1', applied_revision: 7, alive: false, age_ms: null, stale: true }] });
    // Fresh within three heartbeats AND alive (its liveness key under a live lease); stale otherwise.
    const at = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
    const lease = await api.store.grantLease(60_000);
    await api.store.txn([], [
      { type: 'put', key: keys.nodeStatus('edge-1'), value: JSON.stringify({ updated_at: at(1000), heartbeat_ms: 1000 }) },
      { type: 'put', key: keys.nodeAlive('edge-1'), value: '{}', lease: lease.id },
      { type: 'put', key: keys.nodeStatus('edge-2'), value: JSON.stringify({ updated_at: at(60_000), heartbeat_ms: 5000 }) },
      { type: 'put', key: keys.nodeAlive('edge-2'), value: '{}', lease: lease.id },
      { type: 'put', key: keys.nodeStatus('edge-3'), value: JSON.stringify({ updated_at: at(10), heartbeat_ms: 5000 }) },
    ]);
    type Item = { id: string; stale: boolean; alive: boolean; age_ms: number };
    const nodes = async () => Object.fromEntries(((await api.call('GET', '/v1/nodes')).json() as { items: Item[] }).items.map((n) => [n.id, n]));
    let byId = await nodes();
    assert.deepEqual([byId['edge-1']!.alive, byId['edge-1']!.stale], [true, false]);
    assert.ok(byId['edge-1']!.age_ms >= 1000 && byId['edge-1']!.age_ms < 3000, String(byId['edge-1']!.age_ms));
    assert.deepEqual([byId['edge-2']!.alive, byId['edge-2']!.stale], [true, true], 'alive but its report is too old');
    assert.deepEqual([byId['edge-3']!.alive, byId['edge-3']!.stale], [false, true], 'a fresh report without a liveness key');
    await lease.revoke();
    byId = await nodes();
    assert.deepEqual([byId['edge-1']!.alive, byId['edge-1']!.stale], [false, true], 'its lease ended: stale, still listed');
  } finally {
    await api.close();
  }
});
