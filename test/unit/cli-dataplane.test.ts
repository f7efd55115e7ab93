/**
 * The data-plane verbs in-process (the real commander program) against a real API on LMDB, listening on loopback:
 * `blocklist list|add|del`, `mitigations list|add|del`, `counters [--account]` — tables, JSON, errors naming the
 * field, and an account token seeing only its own counters.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { registerClientCommands, runProgram } from '../../src/cli/index.js';
import type { CliIo } from '../../src/cli/context.js';
import { blocklistCidr } from '../../src/cli/blocklist.js';
import { matchSummary, mitigationBody, parseDuration, parseRange, parseTcpFlags } from '../../src/cli/mitigations.js';
import { keys } from '../../src/model/keys.js';
import { OPERATOR_TOKEN, openApi, type Account, type ApiFixture } from '../support/api-fixture.js';
import { UsageError } from '../../src/cli/errors.js';

let api: ApiFixture;
let base = '';
let acme: Account;

before(async () => {
  api = await openApi();
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  acme = await api.createAccount('acme');
});
after(() => api.close());

async function run(args: string[], token = OPERATOR_TOKEN): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: { OPENTRANSIT_API: base, OPENTRANSIT_TOKEN: token },
    readFile: async () => {
      throw new Error('no files here');
    },
    readStdin: async () => '',
  };
  const program = new Command('opentransit');
  registerClientCommands(program, io);
  const code = await runProgram(program, ['node', 'opentransit', ...args], io);
  return { code, out, err };
}

test('option parsers: ranges, TCP flags, durations, CIDRs', () => {
  assert.deepEqual(parseRange('53', 'dport', 65535), { min: 53, max: 53 });
  assert.deepEqual(parseRange('1024-65535', 'dport', 65535), { min: 1024, max: 65535 });
  assert.throws(() => parseRange('2000-1000', 'dport', 65535), (e: unknown) => e instanceof UsageError && e.field === 'dport' && /backwards/.test(e.message));
  assert.throws(() => parseRange('70000', 'sport', 65535), /up to 65535/);
  assert.throws(() => parseRange('x', 'ttl', 255), (e: unknown) => e instanceof UsageError && e.field === 'ttl');
  assert.deepEqual(parseTcpFlags('syn,!ack'), { set: ['syn'], unset: ['ack'] });
  assert.throws(() => parseTcpFlags('syn,xmas'), (e: unknown) => e instanceof UsageError && e.field === 'tcp-flags');
  assert.deepEqual([parseDuration('90'), parseDuration('90s'), parseDuration('10m'), parseDuration('2h'), parseDuration('1d')], [90, 90, 600, 7200, 86400]);
  assert.throws(() => parseDuration('soon'), (e: unknown) => e instanceof UsageError && e.field === 'expires');
  assert.equal(blocklistCidr('198.51.100.7'), '198.51.100.7/32');
  assert.equal(blocklistCidr('2001:DB8::/32'), '2001:db8::/32');
  assert.throws(() => blocklistCidr('198.51.100.7/24'), (e: unknown) => e instanceof UsageError && e.field === 'cidr' && /host bits/.test(e.message));
  assert.deepEqual(mitigationBody('203.0.113.0/24', { action: 'rate-limit', protocol: 'UDP', dport: '53', pps: '100', expires: '1h' }), {
    prefix: '203.0.113.0/24',
    action: 'rate-limit',
    protocol: 'udp',
    destination_ports: { min: 53, max: 53 },
    rate_limit: { pps: 100 },
    expires_in: 3600,
  });
  assert.equal(
    matchSummary({ id: 'x', prefix: 'p', protocol: 'tcp', destination_ports: { min: 22, max: 22 }, tcp_flags: { set: ['syn'], unset: ['ack'] }, length: { min: 0, max: 100 }, action: 'drop', expires_at: null, description: '', created_at: '' }),
    'tcp dport 22 flags syn,!ack len 0-100',
  );
});

test('blocklist add, list, del through the operator settings', async () => {
  const added = await run(['blocklist', 'add', '198.51.100.7', '--description', 'scanner']);
  assert.equal(added.code, 0, added.err);
  assert.equal(added.out, 'blocked 198.51.100.7/32\n');
  assert.equal((await run(['blocklist', 'add', '198.51.100.7/32'])).out, '198.51.100.7/32 is already in the blocklist\n');
  assert.equal((await run(['blocklist', 'add', '2001:db8:66::/48'])).code, 0);
  assert.equal((await run(['blocklist', 'list'])).out, 'CIDR              DESCRIPTION\n198.51.100.7/32   scanner\n2001:db8:66::/48  -\n');
  const settings = (await api.call('GET', '/v1/settings')).json() as { anycast_endpoints: string[]; blocklist: unknown[] };
  assert.deepEqual(settings.blocklist, [{ cidr: '198.51.100.7/32', description: 'scanner' }, { cidr: '2001:db8:66::/48', description: '' }]);
  assert.deepEqual(settings.anycast_endpoints, ['192.0.2.10'], 'the rest of the settings is kept');
  assert.equal((await run(['blocklist', 'del', '198.51.100.7'])).out, 'unblocked 198.51.100.7/32\n');
  const missing = await run(['blocklist', 'del', '198.51.100.7']);
  assert.equal(missing.code, 1);
  assert.equal(missing.err, 'error: 198.51.100.7/32 is not in the blocklist (field: cidr)\n');
  assert.deepEqual(JSON.parse((await run(['blocklist', 'list', '-o', 'json'])).out), { items: [{ cidr: '2001:db8:66::/48', description: '' }] });
  const refused = await run(['blocklist', 'add', '0.0.0.0/0']);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /^error: \/0 would block every source \(field: blocklist\[1\]\.cidr\)\n$/);
  const tenant = await run(['blocklist', 'list'], acme.token);
  assert.equal(tenant.code, 1);
  assert.match(tenant.err, /needs the operator token/);
});

test('mitigations add, list, del; bad options and bad rules name the field', async () => {
  const added = await run(['mitigations', 'add', '203.0.113.0/24', '--protocol', 'udp', '--dport', '53', '--length', '1000-65535', '--action', 'drop', '--expires', '1h', '--description', 'amplification']);
  assert.equal(added.code, 0, added.err);
  const id = /^added mitigation ([0-9a-f]{32}): 203\.0\.113\.0\/24 udp dport 53 len 1000-65535 → drop\n$/.exec(added.out)?.[1];
  assert.ok(id, added.out);
  const rl = await run(['mitigations', 'add', '203.0.113.10/32', '--protocol', 'tcp', '--tcp-flags', 'syn,!ack', '--action', 'rate-limit', '--pps', '1000', '--burst', '2000', '-o', 'json']);
  assert.equal(rl.code, 0, rl.err);
  assert.deepEqual(JSON.parse(rl.out).rate_limit, { pps: 1000, burst: 2000 });
  const list = await run(['mitigations', 'list']);
  assert.equal(list.code, 0, list.err);
  const lines = list.out.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID +PREFIX +MATCH +ACTION +EXPIRES +MATCHED +DROPPED +DESCRIPTION$/);
  assert.match(lines[1]!, new RegExp(`^${id} +203\\.0\\.113\\.0/24 +udp dport 53 len 1000-65535 +drop +\\S+ \\(in the future\\) +0 +0 +amplification$`));
  assert.match(lines[2]!, /203\.0\.113\.10\/32 +tcp flags syn,!ack +rate-limit 1000\/s burst 2000 +never +0 +0/);

  const badOption = await run(['mitigations', 'add', '203.0.113.0/24', '--dport', '5-1', '--action', 'drop']);
  assert.equal(badOption.code, 1);
  assert.equal(badOption.err, 'error: "5-1": the range is backwards (field: dport)\n');
  const badRule = await run(['mitigations', 'add', '203.0.113.0/24', '--protocol', 'icmp', '--dport', '53', '--action', 'drop']);
  assert.equal(badRule.code, 1);
  assert.match(badRule.err, /^error: needs protocol tcp, udp or any .*\(field: destination_ports\)\n$/);
  const noAction = await run(['mitigations', 'add', '203.0.113.0/24']);
  assert.equal(noAction.code, 1);
  assert.equal(noAction.err, 'error: --action is required: drop or rate-limit (field: action)\n');

  assert.equal((await run(['mitigations', 'del', id])).out, `deleted mitigation ${id}\n`);
  const again = await run(['mitigations', 'del', id]);
  assert.equal(again.code, 1);
  assert.match(again.err, /no mitigation rule with id/);
  assert.match((await run(['mitigations', 'list'], acme.token)).err, /needs the operator token/);
});

test('counters: a table per account, verdict and reason; --account; an account token sees its own', async () => {
  const beta = await api.createAccount('beta');
  const doc = {
    node_id: 'edge-1',
    updated_at: new Date().toISOString(),
    items: [
      { account_id: null, verdict: 'pass', reason: 'pass_non_ip', packets: 2, bytes: 120 },
      { account_id: acme.id, verdict: 'drop', reason: 'drop_blocklist', packets: 5, bytes: 300 },
      { account_id: beta.id, verdict: 'redirect', reason: 'redirect_gre', packets: 7, bytes: 700 },
    ],
    mitigations: {},
  };
  await api.store.txn([], [{ type: 'put', key: keys.nodeCounters('edge-1'), value: JSON.stringify(doc) }]);
  const all = await run(['counters']);
  assert.equal(all.code, 0, all.err);
  const rows = all.out.trimEnd().split('\n').map((l) => l.split(/ {2,}/));
  assert.deepEqual(rows[0], ['ACCOUNT', 'VERDICT', 'REASON', 'PACKETS', 'BYTES']);
  assert.deepEqual(rows.slice(1).sort(), [
    ['-', 'pass', 'pass_non_ip', '2', '120'],
    ['acme', 'drop', 'drop_blocklist', '5', '300'],
    ['beta', 'redirect', 'redirect_gre', '7', '700'],
  ]);
  assert.equal((await run(['counters', '--account', 'acme'])).out, 'ACCOUNT  VERDICT  REASON          PACKETS  BYTES\nacme     drop     drop_blocklist  5        300\n');
  assert.equal((await run(['counters'], acme.token)).out, 'ACCOUNT  VERDICT  REASON          PACKETS  BYTES\nacme     drop     drop_blocklist  5        300\n');
  const foreign = await run(['counters', '--account', 'beta'], acme.token);
  assert.equal(foreign.code, 1);
  assert.equal(foreign.err, 'error: account "beta" not found (field: account)\n');
  assert.deepEqual(JSON.parse((await run(['counters', '--account', beta.id, '-o', 'json'])).out).items, [
    { account_id: beta.id, account: 'beta', verdict: 'redirect', reason: 'redirect_gre', packets: 7, bytes: 700 },
  ]);
});
