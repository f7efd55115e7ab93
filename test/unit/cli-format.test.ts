// Pure formatting of the CLI's human output: tables, diffs, the firewall listing, status, apply reports, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable, renderObjects, cellText } from '../../src/cli/table.js';
import { formatChanges, formatChange, changedFields, summarizeChanges } from '../../src/cli/diff.js';
import { formatFirewall } from '../../src/cli/get.js';
import { formatStatus, formatAge } from '../../src/cli/status.js';
import { formatApplyResult, previewCreates } from '../../src/cli/apply.js';
import { ApiError, ConnectionError, UsageError, formatError } from '../../src/cli/errors.js';

test('renderTable aligns columns on the widest cell and leaves no trailing blanks', () => {
  const out = renderTable(['id', 'cidr', 'advertised'], [
    ['p1', '203.0.113.0/24', 'true'],
    ['prefix-22', '198.18.0.0/15', 'false'],
  ]);
  assert.equal(out, [
    'ID         CIDR            ADVERTISED',
    'p1         203.0.113.0/24  true',
    'prefix-22  198.18.0.0/15   false',
    '',
  ].join('\n'));
  for (const line of out.split('\n')) assert.equal(line, line.trimEnd());
});

test('renderTable: a short last column does not pad, a missing cell is blank', () => {
  const out = renderTable(['a', 'b'], [['x'], ['long-value', 'y']]);
  assert.equal(out, 'A           B\nx\nlong-value  y\n');
});

test('cellText shows absent values as "-", objects as compact JSON, never a line break', () => {
  assert.equal(cellText(undefined), '-');
  assert.equal(cellText(null), '-');
  assert.equal(cellText(''), '-');
  assert.equal(cellText(false), 'false');
  assert.equal(cellText(0), '0');
  assert.equal(cellText({ enabled: true }), '{"enabled":true}');
  assert.equal(cellText('a\n  b'), 'a b');
});

test('renderObjects maps accessors to cells', () => {
  const out = renderObjects([{ header: 'name', value: (r: { n?: string }) => r.n }], [{ n: 'acme' }, {}]);
  assert.equal(out, 'NAME\nacme\n-\n');
});

test('formatChanges prints +, ~ and - lines, and "no changes" for an empty diff', () => {
  assert.equal(formatChanges([]), 'no changes\n');
  const out = formatChanges([
    { op: 'create', kind: 'prefix', key: '203.0.113.0/24', after: { cidr: '203.0.113.0/24', advertised: true } },
    {
      op: 'update', kind: 'route', key: '203.0.113.0/24 via 10.200.0.1',
      before: { id: 'r1', prefix: '203.0.113.0/24', priority: 100 }, after: { id: 'r1', prefix: '203.0.113.0/24', priority: 200 },
    },
    { op: 'delete', kind: 'gre_tunnel', key: 'acme-chi', before: { name: 'acme-chi' } },
  ]);
  assert.equal(out, [
    '+ prefix 203.0.113.0/24',
    '~ route 203.0.113.0/24 via 10.200.0.1 (priority: 100 → 200)',
    '- gre_tunnel acme-chi',
    '',
  ].join('\n'));
});

test('changedFields ignores ids and shows added, removed and nested fields', () => {
  assert.deepEqual(changedFields({ id: 'a', x: 1 }, { id: 'b', x: 1 }), []);
  assert.deepEqual(changedFields({ a: 1 }, { a: 1, b: 'on' }), ['b: (none) → on']);
  assert.deepEqual(changedFields({ hc: { enabled: false } }, { hc: { enabled: true } }), [
    'hc: {"enabled":false} → {"enabled":true}',
  ]);
  assert.deepEqual(changedFields('allow', 'block'), ['allow → block']);
  assert.equal(formatChange({ op: 'update', kind: 'x', key: 'k', before: 'allow', after: 'block' }), '~ x k (allow → block)');
});

test('firewall changes read as what they do, not as their position alone', () => {
  const rule = { id: 'r1', action: 'allow', expression: 'tcp.dstport in {20..21}', description: '', enabled: true };
  assert.equal(formatChange({ op: 'create', kind: 'firewall_rule', key: 'rules[0]', after: rule }),
    '+ firewall_rule rules[0]: allow tcp.dstport in {20..21}');
  assert.equal(formatChange({ op: 'delete', kind: 'firewall_rule', key: 'rules[2]', before: rule }),
    '- firewall_rule rules[2]: allow tcp.dstport in {20..21}');
  assert.equal(formatChange({ op: 'update', kind: 'firewall_rule', key: 'rules[0]', before: rule, after: { ...rule, action: 'block' } }),
    '~ firewall_rule rules[0] (action: allow → block)');
  assert.equal(formatChange({
    op: 'update', kind: 'firewall', key: 'firewall', before: { default_action: 'allow' }, after: { default_action: 'block' },
  }), '~ firewall (default_action: allow → block)');
});

test('summarizeChanges counts each kind of change, planned or done', () => {
  const changes = [
    { op: 'create' as const, kind: 'prefix', key: 'a' },
    { op: 'create' as const, kind: 'route', key: 'b' },
    { op: 'delete' as const, kind: 'route', key: 'c' },
  ];
  assert.equal(summarizeChanges(changes), '2 to create, 0 to update, 1 to delete');
  assert.equal(summarizeChanges(changes, true), '2 created, 0 updated, 1 deleted');
});

test('optional columns appear only when some row has a value', () => {
  const columns = [
    { header: 'name', value: (r: { n: string; d?: string }) => r.n },
    { header: 'description', value: (r: { n: string; d?: string }) => r.d, optional: true },
  ];
  assert.equal(renderObjects(columns, [{ n: 'a', d: '' }, { n: 'b' }]), 'NAME\na\nb\n');
  assert.equal(renderObjects(columns, [{ n: 'a', d: 'ftp' }, { n: 'b' }]), 'NAME  DESCRIPTION\na     ftp\nb     -\n');
});

test('formatFirewall lists the default action, then the rules in order', () => {
  const out = formatFirewall({
    default_action: 'block',
    rules: [
      { action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}' },
      { action: 'block', expression: 'udp' },
    ],
  });
  assert.equal(out, [
    'default action: block',
    '#  ACTION  EXPRESSION',
    '1  allow   ip.dst == 203.0.113.100 and tcp.dstport in {20..21}',
    '2  block   udp',
    '',
  ].join('\n'));
  assert.equal(formatFirewall({ default_action: 'allow', rules: [] }), 'default action: allow\nno rules\n');
  // Stored rules carry every field; empty descriptions and all-enabled rules add no columns.
  const stored = formatFirewall({
    default_action: 'block',
    rules: [
      { id: 'r1', action: 'allow', expression: 'tcp', description: '', enabled: true },
      { id: 'r2', action: 'block', expression: 'udp', description: 'no udp', enabled: false },
    ],
  });
  assert.equal(stored, [
    'default action: block',
    '#  ACTION  ENABLED  DESCRIPTION  EXPRESSION',
    '1  allow   true     -            tcp',
    '2  block   false    no udp       udp',
    '',
  ].join('\n'));
});

test('formatStatus shows each node and each account state on it, with names for ids', () => {
  const now = Date.parse('2026-11-22T19:00:10Z');
  const out = formatStatus([
    {
      id: 'edge-1', applied_revision: 42, last_reconcile_at: '2026-11-22T19:00:00Z',
      host: { state: 'ok' }, store: { kind: 'lmdb', reachable: true },
      accounts: { a1: { name: 'acme', state: 'ok', applied_revision: 42 } },
    },
    {
      id: 'edge-2', applied_revision: 40, last_reconcile_at: '2026-11-22T18:00:10Z',
      host: { state: 'error', error: 'nft: syntax error' }, store: { kind: 'etcd', reachable: false },
      accounts: { a1: { name: '', state: 'error', error: 'firewall: too large' } },
    },
    { id: 'edge-3', applied_revision: 41, last_reconcile_at: '2026-11-22T18:59:00Z', host: { state: 'ok' }, stale: true, age_ms: 70_000 },
    { id: 'edge-4', applied_revision: 42, last_reconcile_at: '2026-11-22T19:00:00Z', host: { state: 'ok' }, alive: false, stale: true, age_ms: 2_000, heartbeat_ms: 5000 },
  ], [{ id: 'a1', name: 'acme' }], now);
  assert.equal(out, [
    'NODE    APPLIED_REVISION  LAST_RECONCILE                      RESULT',
    'edge-1  42                2026-11-22T19:00:00.000Z (10s ago)  ok',
    'edge-2  40                2026-11-22T18:00:10.000Z (1h ago)   error: nft: syntax error (store unreachable)',
    'edge-3  41                2026-11-22T18:59:00.000Z (1m ago)   STALE: no report for 1m',
    'edge-4  42                2026-11-22T19:00:00.000Z (10s ago)  STALE: liveness lease expired (last report 2s ago)',
    '',
    'NODE    ACCOUNT  STATE  REVISION  MESSAGE',
    'edge-1  acme     ok     42        -',
    'edge-2  acme     error  -         firewall: too large',
    '',
  ].join('\n'));
});

test('formatAge reads like a person would say it', () => {
  assert.equal(formatAge(0), '0s ago');
  assert.equal(formatAge(59_999), '59s ago');
  assert.equal(formatAge(60_000), '1m ago');
  assert.equal(formatAge(3 * 86_400_000), '3d ago');
  assert.equal(formatAge(-1), 'in the future');
});

test('formatApplyResult: created account shows its token once, then the diff and the tally', () => {
  const out = formatApplyResult({
    account: { id: 'a1', name: 'acme' }, token: 'tok-123', dryRun: false, revision: 7,
    changes: [{ op: 'create', kind: 'prefix', key: '203.0.113.0/24' }],
  });
  assert.equal(out, [
    'account acme (created, id a1):',
    '  token (shown only this once): tok-123',
    '+ prefix 203.0.113.0/24',
    '1 created, 0 updated, 0 deleted at revision 7',
    '',
  ].join('\n'));
  assert.equal(formatApplyResult({ account: { id: 'a1', name: 'acme' }, dryRun: false, changes: [], revision: 7 }),
    'account acme:\nno changes\n');
  assert.match(formatApplyResult({ account: { id: 'a1', name: 'acme' }, dryRun: true, changes: [] }),
    /^account acme:\nno changes\n0 to create, 0 to update, 0 to delete \(dry run: nothing stored\)\n$/);
});

test('a dry run for a missing account previews the document as creations', () => {
  const changes = previewCreates({
    account: 'acme',
    prefixes: [{ cidr: '203.0.113.0/24' }],
    gre_tunnels: [{ name: 'acme-chi' }],
    routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1' }],
    firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp' }] },
  });
  assert.equal(formatChanges(changes), [
    '+ prefix 203.0.113.0/24',
    '+ gre_tunnel acme-chi',
    '+ route 203.0.113.0/24 via 10.200.0.1',
    '+ firewall_rule rules[0]: allow tcp',
    '~ firewall (default_action: allow → block)',
    '',
  ].join('\n'));
  // An allow-all firewall is what a new account has already: nothing to show.
  assert.deepEqual(previewCreates({ account: 'a', firewall: { default_action: 'allow' } }), []);
  const out = formatApplyResult({ account: { id: '', name: 'acme' }, dryRun: true, accountMissing: true, changes });
  assert.match(out, /^account acme does not exist yet; apply would create it with:\n\+ prefix 203\.0\.113\.0\/24\n/);
  assert.match(out, /dry run: nothing stored/);
});

test('formatError: API errors name their field; connection errors name the URL', () => {
  assert.equal(formatError(new ApiError(400, 'invalid', 'must be a CIDR', 'prefixes[0].cidr')),
    'error: must be a CIDR (field: prefixes[0].cidr)');
  assert.equal(formatError(new ApiError(404, 'not_found', 'no such account')), 'error: no such account');
  // The API's messages begin with the field: it is not said twice.
  assert.equal(formatError(new ApiError(400, 'invalid', 'prefixes[0].cidr: host bits must be zero', 'prefixes[0].cidr')),
    'error: host bits must be zero (field: prefixes[0].cidr)');
  assert.equal(formatError(new UsageError('bad', 'kind')), 'error: bad (field: kind)');
  assert.match(formatError(new ConnectionError('http://127.0.0.1:8080', 'connection refused')),
    /^error: cannot reach the OpenTransit API at http:\/\/127\.0\.0\.1:8080 \(connection refused\)/);
  assert.equal(formatError('boom'), 'error: boom');
});
