// End to end: the compiled `bin/opentransit` (run `make ts` first) against a real API server that the same
// binary starts (`opentransit api --listen 127.0.0.1:0 --data-dir TMP`), exactly as a user would type it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));
const bin = join(root, 'bin/opentransit');
const acmeFile = join(root, 'examples/acme.yaml');
const OPERATOR_TOKEN = 'e2e-operator-token-0123456789abcdef';

let server: ChildProcess | undefined;
let serverLog = '';
let dir = '';
let api = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any OPENTRANSIT_* of the person running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OPENTRANSIT_')) env[k] = v;
  return { ...env, ...extra };
}

function cli(args: string[], opts: { token?: string | null; stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const token = opts.token === undefined ? OPERATOR_TOKEN : opts.token;
  const env = cleanEnv({ OPENTRANSIT_API: api, ...(token === null ? {} : { OPENTRANSIT_TOKEN: token }), ...opts.env });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

async function ok(args: string[], opts?: Parameters<typeof cli>[1]): Promise<string> {
  const r = await cli(args, opts);
  assert.equal(r.code, 0, `opentransit ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[], opts?: Parameters<typeof cli>[1]): Promise<string> {
  const r = await cli(args, opts);
  assert.notEqual(r.code, 0, `opentransit ${args.join(' ')} should have failed:\n${r.stdout}`);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one error line expected, got:\n${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  return r.stderr;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Starts `opentransit api` on a port the kernel picks and resolves to the URL the server prints. */
async function startServer(): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'ot-cli-e2e-'));
  server = spawn(process.execPath, [bin, 'api', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
    env: cleanEnv({ OPENTRANSIT_OPERATOR_TOKEN: OPERATOR_TOKEN }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise<string>((resolve, reject) => {
    const onData = (c: Buffer): void => {
      serverLog += c.toString();
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog)?.[1];
      if (url) resolve(url);
    };
    server?.stdout?.on('data', onData);
    server?.stderr?.on('data', onData);
    server?.once('error', reject);
    server?.once('exit', (code) => reject(new Error(`opentransit api exited with ${code}:\n${serverLog}`)));
  });
}

before(async () => {
  assert.ok(existsSync(join(root, 'dist/src/main.js')), 'dist/ is missing: run `make ts` before the CLI end-to-end tests');
  api = await startServer();
  // acme.yaml's edge endpoint must be one of the operator's anycast endpoints.
  assert.match(await ok(['settings', 'set', '--anycast', '192.0.2.10,192.0.2.11']), /anycast_endpoints\s+192\.0\.2\.10 192\.0\.2\.11/);
});

test('settings get shows the anycast endpoints; set refuses a bad address naming the field', async () => {
  const s = JSON.parse(await ok(['settings', 'get', '-o', 'json'])) as { anycast_endpoints: string[] };
  assert.deepEqual(s.anycast_endpoints, ['192.0.2.10', '192.0.2.11']);
  const err = await fails(['settings', 'set', '--anycast', '10.0.0.1']);
  assert.match(err, /anycast_endpoints\[0\]/);
  assert.match(await ok(['settings', 'get']), /anycast_endpoints\s+192\.0\.2\.10 192\.0\.2\.11/);
});

after(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await gone;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let acmeToken = '';

test('status before any agent reported says so', async () => {
  assert.equal(await ok(['status']), 'no nodes have reported yet\n');
});

test('account create prints the token alone on stdout; get accounts lists the account', async () => {
  const r = await cli(['account', 'create', 'globex']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\S{16,}\n$/);
  assert.match(r.stderr, /created account globex \(id [0-9a-f]{32}\)/);
  const table = await ok(['get', 'accounts']);
  assert.match(table, /^ID\s+NAME/);
  assert.match(table, /\bglobex\b/);
  const listed = JSON.parse(await ok(['get', 'accounts', '-o', 'json'])) as { items: Array<{ name: string }> };
  assert.deepEqual(listed.items.map((a) => a.name), ['globex']);
  // The new token works, and sees its own account only.
  const own = JSON.parse(await ok(['-o', 'json', 'get', 'accounts'], { token: r.stdout.trim() })) as { items: Array<{ name: string }> };
  assert.deepEqual(own.items.map((a) => a.name), ['globex']);
});

test('apply --dry-run for an account that does not exist creates nothing', async () => {
  const out = await ok(['apply', '-f', acmeFile, '--dry-run']);
  assert.match(out, /^account acme does not exist yet; apply would create it with:\n/);
  assert.match(out, /^\+ prefix 203\.0\.113\.0\/24$/m);
  const listed = JSON.parse(await ok(['get', 'accounts', '-o', 'json'])) as { items: Array<{ name: string }> };
  assert.ok(!listed.items.some((a) => a.name === 'acme'));
});

test('apply -f examples/acme.yaml creates acme (printing its token once) and prints the diff', async () => {
  const out = await ok(['apply', '-f', acmeFile]);
  const lines = out.split('\n');
  assert.match(lines[0] ?? '', /^account acme \(created, id [0-9a-f]{32}\):$/);
  const token = /^ {2}token \(shown only this once\): (\S+)$/.exec(lines[1] ?? '');
  assert.ok(token?.[1], out);
  acmeToken = token[1];
  assert.deepEqual(lines.slice(2), [
    '+ prefix 203.0.113.0/24',
    '+ gre_tunnel acme-chi',
    '+ route 203.0.113.0/24 via 10.200.0.1',
    '+ firewall_rule rules[0]: allow ip.dst == 203.0.113.100 and tcp.dstport in {20..21}',
    '~ firewall (default_action: allow → block)',
    lines.at(-2),
    '',
  ]);
  assert.match(lines.at(-2) ?? '', /^4 created, 1 updated, 0 deleted at revision \d+$/);
});

test('applying the same file again changes nothing', async () => {
  assert.equal(await ok(['apply', '-f', acmeFile]), 'account acme:\nno changes\n');
});

test('get lists what was applied, as tables and as the API\'s JSON', async () => {
  const prefixes = await ok(['get', 'prefixes', '--account', 'acme']);
  assert.match(prefixes, /^ID\s+CIDR\s+ADVERTISED\n[0-9a-f]{32}\s+203\.0\.113\.0\/24\s+true\n$/);
  const tunnels = JSON.parse(await ok(['get', 'tunnels', '--account', 'acme', '-o', 'json'])) as { items: Array<Record<string, unknown>> };
  assert.equal(tunnels.items.length, 1);
  assert.equal(tunnels.items[0]?.name, 'acme-chi');
  assert.equal(tunnels.items[0]?.customer_gre_endpoint, '198.51.100.2');
  const routes = JSON.parse(await ok(['get', 'routes', '--account', 'acme', '-o', 'json'])) as { items: Array<Record<string, unknown>> };
  assert.deepEqual(routes.items.map((r) => [r.prefix, r.nexthop, r.priority]), [['203.0.113.0/24', '10.200.0.1', 100]]);
  const firewall = await ok(['get', 'firewall', '--account', 'acme']);
  assert.equal(firewall, [
    'default action: block',
    '#  ACTION  EXPRESSION',
    '1  allow   ip.dst == 203.0.113.100 and tcp.dstport in {20..21}',
    '',
  ].join('\n'));
});

test("an account token implies its own account; another account's name is not found", async () => {
  assert.ok(acmeToken);
  const prefixes = JSON.parse(await ok(['get', 'prefixes', '-o', 'json'], { token: acmeToken })) as { items: Array<{ cidr: string }> };
  assert.deepEqual(prefixes.items.map((p) => p.cidr), ['203.0.113.0/24']);
  assert.match(await fails(['get', 'prefixes', '--account', 'globex'], { token: acmeToken }), /account "globex" not found/);
  // With the operator token, several accounts are visible: the verb must be told which.
  assert.match(await fails(['get', 'routes']), /--account NAME\|ID is required/);
});

const changedAcme = (priority: number): string => `account: acme
prefixes:
  - cidr: 203.0.113.0/24
    advertised: true
gre_tunnels:
  - name: acme-chi
    customer_gre_endpoint: 198.51.100.2
    edge_gre_endpoint: 192.0.2.10
    interface_address: 10.200.0.0/31
routes:
  - prefix: 203.0.113.0/24
    nexthop: 10.200.0.1
    priority: ${priority}
firewall:
  default_action: block
  rules:
    - action: allow
      expression: ip.dst == 203.0.113.100 and tcp.dstport in {20..21}
`;

test('--dry-run shows an update without storing it; the real apply stores it', async () => {
  const dry = await ok(['apply', '-f', '-', '--dry-run'], { stdin: changedAcme(200) });
  assert.equal(dry, [
    'account acme:',
    '~ route 203.0.113.0/24 via 10.200.0.1 (priority: 100 → 200)',
    '0 to create, 1 to update, 0 to delete (dry run: nothing stored)',
    '',
  ].join('\n'));
  const stillOld = JSON.parse(await ok(['get', 'routes', '--account', 'acme', '-o', 'json'])) as { items: Array<{ priority: number }> };
  assert.equal(stillOld.items[0]?.priority, 100);
  const applied = await ok(['apply', '-f', '-'], { stdin: changedAcme(200) });
  assert.match(applied, /^account acme:\n~ route 203\.0\.113\.0\/24 via 10\.200\.0\.1 \(priority: 100 → 200\)\n0 created, 1 updated, 0 deleted at revision \d+\n$/);
  const now = JSON.parse(await ok(['get', 'routes', '--account', 'acme', '-o', 'json'])) as { items: Array<{ priority: number }> };
  assert.equal(now.items[0]?.priority, 200);
});

test('a file with several documents applies each in order; -o json reports them all', async () => {
  const file = join(dir, 'two.yaml');
  writeFileSync(file, `${changedAcme(100)}---\naccount: initech\nprefixes:\n  - cidr: 198.18.0.0/24\n`);
  const out = JSON.parse(await ok(['apply', '-f', file, '-o', 'json'])) as {
    results: Array<{ account: { name: string }; token?: string; changes: Array<{ op: string; kind: string; key: string }> }>;
  };
  assert.deepEqual(out.results.map((r) => r.account.name), ['acme', 'initech']);
  assert.deepEqual(out.results[0]?.changes.map((c) => [c.op, c.kind, c.key]), [['update', 'route', '203.0.113.0/24 via 10.200.0.1']]);
  assert.ok(out.results[1]?.token, 'initech was created and its token returned');
  assert.deepEqual(out.results[1]?.changes.map((c) => [c.op, c.kind, c.key]), [['create', 'prefix', '198.18.0.0/24']]);
});

test('bad YAML is reported with file, line and column, and nothing is sent', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'account: acme\nprefixes:\n  - cidr: 203.0.113.0/24\n   advertised: true\n');
  const err = await fails(['apply', '-f', file]);
  assert.match(err, new RegExp(`^error: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:\\d+: `));
});

test('an invalid document is refused by the API, naming the field', async () => {
  const err = await fails(['apply', '-f', '-'], { stdin: 'account: acme\nprefixes:\n  - cidr: 203.0.113.7/24\n' });
  assert.match(err, /\(field: prefixes\[0\]\.cidr\)\n$/);
});

test('a wrong token is refused with the API\'s message and a non-zero exit', async () => {
  assert.match(await fails(['get', 'accounts'], { token: 'not-a-real-token' }), /^error: .+/);
  assert.match(await fails(['get', 'accounts'], { token: null }), /no token given: use --token or OPENTRANSIT_TOKEN/);
  // An account token cannot create accounts.
  assert.match(await fails(['account', 'create', 'hooli'], { token: acmeToken }), /^error: /);
});

test('delete removes objects by natural key or id, and accounts by name', async () => {
  const routes = JSON.parse(await ok(['get', 'routes', '--account', 'acme', '-o', 'json'])) as { items: Array<{ id: string }> };
  const rid = routes.items[0]?.id ?? '';
  assert.equal(await ok(['delete', 'route', rid, '--account', 'acme']), `deleted route ${rid} from account acme\n`);
  assert.match(await ok(['delete', 'tunnel', 'acme-chi', '--account', 'acme']), /^deleted tunnel acme-chi \(id [0-9a-f]{32}\) from account acme\n$/);
  assert.match(await ok(['delete', 'prefix', '203.0.113.0/24', '--account', 'acme']), /^deleted prefix 203\.0\.113\.0\/24 /);
  assert.equal(await ok(['get', 'prefixes', '--account', 'acme']), 'no prefixes in account acme\n');
  assert.match(await fails(['delete', 'tunnel', 'acme-chi', '--account', 'acme']), /tunnel "acme-chi" not found in account acme/);
  assert.match(await ok(['delete', 'account', 'globex']), /^deleted account globex \(id [0-9a-f]{32}\)\n$/);
  const listed = JSON.parse(await ok(['get', 'accounts', '-o', 'json'])) as { items: Array<{ name: string }> };
  assert.deepEqual(listed.items.map((a) => a.name).sort(), ['acme', 'initech']);
});

test('an API that is not there is named in the error', async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  const err = await fails(['get', 'accounts', '--api', url]);
  assert.ok(err.startsWith(`error: cannot reach the OpenTransit API at ${url} (connection refused)`), err);
});

test('--help lists the client verbs and the daemon verbs; unknown verbs fail', async () => {
  const help = await ok(['--help']);
  for (const verb of ['apply', 'get', 'delete', 'account', 'status', 'api']) assert.match(help, new RegExp(`^  ${verb}\\b`, 'm'));
  const r = await cli(['frobnicate']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: unknown command 'frobnicate'/);
});
