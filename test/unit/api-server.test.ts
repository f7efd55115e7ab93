/** The API through a real listening server on 127.0.0.1 (port 0), the operator token's life, and write latency. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { OPERATOR_TOKEN_FILE, parseListen, startApiServer } from '../../src/api/server.js';
import { ACME_CONFIG } from '../support/api-fixture.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ot-api-server-'));
}

async function http(url: string, token: string | undefined, method = 'GET', body?: unknown): Promise<{ status: number; json: any; etag: string | null }> {
  const res = await fetch(url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, etag: res.headers.get('etag') };
}

test('listen addresses', () => {
  assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:1'), { host: 'localhost', port: 1 });
  for (const bad of ['8080', '127.0.0.1', '127.0.0.1:70000', ':8080', '::1:8080', '127.0.0.1:http']) {
    assert.throws(() => parseListen(bad), /expected host:port/, bad);
  }
});

test('first start generates the operator token (printed once, only its hash kept, mode 0600); restarts reuse it', async () => {
  const dir = tempDir();
  try {
    const lines: string[] = [];
    const server = await startApiServer({ listen: '127.0.0.1:0', dataDir: dir, env: {}, print: (l) => lines.push(l), handleSignals: false });
    let token: string;
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(lines.some((l) => l.includes(`listening on ${server.url}`)), lines.join('\n'));
      token = lines.map((l) => l.trim()).find((l) => /^ot_[A-Za-z0-9_-]{43}$/.test(l))!;
      assert.ok(token, `a token was printed: ${lines.join('\n')}`);
      const file = path.join(dir, OPERATOR_TOKEN_FILE);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.readFileSync(file, 'utf8').trim(), createHash('sha256').update(token).digest('hex'));

      assert.deepEqual((await http(`${server.url}/healthz`, undefined)).json, { ok: true });
      assert.equal((await http(`${server.url}/v1/accounts`, undefined)).status, 401);
      const created = await http(`${server.url}/v1/accounts`, token, 'POST', { name: 'acme' });
      assert.equal(created.status, 201);
      const applied = await http(`${server.url}/v1/accounts/${created.json.id}/config`, created.json.token, 'PUT', ACME_CONFIG);
      assert.equal(applied.status, 200);
      assert.equal(applied.json.changes.length, 5);
      assert.equal(applied.etag, `"${applied.json.revision}"`);
      const bad = await http(`${server.url}/v1/accounts/${created.json.id}/gre_tunnels`, created.json.token, 'POST', { name: 'x' });
      assert.equal(bad.status, 400);
      assert.deepEqual(Object.keys(bad.json.error).sort(), ['code', 'field', 'message']);
    } finally {
      await server.close();
    }

    // A restart reads the hash: no new token, the old one still works, the data is still there.
    const again: string[] = [];
    const second = await startApiServer({ listen: '127.0.0.1:0', dataDir: dir, env: {}, print: (l) => again.push(l), handleSignals: false });
    try {
      assert.ok(!again.some((l) => /ot_/.test(l)), again.join('\n'));
      const list = await http(`${second.url}/v1/accounts`, token);
      assert.equal(list.status, 200);
      assert.deepEqual(list.json.items.map((a: { name: string }) => a.name), ['acme']);
    } finally {
      await second.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('OPENTRANSIT_OPERATOR_TOKEN wins: nothing generated, nothing printed but the URL', async () => {
  const dir = tempDir();
  try {
    const lines: string[] = [];
    const server = await startApiServer({
      listen: '127.0.0.1:0',
      dataDir: dir,
      env: { OPENTRANSIT_OPERATOR_TOKEN: 'env-operator-token-0123456789' },
      print: (l) => lines.push(l),
      handleSignals: false,
    });
    try {
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.ok(!fs.existsSync(path.join(dir, OPERATOR_TOKEN_FILE)));
      assert.equal((await http(`${server.url}/v1/settings`, 'env-operator-token-0123456789')).status, 200);
      assert.equal((await http(`${server.url}/v1/settings`, 'something-else')).status, 401);
    } finally {
      await server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt token hash file stops the start with a clear message (and the store is closed)', async () => {
  const dir = tempDir();
  try {
    fs.writeFileSync(path.join(dir, OPERATOR_TOKEN_FILE), 'not a hash\n', { mode: 0o600 });
    await assert.rejects(
      startApiServer({ listen: '127.0.0.1:0', dataDir: dir, env: {}, print: () => {}, handleSignals: false }),
      /does not hold a SHA-256 hex digest/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('write latency over 200 writes through a real server (measured, printed, not asserted)', async (t) => {
  const dir = tempDir();
  try {
    const token = 'latency-operator-token-0123456789';
    const server = await startApiServer({ listen: '127.0.0.1:0', dataDir: dir, env: { OPENTRANSIT_OPERATOR_TOKEN: token }, print: () => {}, handleSignals: false });
    try {
      const acme = (await http(`${server.url}/v1/accounts`, token, 'POST', { name: 'acme' })).json as { id: string; token: string };
      const url = `${server.url}/v1/accounts/${acme.id}/prefixes`;
      const ms: number[] = [];
      for (let i = 0; i < 200; i++) {
        const start = process.hrtime.bigint();
        const res = await http(url, acme.token, 'POST', { cidr: `198.18.${i}.0/24` });
        ms.push(Number(process.hrtime.bigint() - start) / 1e6);
        assert.equal(res.status, 201);
      }
      ms.sort((a, b) => a - b);
      const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
      const mean = (ms.reduce((a, b) => a + b, 0) / ms.length).toFixed(2);
      t.diagnostic(`API write latency over ${ms.length} POST /prefixes (ms): mean ${mean}, p50 ${at(0.5)}, p95 ${at(0.95)}, p99 ${at(0.99)}, max ${at(1)}`);
      const list = await http(url, acme.token);
      assert.equal(list.json.items.length, 200);
    } finally {
      await server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
