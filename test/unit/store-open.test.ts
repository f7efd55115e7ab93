import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, parseStoreSpec } from '../../src/store/open.js';
import { StoreUnavailableError } from '../../src/store/store.js';

test('parseStoreSpec: lmdb and etcd forms', () => {
  assert.deepEqual(parseStoreSpec('lmdb:/var/lib/opentransit'), { kind: 'lmdb', dir: '/var/lib/opentransit' });
  assert.deepEqual(parseStoreSpec('lmdb:///var/lib/ot'), { kind: 'lmdb', dir: '/var/lib/ot' });
  assert.deepEqual(parseStoreSpec('lmdb:data'), { kind: 'lmdb', dir: 'data' });
  assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:2379'), { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'] });
  assert.deepEqual(parseStoreSpec('etcd://a.example:2379,10.0.0.2:2379,[2001:db8::1]:2379/'), {
    kind: 'etcd',
    endpoints: ['http://a.example:2379', 'http://10.0.0.2:2379', 'http://[2001:db8::1]:2379'],
  });
  assert.deepEqual(parseStoreSpec('etcds://e1:2379'), { kind: 'etcd', endpoints: ['https://e1:2379'] });
});

test('parseStoreSpec: bad specs say what is wrong', () => {
  assert.throws(() => parseStoreSpec(''), /store spec: empty; expected lmdb:DIR or etcd:\/\//);
  assert.throws(() => parseStoreSpec('lmdb:'), /lmdb needs a directory/);
  assert.throws(() => parseStoreSpec('/var/lib/x'), /unknown store kind/);
  assert.throws(() => parseStoreSpec('redis://h:1'), /unknown store kind "redis"/);
  assert.throws(() => parseStoreSpec('etcd:h:2379'), /write etcd:\/\/host:port/);
  assert.throws(() => parseStoreSpec('etcd://'), /no etcd endpoint/);
  assert.throws(() => parseStoreSpec('etcd://h1:2379,h2'), /endpoint 2: "h2" is not host:port/);
  assert.throws(() => parseStoreSpec('etcd://h1:70000'), /endpoint 1: port 70000 is out of range/);
  assert.throws(() => parseStoreSpec('etcd://h 1:2379'), /endpoint 1/);
});

test('openStore: opens the LMDB store a spec names', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-open-'));
  try {
    const s = await openStore(`lmdb:${dir}`);
    assert.equal(s.kind, 'lmdb');
    await s.txn([], [{ type: 'put', key: '/a', value: '1' }]);
    await s.close();
    const again = await openStore(`lmdb://${dir}`, { lmdb: { create: false } });
    assert.equal((await again.get('/a'))?.value, '1');
    await again.close();
    await assert.rejects(openStore(`lmdb:${path.join(dir, 'missing')}`, { lmdb: { create: false } }), StoreUnavailableError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
