/** The lab's etcd cluster plan (src/lab/etcd.ts): pure parts, and free-port picking on loopback. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { etcdMemberArgv, etcdStoreSpec, pickLoopbackPorts, planEtcdCluster } from '../../src/lab/etcd.js';
import { parseStoreSpec } from '../../src/store/open.js';

const plan = () => planEtcdCluster({ root: '/run/x/etcd', names: ['etcd1', 'etcd2', 'etcd3'], ports: [21001, 21002, 21003, 21004, 21005, 21006], token: 'otl-x-1' });

test('plan: member i gets ports 2i (client) and 2i+1 (peer) on 127.0.0.1, data in root/<name>', () => {
  assert.deepEqual(plan().members[1], { name: 'etcd2', clientUrl: 'http://127.0.0.1:21003', peerUrl: 'http://127.0.0.1:21004', dataDir: '/run/x/etcd/etcd2' });
});

test('argv: the whole initial cluster and the token, binary first, no shell', () => {
  const p = plan();
  const argv = etcdMemberArgv(p, p.members[0]!, '/usr/bin/etcd');
  assert.equal(argv[0], '/usr/bin/etcd');
  const flag = (f: string) => argv[argv.indexOf(f) + 1];
  assert.equal(flag('--name'), 'etcd1');
  assert.equal(flag('--data-dir'), '/run/x/etcd/etcd1');
  assert.equal(flag('--listen-client-urls'), 'http://127.0.0.1:21001');
  assert.equal(flag('--initial-advertise-peer-urls'), 'http://127.0.0.1:21002');
  assert.equal(flag('--initial-cluster'), 'etcd1=http://127.0.0.1:21002,etcd2=http://127.0.0.1:21004,etcd3=http://127.0.0.1:21006');
  assert.equal(flag('--initial-cluster-token'), 'otl-x-1');
});

test('store spec: every client URL, and the store parser reads it back', () => {
  const spec = etcdStoreSpec(plan());
  assert.equal(spec, 'etcd://127.0.0.1:21001,127.0.0.1:21003,127.0.0.1:21005');
  assert.deepEqual(parseStoreSpec(spec), { kind: 'etcd', endpoints: ['http://127.0.0.1:21001', 'http://127.0.0.1:21003', 'http://127.0.0.1:21005'] });
});

test('plan: bad input is refused with the reason', () => {
  assert.throws(() => planEtcdCluster({ root: '/r', names: ['a', 'a'], ports: [1, 2, 3, 4], token: 't' }), /unique/);
  assert.throws(() => planEtcdCluster({ root: '/r', names: ['a'], ports: [1], token: 't' }), /need 2 ports/);
  assert.throws(() => planEtcdCluster({ root: '/r', names: ['A;b'], ports: [1, 2], token: 't' }), /member name/);
  assert.throws(() => planEtcdCluster({ root: '/r', names: ['a'], ports: [1, 2], token: 'a b' }), /token/);
});

test('free ports: distinct, outside the ephemeral range, and bindable right after', async () => {
  const ports = await pickLoopbackPorts(6);
  assert.equal(new Set(ports).size, 6);
  const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  if (ephemeralLow - 20000 >= 1000) for (const p of ports) assert.ok(p >= 20000 && p < ephemeralLow, `port ${p} outside 20000..${ephemeralLow - 1}`);
  const servers = await Promise.all(ports.map((port) => new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer().once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  })));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});
