/**
 * The etcd store's retry rules, against an HTTP/2 server that accepts gRPC requests and never answers (so a
 * request certainly reached "etcd" but its outcome is unknown). No etcd needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { openEtcdStore } from '../../src/store/etcd.js';
import { StoreUnavailableError } from '../../src/store/store.js';

async function silentGrpcServer(): Promise<{ port: number; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const streams: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    paths.push(String(headers[':path']));
    streams.push(stream);
    stream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    paths,
    close: async () => {
      for (const s of streams) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test('etcd store: a txn whose outcome is unknown is not re-sent; a read is retried', async () => {
  const srv = await silentGrpcServer();
  const store = await openEtcdStore([`127.0.0.1:${srv.port}`], { requireConnection: false, callTimeoutMs: 300 });
  try {
    await assert.rejects(store.txn([], [{ type: 'put', key: '/a', value: '1' }]), (err: Error) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.match(err.message, /may or may not have been applied/);
      return true;
    });
    assert.deepEqual(srv.paths, ['/etcdserverpb.KV/Txn']);

    srv.paths.length = 0;
    await assert.rejects(store.get('/a'), StoreUnavailableError);
    assert.ok(srv.paths.length > 1, `a read is retried (${srv.paths.length} attempts)`);
    assert.ok(srv.paths.every((p) => p === '/etcdserverpb.KV/Range'));
  } finally {
    await store.close();
    await srv.close();
  }
});
