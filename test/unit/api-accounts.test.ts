/** Accounts, tokens and authentication through the HTTP API (inject) on a real LMDB store. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { keys } from '../../src/model/keys.js';
import { errorOf, openApi, OPERATOR_TOKEN } from '../support/api-fixture.js';

test('create, list, get and delete accounts; tokens are shown once and stored hashed', async () => {
  const api = await openApi();
  try {
    const created = await api.call('POST', '/v1/accounts', { body: { name: 'acme' } });
    assert.equal(created.statusCode, 201);
    const acme = created.json() as { id: string; name: string; token: string; created_at: string };
    assert.match(acme.id, /^[0-9a-f]{32}$/);
    assert.equal(acme.name, 'acme');
    assert.match(acme.token, /^ot_[A-Za-z0-9_-]{43}$/);
    assert.ok(!Number.isNaN(Date.parse(acme.created_at)));

    const beta = await api.createAccount('beta');
    const list = await api.call('GET', '/v1/accounts');
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), { items: [{ id: acme.id, name: 'acme' }, { id: beta.id, name: 'beta' }] });

    const one = await api.call('GET', `/v1/accounts/${acme.id}`);
    assert.equal(one.statusCode, 200);
    assert.deepEqual(one.json(), { id: acme.id, name: 'acme', created_at: acme.created_at });
    assert.match(String(one.headers.etag), /^"\d+"$/);

    // Only the hash of a token is stored, and nowhere in clear.
    const snap = await api.snapshot();
    const hash = createHash('sha256').update(acme.token).digest('hex');
    assert.deepEqual(JSON.parse(snap.data[keys.token(hash)]!).account_id, acme.id);
    assert.ok(!JSON.stringify(snap.data).includes(acme.token));
    assert.ok(!JSON.stringify(snap.data).includes(OPERATOR_TOKEN));

    // The account token sees only its own account.
    const own = await api.call('GET', '/v1/accounts', { token: acme.token });
    assert.deepEqual(own.json(), { items: [{ id: acme.id, name: 'acme' }] });
    assert.equal((await api.call('GET', `/v1/accounts/${acme.id}`, { token: acme.token })).statusCode, 200);

    const del = await api.call('DELETE', `/v1/accounts/${acme.id}`);
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    assert.equal((await api.call('GET', `/v1/accounts/${acme.id}`)).statusCode, 404);
    assert.equal((await api.call('DELETE', `/v1/accounts/${acme.id}`)).statusCode, 404);
    assert.deepEqual((await api.call('GET', '/v1/accounts')).json(), { items: [{ id: beta.id, name: 'beta' }] });
    // Its token died with it, and its registry entry and document are gone.
    const gone = await api.call('GET', `/v1/accounts/${acme.id}`, { token: acme.token });
    assert.equal(gone.statusCode, 401);
    const after = await api.snapshot();
    assert.equal(after.data[keys.token(hash)], undefined);
    assert.equal(after.data[keys.account(acme.id)], undefined);
    assert.deepEqual(Object.values(JSON.parse(after.data[keys.registry]!).names), [beta.id]);
  } finally {
    await api.close();
  }
});

test('account names: unique (409), slugs only (400)', async () => {
  const api = await openApi();
  try {
    await api.createAccount('acme');
    const before = await api.snapshot();
    const dup = await api.call('POST', '/v1/accounts', { body: { name: 'acme' } });
    assert.equal(dup.statusCode, 409);
    assert.deepEqual(errorOf(dup), { code: 'conflict', message: 'name: an account named "acme" already exists', field: 'name' });
    const bad = await api.call('POST', '/v1/accounts', { body: { name: 'Acme Corp' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(errorOf(bad).field, 'name');
    assert.match(errorOf(bad).message, /^name: must be a slug/);
    const missing = await api.call('POST', '/v1/accounts', { body: {} });
    assert.deepEqual(errorOf(missing), { code: 'invalid', message: 'name: is required', field: 'name' });
    const extra = await api.call('POST', '/v1/accounts', { body: { name: 'x', plan: 'gold' } });
    assert.deepEqual(errorOf(extra), { code: 'invalid', message: 'plan: is not a known field', field: 'plan' });
    assert.deepEqual(await api.snapshot(), before, 'refused requests change nothing');
  } finally {
    await api.close();
  }
});

test('authentication: missing, malformed and unknown tokens are 401; public endpoints need none', async () => {
  const api = await openApi();
  try {
    const none = await api.call('GET', '/v1/accounts', { token: null });
    assert.equal(none.statusCode, 401);
    assert.equal(errorOf(none).code, 'unauthorized');
    assert.match(errorOf(none).message, /missing Authorization header/);
    const basic = await api.call('GET', '/v1/accounts', { token: null, headers: { authorization: 'Basic b3A6cHc=' } });
    assert.equal(basic.statusCode, 401);
    assert.match(errorOf(basic).message, /must be "Bearer <token>"/);
    const wrong = await api.call('GET', '/v1/accounts', { token: 'ot_not-a-real-token' });
    assert.equal(wrong.statusCode, 401);
    assert.deepEqual(errorOf(wrong), { code: 'unauthorized', message: 'invalid token' });
    // Unauthenticated writes are refused before the body is even looked at.
    const write = await api.call('POST', '/v1/accounts', { token: null, body: { name: 'evil' } });
    assert.equal(write.statusCode, 401);
    assert.deepEqual((await api.call('GET', '/v1/accounts')).json(), { items: [] });

    const health = await api.call('GET', '/healthz', { token: null });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { ok: true });
    const openapi = await api.call('GET', '/openapi.json', { token: null });
    assert.equal(openapi.statusCode, 200);
    const doc = openapi.json() as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/v1/accounts/{id}/gre_tunnels/{tid}']);
    assert.ok(doc.paths['/v1/accounts/{id}/config']);
    const unknown = await api.call('GET', '/v2/whatever');
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorOf(unknown).code, 'not_found');
  } finally {
    await api.close();
  }
});

test('account deletion honours If-Match', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    const etag = String((await api.call('GET', `/v1/accounts/${acme.id}`)).headers.etag);
    await api.call('POST', `/v1/accounts/${acme.id}/prefixes`, { body: { cidr: '203.0.113.0/24' } });
    const stale = await api.call('DELETE', `/v1/accounts/${acme.id}`, { headers: { 'if-match': etag } });
    assert.equal(stale.statusCode, 409);
    assert.equal(errorOf(stale).code, 'stale');
    const fresh = String((await api.call('GET', `/v1/accounts/${acme.id}`)).headers.etag);
    assert.equal((await api.call('DELETE', `/v1/accounts/${acme.id}`, { headers: { 'if-match': fresh } })).statusCode, 204);
  } finally {
    await api.close();
  }
});

test('a deleted account frees its name and its prefixes for others', async () => {
  const api = await openApi();
  try {
    const acme = await api.createAccount('acme');
    await api.call('POST', `/v1/accounts/${acme.id}/prefixes`, { body: { cidr: '203.0.113.0/24' } });
    const beta = await api.createAccount('beta');
    assert.equal((await api.call('POST', `/v1/accounts/${beta.id}/prefixes`, { body: { cidr: '203.0.113.0/24' } })).statusCode, 409);
    await api.call('DELETE', `/v1/accounts/${acme.id}`);
    assert.equal((await api.call('POST', `/v1/accounts/${beta.id}/prefixes`, { body: { cidr: '203.0.113.0/24' } })).statusCode, 201);
    assert.equal((await api.call('POST', '/v1/accounts', { body: { name: 'acme' } })).statusCode, 201);
  } finally {
    await api.close();
  }
});
