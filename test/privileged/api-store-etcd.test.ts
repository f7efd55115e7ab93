// `opentransit api --store etcd://…` as an operator runs it for a fleet: the binary starts on a real etcd, an
// account written over HTTP lands in etcd (read back with a store of our own), and a bad spec is refused by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { keys } from '../../src/model/keys.js';
import { openStore } from '../../src/store/open.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const bin = join(import.meta.dirname, '../../src/main.js');
const TOKEN = 'ot-api-store-etcd-test-token';

let etcd: EtcdCluster | undefined;
let dir = '';
const servers: ChildProcess[] = [];

function startApi(args: string[]): Promise<{ url: string; log: () => string }> {
  let log = '';
  const child = spawn(process.execPath, [bin, 'api', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OPENTRANSIT_OPERATOR_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      log += c.toString();
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
      if (url) resolve({ url, log: () => log });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`opentransit api exited with ${code}:\n${log}`)));
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ot-api-etcd-'));
  etcd = await startEtcd({ members: 1 });
});

after(async () => {
  for (const child of servers) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('opentransit api --store etcd://… serves from etcd', async () => {
  const spec = `etcd://${etcd!.endpoints.map((u) => new URL(u).host).join(',')}`;
  const { url } = await startApi(['--store', spec]);
  const res = await fetch(`${url}/v1/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'etcd-backed' }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  const { id } = JSON.parse(body) as { id: string };

  const store = await openStore(spec);
  try {
    const kv = await store.get(keys.account(id));
    assert.ok(kv, `the account ${id} is not in etcd under ${keys.account(id)}`);
  } finally {
    await store.close();
  }
});

test('opentransit api --store with a bad spec names the option and exits', async () => {
  await assert.rejects(startApi(['--store', 'redis://127.0.0.1:6379']), /store spec "redis:[^\n]*unknown store kind/);
});
