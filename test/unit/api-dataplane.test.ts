/**
 * The data-plane endpoints on a real LMDB store: mitigation rules (create, read, list with statistics, delete,
 * validation naming the field, the data plane's per-prefix limit counted with covering prefixes), and the counters
 * agents publish, summed over nodes and scoped to an account's own token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys } from '../../src/model/keys.js';
import type { NodeCounters } from '../../src/model/counters.js';
import { errorOf, openApi, type ApiFixture } from '../support/api-fixture.js';

async function withApi(fn: (api: ApiFixture) => Promise<void>): Promise<void> {
  const api = await openApi();
  try {
    await fn(api);
  } finally {
    await api.close();
  }
}

test('a mitigation rule is created, read, listed and deleted', () =>
  withApi(async (api) => {
    const res = await api.call('POST', '/v1/mitigations', {
      body: {
        prefix: '203.0.113.0/24',
        protocol: 'tcp',
        destination_ports: { min: 22, max: 22 },
        source_ports: { min: 0, max: 65535 },
        tcp_flags: { set: ['syn'], unset: ['ack'] },
        ttl: { min: 0, max: 8 },
        action: 'rate-limit',
        rate_limit: { pps: 1000 },
        expires_in: 3600,
        description: 'ssh flood',
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    const rule = res.json() as Record<string, unknown> & { id: string; expires_at: string };
    assert.match(rule.id, /^[0-9a-f]{32}$/);
    assert.equal(res.headers.etag !== undefined, true);
    assert.deepEqual(
      { ...rule, id: undefined, created_at: undefined, expires_at: undefined },
      {
        id: undefined,
        created_at: undefined,
        expires_at: undefined,
        prefix: '203.0.113.0/24',
        protocol: 'tcp',
        destination_ports: { min: 22, max: 22 },
        tcp_flags: { set: ['syn'], unset: ['ack'] },
        ttl: { min: 0, max: 8 },
        action: 'rate-limit',
        rate_limit: { pps: 1000, burst: 1000 },
        description: 'ssh flood',
        expired: false,
        stats: { packets: 0, bytes: 0, dropped_packets: 0, dropped_bytes: 0 },
      },
      'a full port range is stored as no range; burst defaults to pps',
    );
    const inAnHour = Date.parse(rule.expires_at) - Date.now();
    assert.ok(inAnHour > 3500_000 && inAnHour <= 3600_000, rule.expires_at);
    const stored = await api.store.get(keys.mitigation(rule.id));
    assert.ok(stored, 'stored under keys.mitigation(id)');

    assert.deepEqual((await api.call('GET', `/v1/mitigations/${rule.id}`)).json(), rule);
    assert.deepEqual(((await api.call('GET', '/v1/mitigations')).json() as { items: unknown[] }).items, [rule]);
    assert.equal((await api.call('DELETE', `/v1/mitigations/${rule.id}`)).statusCode, 204);
    const gone = await api.call('GET', `/v1/mitigations/${rule.id}`);
    assert.equal(gone.statusCode, 404);
    assert.equal(errorOf(gone).code, 'not_found');
    assert.equal((await api.call('DELETE', `/v1/mitigations/${rule.id}`)).statusCode, 404);
    assert.equal((await api.call('GET', '/v1/mitigations/nope')).statusCode, 404);
  }));

test('bad rules are refused with the field and the reason, and store nothing', () =>
  withApi(async (api) => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ action: 'drop' }, 'prefix', /is required/],
      [{ prefix: '203.0.113.1/24', action: 'drop' }, 'prefix', /host bits set \(did you mean 203\.0\.113\.0\/24\?\)/],
      [{ prefix: 'nope', action: 'drop' }, 'prefix', /./],
      [{ prefix: '203.0.113.0/24', action: 'allow' }, 'action', /must be one of: drop, rate-limit/],
      [{ prefix: '203.0.113.0/24', action: 'drop', protocol: 'icmp', destination_ports: { min: 1, max: 2 } }, 'destination_ports', /needs protocol tcp, udp or any/],
      [{ prefix: '203.0.113.0/24', action: 'drop', protocol: 'udp', tcp_flags: { set: ['syn'] } }, 'tcp_flags', /needs protocol tcp/],
      [{ prefix: '203.0.113.0/24', action: 'drop', protocol: 'tcp', tcp_flags: { set: ['syn'], unset: ['syn'] } }, 'tcp_flags', /syn cannot be both set and unset/],
      [{ prefix: '203.0.113.0/24', action: 'drop', protocol: 'tcp', tcp_flags: { set: ['xmas'] } }, 'tcp_flags.set[0]', /must be one of/],
      [{ prefix: '203.0.113.0/24', action: 'drop', length: { min: 1000, max: 100 } }, 'length.max', /must be at least min \(1000\)/],
      [{ prefix: '203.0.113.0/24', action: 'drop', ttl: { min: 0, max: 300 } }, 'ttl.max', /must be at most 255/],
      [{ prefix: '203.0.113.0/24', action: 'drop', protocol: 0 }, 'protocol', /./],
      [{ prefix: '203.0.113.0/24', action: 'rate-limit' }, 'rate_limit', /is required when action is rate-limit/],
      [{ prefix: '203.0.113.0/24', action: 'rate-limit', rate_limit: { pps: 0 } }, 'rate_limit.pps', /must be at least 1/],
      [{ prefix: '203.0.113.0/24', action: 'drop', rate_limit: { pps: 10 } }, 'rate_limit', /only for action rate-limit/],
      [{ prefix: '203.0.113.0/24', action: 'drop', expires_at: '2001-01-01T00:00:00Z' }, 'expires_at', /is in the past/],
      [{ prefix: '203.0.113.0/24', action: 'drop', expires_at: 'tomorrow' }, 'expires_at', /must be an ISO 8601 time/],
      [{ prefix: '203.0.113.0/24', action: 'drop', expires_at: '2099-01-01T00:00:00Z', expires_in: 5 }, 'expires_in', /not both/],
      [{ prefix: '203.0.113.0/24', action: 'drop', colour: 'red' }, 'colour', /is not a known field/],
    ];
    const before = await api.snapshot();
    for (const [body, field, reason] of cases) {
      const res = await api.call('POST', '/v1/mitigations', { body });
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
      const e = errorOf(res);
      assert.equal(e.code, 'invalid');
      assert.equal(e.field, field, `${JSON.stringify(body)}: ${e.message}`);
      assert.match(e.message, reason);
    }
    assert.deepEqual(await api.snapshot(), before);
  }));

test('the data plane evaluates 8 rules per prefix, covering prefixes included: the ninth is refused (409)', () =>
  withApi(async (api) => {
    for (let i = 1; i <= 7; i++) {
      const res = await api.call('POST', '/v1/mitigations', { body: { prefix: '198.18.0.0/24', protocol: 'udp', destination_ports: { min: i, max: i }, action: 'drop' } });
      assert.equal(res.statusCode, 201, res.body);
    }
    assert.equal((await api.call('POST', '/v1/mitigations', { body: { prefix: '198.18.0.0/16', protocol: 'gre', action: 'drop' } })).statusCode, 201);
    // The /25 would hold its own rule, the seven of the /24 and the /16's: nine.
    const res = await api.call('POST', '/v1/mitigations', { body: { prefix: '198.18.0.128/25', action: 'drop' } });
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(errorOf(res).field, 'prefix');
    assert.match(errorOf(res).message, /198\.18\.0\.128\/25 would have 9 rules applying to it .* at most 8 per prefix/);
    // Elsewhere there is room.
    assert.equal((await api.call('POST', '/v1/mitigations', { body: { prefix: '198.18.1.0/24', action: 'drop' } })).statusCode, 201);
    // An expired rule no longer counts: with one of the /24's rules expired, the /25 fits.
    const list = (await api.call('GET', '/v1/mitigations')).json() as { items: Record<string, unknown>[] };
    const first = list.items[0]!;
    const { expired: _e, stats: _s, ...stored } = first;
    await api.store.txn([], [{ type: 'put', key: keys.mitigation(String(first.id)), value: JSON.stringify({ ...stored, expires_at: '2020-01-01T00:00:00.000Z' }) }]);
    assert.equal((await api.call('GET', '/v1/mitigations')).json().items[0].expired, true);
    assert.equal((await api.call('POST', '/v1/mitigations', { body: { prefix: '198.18.0.128/25', action: 'drop' } })).statusCode, 201);
  }));

function nodeCounters(node: string, items: NodeCounters['items'], mitigations: NodeCounters['mitigations'] = {}): NodeCounters {
  return { node_id: node, updated_at: '2026-11-22T12:00:00.000Z', items, mitigations };
}

test('counters are summed over nodes; an account token sees only its own account', () =>
  withApi(async (api) => {
    const acme = await api.createAccount('acme');
    const beta = await api.createAccount('beta');
    const rule = (await api.call('POST', '/v1/mitigations', { body: { prefix: '203.0.113.0/24', action: 'drop' } })).json() as { id: string };
    const item = (account_id: string | null, reason: string, packets: number) => ({ account_id, verdict: reason.split('_')[0]!, reason, packets, bytes: packets * 100 });
    await api.store.txn([], [
      { type: 'put', key: keys.nodeCounters('edge-1'), value: JSON.stringify(nodeCounters('edge-1', [item(acme.id, 'drop_blocklist', 3), item(beta.id, 'pass', 10), item(null, 'pass_non_ip', 1)], { [rule.id]: { packets: 5, bytes: 500, dropped_packets: 5, dropped_bytes: 500 } })) },
      { type: 'put', key: keys.nodeCounters('edge-2'), value: JSON.stringify(nodeCounters('edge-2', [item(acme.id, 'drop_blocklist', 4), item(acme.id, 'redirect_gre', 2)], { [rule.id]: { packets: 1, bytes: 100, dropped_packets: 1, dropped_bytes: 100 } })) },
      { type: 'put', key: keys.nodeCounters('edge-3'), value: 'not json' },
    ]);
    const all = (await api.call('GET', '/v1/counters')).json() as { items: Record<string, unknown>[]; nodes: { id: string }[] };
    assert.deepEqual(all.nodes.map((n) => n.id).sort(), ['edge-1', 'edge-2']);
    const acmeItems = [
      { account_id: acme.id, account: 'acme', verdict: 'drop', reason: 'drop_blocklist', packets: 7, bytes: 700 },
      { account_id: acme.id, account: 'acme', verdict: 'redirect', reason: 'redirect_gre', packets: 2, bytes: 200 },
    ];
    assert.equal(all.items.length, 4);
    for (const i of acmeItems) assert.ok(all.items.some((x) => JSON.stringify(x) === JSON.stringify(i)), JSON.stringify(all.items));
    assert.ok(all.items.some((x) => x.account_id === null && x.reason === 'pass_non_ip'));
    assert.deepEqual((await api.call('GET', `/v1/counters?account=${acme.id}`)).json(), { items: acmeItems, nodes: all.nodes });

    // Acme's token: its own items, no node names, whether it asks for itself or not at all.
    assert.deepEqual((await api.call('GET', '/v1/counters', { token: acme.token })).json(), { items: acmeItems });
    assert.deepEqual((await api.call('GET', `/v1/counters?account=${acme.id}`, { token: acme.token })).json(), { items: acmeItems });
    const other = await api.call('GET', `/v1/counters?account=${beta.id}`, { token: acme.token });
    assert.equal(other.statusCode, 404);
    assert.equal(errorOf(other).code, 'not_found');
    assert.equal((await api.call('GET', `/v1/counters?account=${'f'.repeat(32)}`)).statusCode, 404);
    assert.equal((await api.call('GET', '/v1/counters?acount=x')).statusCode, 400, 'a misspelt query parameter is refused');
    assert.equal((await api.call('GET', '/v1/counters', { token: null })).statusCode, 401);

    const listed = (await api.call('GET', '/v1/mitigations')).json() as { items: { stats: unknown }[] };
    assert.deepEqual(listed.items[0]!.stats, { packets: 6, bytes: 600, dropped_packets: 6, dropped_bytes: 600 });
    // Node status listings are not disturbed by the counters documents.
    assert.deepEqual((await api.call('GET', '/v1/nodes')).json(), { items: [] });
  }));
