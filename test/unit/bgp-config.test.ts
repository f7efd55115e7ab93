// The edges' BGP configuration end to end without root: the model (settings.bgp, node configs, password_set),
// the API (GET|PUT|DELETE /v1/nodes/{id}/config, POST drain|undrain, settings never returning passwords) and the
// CLI verbs (node drain|undrain|config, settings set --bgp-*, status) in-process against the real API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerClientCommands, runProgram, type CliIo } from '../../src/cli/index.js';
import { formatStatus } from '../../src/cli/status.js';
import { ValidationError } from '../../src/model/errors.js';
import { keys } from '../../src/model/keys.js';
import { decodeNodeConfig, effectiveNodeBgp, nodeIdField, parseNodeConfigInput } from '../../src/model/node-config.js';
import { decodeSettings, parseSettingsInput } from '../../src/model/settings.js';
import { errorOf, openApi, type ApiFixture } from '../support/api-fixture.js';

function invalid(fn: () => unknown, field: string | undefined, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.field, field);
    assert.match(e.reason, reason);
    return true;
  });
}

const PEER = { address: '198.51.100.1', asn: 65000, bfd: true, hold_time: 9, keepalive: 3 };

test('settings.bgp: password_set keeps the stored password of the same address, and only that', () => {
  const current = parseSettingsInput({ anycast_endpoints: [], bgp: { asn: 65010, peers: [{ ...PEER, password: 'S3cret' }] } });
  assert.equal(current.bgp.peers[0]!.password, 'S3cret');
  const kept = parseSettingsInput({ anycast_endpoints: [], bgp: { asn: 65010, peers: [{ ...PEER, password_set: true }] } }, '', current);
  assert.equal(kept.bgp.peers[0]!.password, 'S3cret');
  assert.equal('password_set' in kept.bgp.peers[0]!, false, 'password_set is never stored');
  const dropped = parseSettingsInput({ anycast_endpoints: [], bgp: { peers: [{ ...PEER, password_set: false }] } }, '', current);
  assert.equal(dropped.bgp.peers[0]!.password, undefined);
  const replaced = parseSettingsInput({ anycast_endpoints: [], bgp: { peers: [{ ...PEER, password: 'N3w' }] } }, '', current);
  assert.equal(replaced.bgp.peers[0]!.password, 'N3w');
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { peers: [{ ...PEER, address: '198.51.100.9', password_set: true }] } }, '', current), 'bgp.peers[0].password_set', /no password is stored for 198\.51\.100\.9/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { peers: [{ ...PEER, password: 'x', password_set: false }] } }), 'bgp.peers[0].password_set', /false but a password/);
  // A document stored before `bgp` existed decodes to the defaults.
  assert.deepEqual(decodeSettings(JSON.stringify({ anycast_endpoints: ['192.0.2.20'], bgp_peers: [], blocklist: [] })).bgp, { asn: 64512, peers: [] });
});

test('node config: router id, AS and peers override the settings; absent fields fall back', () => {
  const settings = parseSettingsInput({ anycast_endpoints: [], bgp: { asn: 65010, peers: [PEER] } });
  assert.deepEqual(decodeNodeConfig(undefined), { bgp: {} });
  assert.deepEqual(effectiveNodeBgp(settings, decodeNodeConfig(undefined)), { asn: 65010, peers: settings.bgp.peers, peersFrom: 'settings' });
  const own = parseNodeConfigInput({ bgp: { router_id: '100.65.0.1', asn: 64512, peers: [{ address: '100.65.0.0', asn: 65001, bfd: true, hold_time: 3, keepalive: 1 }] } });
  const eff = effectiveNodeBgp(settings, own);
  assert.equal(eff.asn, 64512);
  assert.equal(eff.routerId, '100.65.0.1');
  assert.deepEqual(eff.peers.map((p) => p.address), ['100.65.0.0']);
  assert.equal(eff.peersFrom, 'node');
  // An empty list is "no peers here", not "the operator's".
  assert.deepEqual(effectiveNodeBgp(settings, parseNodeConfigInput({ bgp: { peers: [] } })).peers, []);
  invalid(() => parseNodeConfigInput({ bgp: { router_id: '10.0.0' } }), 'bgp.router_id', /IPv4 address/);
  invalid(() => parseNodeConfigInput({ bgp: { router_id: '0.0.0.0' } }), 'bgp.router_id', /0\.0\.0\.0/);
  invalid(() => parseNodeConfigInput({ bgp: { router_id: '2001:db8::1' } }), 'bgp.router_id', /IPv4/);
  invalid(() => parseNodeConfigInput({ bgp: { peers: [{ address: '100.65.0.0' }] } }), 'bgp.peers[0].asn', /required/);
  invalid(() => parseNodeConfigInput({ bgp: { peers: [PEER, PEER] } }), 'bgp.peers[1].address', /already peer 0/);
  invalid(() => parseNodeConfigInput({ bgp: { router: '1.2.3.4' } }), 'bgp.router', /not a known field/);
  invalid(() => parseNodeConfigInput({ bgp: {}, drain: true }), 'drain', /not a known field/);
  invalid(() => nodeIdField('Edge_1'), 'id', /node id/);
  assert.equal(nodeIdField('chi-edge1'), 'chi-edge1');
});

/** The CLI in-process, its fetch answered by the API fixture (no sockets). */
async function cli(api: ApiFixture, args: string[], files: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: { OPENTRANSIT_API: 'http://api.test', OPENTRANSIT_TOKEN: 'ot_test-operator-token-0123456789' },
    readFile: async (p) => {
      if (files[p] === undefined) throw new Error(`ENOENT: ${p}`);
      return files[p]!;
    },
    readStdin: async () => '',
    fetch: async (input, init) => {
      const url = new URL(input);
      const res = await api.app.inject({
        method: (init?.method ?? 'GET') as 'GET',
        url: url.pathname + url.search,
        headers: init?.headers as Record<string, string>,
        ...(init?.body !== undefined ? { payload: init.body as string } : {}),
      });
      return new Response(res.statusCode === 204 ? null : res.body, { status: res.statusCode, headers: res.headers as Record<string, string> });
    },
  };
  const program = new Command('opentransit');
  registerClientCommands(program, io);
  const code = await runProgram(program, ['node', 'opentransit', ...args], io);
  return { code, out, err };
}

test('API: settings never return a BGP password; a GET → PUT round trip keeps it', async () => {
  const api = await openApi();
  try {
    const put = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 65010, peers: [{ ...PEER, password: 'S3cr!t' }] } } });
    assert.equal(put.statusCode, 200, put.body);
    assert.doesNotMatch(put.body, /S3cr!t/);
    const got = await api.call('GET', '/v1/settings');
    assert.doesNotMatch(got.body, /S3cr!t/);
    const view = got.json() as { bgp: { asn: number; peers: Array<Record<string, unknown>> } };
    assert.deepEqual(view.bgp, { asn: 65010, peers: [{ address: '198.51.100.1', asn: 65000, bfd: true, hold_time: 9, keepalive: 3, passive: false, password_set: true }] });
    // The agents' copy (under desired/) holds it.
    assert.equal(decodeSettings((await api.store.get(keys.settings))!.value).bgp.peers[0]!.password, 'S3cr!t');
    // Round trip: what GET gave, with one more endpoint.
    const again = await api.call('PUT', '/v1/settings', { body: { ...(got.json() as object), anycast_endpoints: ['192.0.2.10', '192.0.2.11'] } });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(decodeSettings((await api.store.get(keys.settings))!.value).bgp.peers[0]!.password, 'S3cr!t');
    const bad = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: [], bgp: { peers: [{ ...PEER, keepalive: 5 }] } } });
    assert.equal(bad.statusCode, 400);
    assert.equal(errorOf(bad).field, 'bgp.peers[0].keepalive');
  } finally {
    await api.close();
  }
});

test('API: node config (operator only, ETag, If-Match, redacted), drain and undrain write the keys agents watch', async () => {
  const api = await openApi();
  try {
    const empty = await api.call('GET', '/v1/nodes/chi-edge1/config');
    assert.equal(empty.statusCode, 200);
    assert.deepEqual(empty.json(), { bgp: {} });
    assert.equal(empty.headers.etag, '"0"');
    const body = { bgp: { router_id: '100.65.0.1', asn: 64512, peers: [{ address: '100.65.0.0', asn: 65001, bfd: true, hold_time: 3, keepalive: 1, password: 'Pw' }] } };
    const put = await api.call('PUT', '/v1/nodes/chi-edge1/config', { body, headers: { 'if-match': '"0"' } });
    assert.equal(put.statusCode, 200, put.body);
    assert.doesNotMatch(put.body, /"password"/);
    assert.equal((put.json() as { bgp: { peers: Array<{ password_set: boolean }> } }).bgp.peers[0]!.password_set, true);
    const stored = decodeNodeConfig((await api.store.get(keys.nodeConfig('chi-edge1')))!.value);
    assert.equal(stored.bgp.peers![0]!.password, 'Pw');
    assert.ok(keys.nodeConfig('chi-edge1').startsWith(keys.desiredPrefix), 'agents receive it');
    const stale = await api.call('PUT', '/v1/nodes/chi-edge1/config', { body, headers: { 'if-match': '"0"' } });
    assert.equal(stale.statusCode, 409);
    assert.equal(errorOf(stale).code, 'stale');
    const badId = await api.call('PUT', '/v1/nodes/Bad_Id/config', { body });
    assert.equal(badId.statusCode, 400);
    assert.equal(errorOf(badId).field, 'id');
    const badBody = await api.call('PUT', '/v1/nodes/chi-edge1/config', { body: { bgp: { router_id: 'x' } } });
    assert.equal(errorOf(badBody).field, 'bgp.router_id');

    const drained = await api.call('POST', '/v1/nodes/chi-edge1/drain', { body: { reason: 'maintenance' } });
    assert.equal(drained.statusCode, 200, drained.body);
    assert.equal((drained.json() as { drained: boolean }).drained, true);
    const record = JSON.parse((await api.store.get(keys.nodeDrain('chi-edge1')))!.value) as { reason: string; drained_at: string };
    assert.equal(record.reason, 'maintenance');
    assert.ok(!Number.isNaN(Date.parse(record.drained_at)));
    // Without a body too; and undrain is idempotent.
    assert.equal((await api.call('POST', '/v1/nodes/chi-edge2/drain')).statusCode, 200);
    assert.equal((await api.call('POST', '/v1/nodes/chi-edge1/undrain')).statusCode, 200);
    assert.equal((await api.call('POST', '/v1/nodes/chi-edge1/undrain')).statusCode, 200);
    assert.equal(await api.store.get(keys.nodeDrain('chi-edge1')), undefined);
    assert.ok(await api.store.get(keys.nodeDrain('chi-edge2')));

    const acme = await api.createAccount('acme');
    for (const [method, url] of [['GET', '/v1/nodes/chi-edge1/config'], ['POST', '/v1/nodes/chi-edge1/drain']] as const) {
      const res = await api.call(method, url, { token: acme.token });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
    }
    assert.equal((await api.call('DELETE', '/v1/nodes/chi-edge1/config')).statusCode, 204);
    assert.deepEqual((await api.call('GET', '/v1/nodes/chi-edge1/config')).json(), { bgp: {} });
  } finally {
    await api.close();
  }
});

test('CLI: node drain|undrain|config, settings set --bgp-*, status shows what each node announces', async () => {
  const api = await openApi();
  try {
    let r = await cli(api, ['node', 'drain', 'chi-edge1', '--reason', 'kernel upgrade']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /node chi-edge1: drained \(kernel upgrade\)/);
    assert.ok(await api.store.get(keys.nodeDrain('chi-edge1')));
    r = await cli(api, ['node', 'undrain', 'chi-edge1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(await api.store.get(keys.nodeDrain('chi-edge1')), undefined);

    const yaml = 'bgp:\n  router_id: 100.65.0.1\n  peers:\n    - {address: 100.65.0.0, asn: 65001, bfd: true, hold_time: 3, keepalive: 1, password: Pw}\n';
    r = await cli(api, ['node', 'config', 'set', 'chi-edge1', '-f', 'node.yaml'], { 'node.yaml': yaml });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /bgp\.router_id\s+100\.65\.0\.1/);
    assert.match(r.out, /bgp\.peers\s+100\.65\.0\.0 AS65001 bfd password/);
    assert.match(r.out, /bgp\.asn\s+\(settings\)/);
    r = await cli(api, ['node', 'config', 'get', 'chi-edge1', '-o', 'json']);
    assert.doesNotMatch(r.out, /Pw/);
    r = await cli(api, ['node', 'config', 'set', 'chi-edge1', '-f', 'bad.yaml'], { 'bad.yaml': 'bgp: {router_id: nope}\n' });
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: .*IPv4 address.*\(field: bgp\.router_id\)/);
    r = await cli(api, ['node', 'drain', 'Bad_Id']);
    assert.equal(r.code, 1);
    assert.match(r.err, /node id/);

    r = await cli(api, ['settings', 'set', '--bgp-asn', '65010', '--bgp-peers-file', 'peers.yaml'], { 'peers.yaml': '- {address: 198.51.100.1, asn: 65000, password: S3}\n' });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /bgp\.asn\s+65010/);
    assert.match(r.out, /bgp\.peers\s+198\.51\.100\.1 AS65000 password/);
    // Changing another field keeps the password (the CLI sends back password_set).
    r = await cli(api, ['settings', 'set', '--anycast', '192.0.2.10,192.0.2.11']);
    assert.equal(r.code, 0, r.err);
    assert.equal(decodeSettings((await api.store.get(keys.settings))!.value).bgp.peers[0]!.password, 'S3');
    r = await cli(api, ['settings', 'set']);
    assert.equal(r.code, 1);
    assert.match(r.err, /at least one of/);

    // status: what an agent reported.
    await api.store.txn([], [
      {
        type: 'put',
        key: keys.nodeStatus('chi-edge1'),
        value: JSON.stringify({
          node_id: 'chi-edge1',
          applied_revision: 7,
          host: { state: 'ok' },
          accounts: {},
          bgp: {
            state: 'ok',
            drained: false,
            announced: ['203.0.113.0/24', '192.0.2.10/32'],
            sessions: [{ peer: '100.65.0.0', peer_asn: 65001, state: 'up', bgp_state: 'Established' }],
          },
        }),
      },
      {
        type: 'put',
        key: keys.nodeStatus('chi-edge2'),
        value: JSON.stringify({ node_id: 'chi-edge2', host: { state: 'ok' }, accounts: {}, bgp: { state: 'ok', drained: true, withheld: 'drained', announced: [], sessions: [] } }),
      },
    ]);
    r = await cli(api, ['status']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /chi-edge1 .*ok, 2 announced, 1\/1 sessions up/);
    assert.match(r.out, /chi-edge2 .*drained \(0 announced\)/);
    assert.match(r.out, /NODE\s+ANNOUNCED\s+BGP_SESSIONS/);
    assert.match(r.out, /chi-edge1\s+203\.0\.113\.0\/24 192\.0\.2\.10\/32\s+100\.65\.0\.0 Established/);
    assert.match(r.out, /chi-edge2\s+nothing \(drained\)/);
  } finally {
    await api.close();
  }
});

test('status without BGP in any node keeps its old columns', () => {
  const out = formatStatus([{ id: 'edge-1', applied_revision: 3, host: { state: 'ok' }, accounts: {} }], [], Date.now());
  assert.doesNotMatch(out, /BGP/);
});
