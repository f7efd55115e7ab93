// Where the CLI sends what: option/environment precedence, the bearer token, error envelopes and unreachable
// APIs. Verbs run in-process (the real commander program) against a small recording HTTP server on loopback;
// the real API server is exercised end to end in cli-e2e.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { registerClientCommands, runProgram } from '../../src/cli/index.js';
import { resolveSettings, DEFAULT_API_URL, type CliIo } from '../../src/cli/context.js';
import { ApiClient } from '../../src/cli/client.js';
import { ApiError, ConnectionError, UsageError } from '../../src/cli/errors.js';

test('settings: flag beats environment beats default; empty variables count as unset', () => {
  const env = { OPENTRANSIT_API: 'http://env:1', OPENTRANSIT_TOKEN: 'env-token' };
  assert.deepEqual(resolveSettings({}, {}), { apiUrl: DEFAULT_API_URL, token: undefined, output: 'table' });
  assert.deepEqual(resolveSettings({}, env), { apiUrl: 'http://env:1', token: 'env-token', output: 'table' });
  assert.deepEqual(resolveSettings({ api: 'http://flag:2', token: 'flag-token', output: 'json' }, env),
    { apiUrl: 'http://flag:2', token: 'flag-token', output: 'json' });
  assert.deepEqual(resolveSettings({}, { OPENTRANSIT_API: '', OPENTRANSIT_TOKEN: '' }),
    { apiUrl: DEFAULT_API_URL, token: undefined, output: 'table' });
  assert.throws(() => resolveSettings({ output: 'yaml' }, {}), (e: unknown) => e instanceof UsageError && e.field === 'output');
});

test('a malformed --api URL is a usage error naming the field', () => {
  assert.throws(() => new ApiClient({ baseUrl: 'localhost:8080' }), (e: unknown) => e instanceof UsageError && e.field === 'api');
  assert.throws(() => new ApiClient({ baseUrl: 'ftp://x' }), /must use http or https/);
});

// --- a recording server -------------------------------------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}
const seen: Seen[] = [];
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let handler: Handler = (_req, res) => json(res, 200, { items: [] });

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
    handler(req, res, body);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function run(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env,
    readFile: async () => { throw Object.assign(new Error('no files here'), { code: 'ENOENT' }); },
    readStdin: async () => stdin,
  };
  const program = new Command('opentransit');
  registerClientCommands(program, io);
  const code = await runProgram(program, ['node', 'opentransit', ...args], io);
  return { code, out, err };
}

test('--api and --token beat OPENTRANSIT_API and OPENTRANSIT_TOKEN; the token goes as a bearer header', async () => {
  handler = (_req, res) => json(res, 200, { items: [{ id: 'a1', name: 'acme' }] });
  seen.length = 0;
  const fromEnv = await run(['get', 'accounts'], { OPENTRANSIT_API: base, OPENTRANSIT_TOKEN: 'env-token' });
  assert.equal(fromEnv.code, 0, fromEnv.err);
  assert.equal(fromEnv.out, 'ID  NAME\na1  acme\n');
  assert.deepEqual(seen.map((s) => [s.method, s.url, s.authorization]), [['GET', '/v1/accounts', 'Bearer env-token']]);

  seen.length = 0;
  const fromFlags = await run(['get', 'accounts', '--api', base, '--token', 'flag-token', '-o', 'json'],
    { OPENTRANSIT_API: 'http://127.0.0.1:9', OPENTRANSIT_TOKEN: 'env-token' });
  assert.equal(fromFlags.code, 0, fromFlags.err);
  assert.deepEqual(JSON.parse(fromFlags.out), { items: [{ id: 'a1', name: 'acme' }] });
  assert.equal(seen[0]?.authorization, 'Bearer flag-token');

  seen.length = 0;
  const noToken = await run(['--api', base, 'get', 'accounts']);
  assert.equal(noToken.code, 0);
  assert.equal(seen[0]?.authorization, undefined);
});

test('an API error envelope prints as "error: <message> (field: <field>)" with a non-zero exit', async () => {
  handler = (_req, res) => json(res, 400, { error: { code: 'invalid', message: 'name must be 1-63 characters', field: 'name' } });
  const r = await run(['account', 'create', '', '--api', base, '--token', 't']);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(r.err, 'error: name must be 1-63 characters (field: name)\n');
});

test('a 401 without any token says how to give one', async () => {
  handler = (_req, res) => json(res, 401, { error: { code: 'unauthorized', message: 'missing bearer token' } });
  const r = await run(['status', '--api', base]);
  assert.equal(r.code, 1);
  assert.equal(r.err, 'error: missing bearer token (no token given: use --token or OPENTRANSIT_TOKEN)\n');
});

test('a response that is not the error envelope still reads as an error with its HTTP status', async () => {
  handler = (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
  await assert.rejects(new ApiClient({ baseUrl: base }).get('/v1/nodes'),
    (e: unknown) => e instanceof ApiError && e.status === 502 && e.message === 'HTTP 502 Bad Gateway');
});

test('the client keeps a path prefix of --api and escapes ids in paths', async () => {
  handler = (_req, res) => res.writeHead(204).end();
  seen.length = 0;
  await new ApiClient({ baseUrl: `${base}/prefix/` }).delete(`/v1/accounts/${encodeURIComponent('a/b c')}`);
  assert.equal(seen[0]?.url, '/prefix/v1/accounts/a%2Fb%20c');
});

test('an unreachable API is a clear message naming the URL', async () => {
  // A port that was just free: bind, read the number, close, then connect — nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const r = await run(['get', 'accounts'], { OPENTRANSIT_API: url });
  assert.equal(r.code, 1);
  assert.equal(r.err.split('\n').length, 2);
  assert.match(r.err, new RegExp(`^error: cannot reach the OpenTransit API at ${url.replace(/\./g, '\\.')} \\(connection refused\\)`));
  await assert.rejects(new ApiClient({ baseUrl: url }).get('/healthz'), ConnectionError);
});

test('verbs that need an account resolve it by name or id, and require --account when several are visible', async () => {
  const accounts = [{ id: 'a1', name: 'acme' }, { id: 'a2', name: 'globex' }];
  handler = (req, res) => {
    if (req.url === '/v1/accounts') return json(res, 200, { items: accounts });
    if (req.url === '/v1/accounts/a2/prefixes') return json(res, 200, { items: [{ id: 'p1', cidr: '198.18.0.0/24', advertised: false }] });
    json(res, 404, { error: { code: 'not_found', message: `no route ${req.url}` } });
  };
  const env = { OPENTRANSIT_API: base };
  const byName = await run(['get', 'prefixes', '--account', 'globex'], env);
  assert.equal(byName.out, 'ID  CIDR           ADVERTISED\np1  198.18.0.0/24  false\n');
  const byId = await run(['get', 'prefixes', '--account', 'a2'], env);
  assert.equal(byId.out, byName.out);
  const missing = await run(['get', 'prefixes'], env);
  assert.equal(missing.code, 1);
  assert.equal(missing.err, 'error: --account NAME|ID is required: this token sees 2 accounts (acme, globex) (field: account)\n');
  const unknown = await run(['get', 'routes', '--account', 'initech'], env);
  assert.equal(unknown.err, 'error: account "initech" not found (field: account)\n');
});

test('apply -f - reads the document from stdin and sends it to PUT …/config with dry_run', async () => {
  seen.length = 0;
  handler = (req, res) => {
    if (req.url === '/v1/accounts') return json(res, 200, { items: [{ id: 'a1', name: 'acme' }] });
    json(res, 200, { changes: [{ op: 'create', kind: 'prefix', key: '203.0.113.0/24' }], revision: 3 });
  };
  const r = await run(['apply', '-f', '-', '--dry-run'], { OPENTRANSIT_API: base }, 'account: acme\nprefixes:\n  - cidr: 203.0.113.0/24\n');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'account acme:\n+ prefix 203.0.113.0/24\n1 to create, 0 to update, 0 to delete (dry run: nothing stored)\n');
  const put = seen.find((s) => s.method === 'PUT');
  assert.equal(put?.url, '/v1/accounts/a1/config?dry_run=true');
  assert.deepEqual(JSON.parse(put?.body ?? ''), { account: 'acme', prefixes: [{ cidr: '203.0.113.0/24' }] });
});

test('apply names the file when it cannot be read, and stops before calling the API on bad YAML', async () => {
  seen.length = 0;
  const missing = await run(['apply', '-f', 'nope.yaml'], { OPENTRANSIT_API: base });
  assert.equal(missing.err, 'error: cannot read nope.yaml: no such file (field: filename)\n');
  const bad = await run(['apply', '-f', '-'], { OPENTRANSIT_API: base }, 'account: acme\nprefixes: [\n');
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^error: <stdin>:3:1: /);
  assert.equal(seen.length, 0);
});

test('a usage error in a nested verb is returned as an exit code, not a process exit', async () => {
  const r = await run(['account', 'create']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /missing required argument 'name'/);
});
