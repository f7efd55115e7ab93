/**
 * Real etcd servers for tests: Debian's `etcd` binary on loopback, free ports, data under a temp dir.
 * `startEtcd()` for one member, `startEtcd({ members: 3 })` for a cluster. Members can be stopped (SIGKILL, as
 * a crash) and started again on the same ports and data. `destroy()` kills every member and removes the data;
 * register it in an after-hook so it runs even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EtcdMember {
  readonly name: string;
  /** http://127.0.0.1:PORT */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** The running process, undefined while stopped. */
  process: ChildProcess | undefined;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Client URLs of every member. */
  readonly endpoints: string[];
  /** Kills member i (SIGKILL) and waits until it has exited. */
  stop(i?: number): Promise<void>;
  /** Starts member i again (same ports and data) and waits until it is healthy. */
  start(i?: number): Promise<void>;
  /** The index of the current raft leader (asked of the first running member). */
  leader(): Promise<number>;
  /** Kills every member and removes all data. Safe to call twice. */
  destroy(): Promise<void>;
}

const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';

export async function startEtcd(opts: { members?: number } = {}): Promise<EtcdCluster> {
  const count = opts.members ?? 1;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-etcd-'));
  const ports = await freePorts(count * 2);
  const members: EtcdMember[] = Array.from({ length: count }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: path.join(root, `m${i}`),
    process: undefined,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `ot-test-${process.pid}-${path.basename(root)}`;
  const logs = new Map<EtcdMember, string>();

  const launch = (m: EtcdMember): void => {
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-level', 'error',
      // Short election timings: a 3-member test cluster elects a leader in well under a second.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
    ];
    const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    logs.set(m, '');
    child.stderr?.on('data', (d: Buffer) => logs.set(m, (logs.get(m)! + d.toString()).slice(-4000)));
    child.on('error', (err) => logs.set(m, `${logs.get(m)}\nspawn failed: ${err.message}`));
    m.process = child;
  };

  const waitHealthy = async (m: EtcdMember): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (!m.process || m.process.exitCode !== null || m.process.signalCode !== null) {
        throw new Error(`etcd ${m.name} exited during start-up: ${logs.get(m)}`);
      }
      if (await healthy(m.clientUrl)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd ${m.name} at ${m.clientUrl} not healthy after 20 s: ${logs.get(m)}`);
  };

  const stop = async (i = 0): Promise<void> => {
    const m = members[i];
    if (!m?.process) return;
    const child = m.process;
    m.process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };

  let destroyed = false;
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    stop,
    async start(i = 0) {
      const m = members[i]!;
      if (m.process) return;
      launch(m);
      await waitHealthy(m);
    },
    async leader() {
      // etcd's JSON gateway: the status of a member names the leader's member id and its own.
      const statuses = await Promise.all(members.filter((m) => m.process).map((m) => status(m.clientUrl)));
      const leaderId = statuses[0]?.leader;
      const i = members.findIndex((_, k) => statuses.some((st) => st.memberId === leaderId && st.url === members[k]!.clientUrl));
      if (i < 0) throw new Error(`no leader among ${JSON.stringify(statuses)}`);
      return i;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await Promise.all(members.map((_, i) => stop(i)));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    members.forEach(launch);
    await Promise.all(members.map(waitHealthy));
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}

/** etcd's /health endpoint answers {"health":"true"} once the member serves (has a leader). */
function healthy(clientUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${clientUrl}/health`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

async function status(clientUrl: string): Promise<{ url: string; memberId: string; leader: string }> {
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request(`${clientUrl}/v3/maintenance/status`, { method: 'POST', timeout: 2000 }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => (b += d.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`status of ${clientUrl} timed out`)));
    req.end('{}');
  });
  const j = JSON.parse(body) as { header?: { member_id?: string }; leader?: string };
  if (!j.header?.member_id || !j.leader) throw new Error(`unexpected status from ${clientUrl}: ${body}`);
  return { url: clientUrl, memberId: j.header.member_id, leader: j.leader };
}

/** Ports the kernel hands out as free right now (held together so none is returned twice). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.on('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
