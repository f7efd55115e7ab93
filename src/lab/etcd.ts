/**
 * etcd clusters on loopback for the lab (`store: etcd`) and the tests (test/support/etcd.ts): Debian's `etcd`
 * binary (3.4), one process per member, client and peer URLs on 127.0.0.1, each member's data in its own
 * directory. Who runs the processes is the caller's choice (an EtcdProcessControl): the lab starts detached,
 * recorded lab processes (processes.ts); the tests start plain child processes.
 *
 * Ports: picked outside the kernel's ephemeral range (ip_local_port_range) and probed free by binding them, so
 * neither another listener nor the source port of some outgoing connection holds them when etcd binds. Between
 * the probe and etcd's bind another process may still take one: a member that exits with "address already in use"
 * during start-up makes startEtcdCluster start the whole cluster again on fresh ports (the initial cluster names
 * every member's peer URL, so all members move together).
 *
 * A member restarted on its data directory rejoins with the identity it has there: etcd ignores the
 * --initial-cluster* flags once the data directory holds a member, so the same argv serves first start and restart.
 */
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export const ETCD_BIN_ENV = 'ETCD_BIN';

/** The etcd binary: $ETCD_BIN, else `etcd` on the PATH (Debian's etcd-server). */
export function etcdBinary(env: Record<string, string | undefined> = process.env): string {
  const v = env[ETCD_BIN_ENV];
  return v !== undefined && v !== '' ? v : 'etcd';
}

export interface EtcdMemberPlan {
  name: string;
  /** http://127.0.0.1:PORT */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

export interface EtcdClusterPlan {
  /** --initial-cluster-token: unique per cluster, so members of two clusters never join each other. */
  token: string;
  members: EtcdMemberPlan[];
}

const MEMBER_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

/** The plan of a cluster: member i gets ports[2i] (client) and ports[2i+1] (peer), data in root/<name>. Pure. */
export function planEtcdCluster(o: { root: string; names: readonly string[]; ports: readonly number[]; token: string }): EtcdClusterPlan {
  if (o.names.length === 0) throw new Error('an etcd cluster needs at least one member');
  if (o.ports.length !== 2 * o.names.length) throw new Error(`need ${2 * o.names.length} ports for ${o.names.length} members, got ${o.ports.length}`);
  if (new Set(o.names).size !== o.names.length) throw new Error(`etcd member names must be unique: ${o.names.join(', ')}`);
  for (const n of o.names) if (!MEMBER_NAME_RE.test(n)) throw new Error(`etcd member name ${JSON.stringify(n)}: use [a-z0-9-], starting with a letter`);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(o.token)) throw new Error(`etcd cluster token ${JSON.stringify(o.token)}: use [A-Za-z0-9._-]`);
  return {
    token: o.token,
    members: o.names.map((name, i) => ({
      name,
      clientUrl: `http://127.0.0.1:${o.ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${o.ports[2 * i + 1]}`,
      dataDir: path.join(o.root, name),
    })),
  };
}

/** The command line of one member (binary first). Pure. */
export function etcdMemberArgv(cluster: EtcdClusterPlan, m: EtcdMemberPlan, bin = etcdBinary()): string[] {
  return [
    bin,
    '--name', m.name,
    '--data-dir', m.dataDir,
    '--listen-client-urls', m.clientUrl,
    '--advertise-client-urls', m.clientUrl,
    '--listen-peer-urls', m.peerUrl,
    '--initial-advertise-peer-urls', m.peerUrl,
    '--initial-cluster', cluster.members.map((x) => `${x.name}=${x.peerUrl}`).join(','),
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', cluster.token,
    '--logger', 'zap',
    '--log-level', 'warn',
    // Short election timings: a loopback cluster elects a leader (again) in well under a second.
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
  ];
}

/** The store spec every process of the cluster's users takes: `etcd://127.0.0.1:P1,127.0.0.1:P2,…`. Pure. */
export function etcdStoreSpec(cluster: EtcdClusterPlan): string {
  return `etcd://${cluster.members.map((m) => new URL(m.clientUrl).host).join(',')}`;
}

// --- ports -------------------------------------------------------------------------------------------------------

const DEFAULT_EPHEMERAL = { low: 32768, high: 60999 };
/** Below this we never pick (well-known and registered services cluster there). */
const PICK_FLOOR = 20000;

async function ephemeralRange(): Promise<{ low: number; high: number }> {
  try {
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return { low: low!, high: high! };
  } catch {
    // not Linux, or no procfs: assume the kernel default
  }
  return DEFAULT_EPHEMERAL;
}

function listenOn(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

/**
 * `n` distinct loopback TCP ports that are free now: random ports between 20000 and the start of the ephemeral
 * range (the kernel never hands those out to outgoing connections), each held open by a probe until all are
 * found. When that band is too small (an unusual ip_local_port_range), the kernel's own choice (port 0).
 */
export async function pickLoopbackPorts(n: number): Promise<number[]> {
  const { low } = await ephemeralRange();
  const band = low - PICK_FLOOR;
  const held: net.Server[] = [];
  try {
    const ports = new Set<number>();
    for (let tries = 0; ports.size < n && band >= 1000 && tries < n * 50; tries++) {
      const port = PICK_FLOOR + Math.floor(Math.random() * band);
      if (ports.has(port)) continue;
      const s = await listenOn(port);
      if (!s) continue;
      held.push(s);
      ports.add(port);
    }
    while (ports.size < n) {
      const s = await listenOn(0);
      if (!s) throw new Error('cannot bind a loopback TCP port');
      held.push(s);
      ports.add((s.address() as net.AddressInfo).port);
    }
    return [...ports];
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

// --- health ------------------------------------------------------------------------------------------------------

/**
 * What a member's client URL answers: 'healthy' (it serves, with a leader); 'no-quorum' (it accepts the connection
 * but says it is unhealthy, or does not answer in time: a member without a quorum has no leader, and one restarted
 * alone does not even serve until it could publish itself to the cluster); 'down' (connection refused).
 */
export type EtcdHealth = 'healthy' | 'no-quorum' | 'down';

export function etcdHealth(clientUrl: string, timeoutMs = 1000): Promise<EtcdHealth> {
  return new Promise((resolve) => {
    const req = http.get(`${clientUrl}/health`, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && /"health"\s*:\s*"true"/.test(body) ? 'healthy' : 'no-quorum'));
      res.on('error', () => resolve('down'));
    });
    req.on('error', () => resolve('down'));
    req.on('timeout', () => {
      req.destroy();
      resolve('no-quorum');
    });
  });
}

/** True when something accepts TCP connections on the member's client URL (its listener is bound). */
export function etcdListening(clientUrl: string, timeoutMs = 1000): Promise<boolean> {
  const u = new URL(clientUrl);
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port), timeout: timeoutMs });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.once('timeout', () => done(false));
  });
}

/** One member's view of the cluster (etcd's JSON gateway): its own member id and the leader's. */
export async function etcdMemberStatus(clientUrl: string): Promise<{ memberId: string; leader: string }> {
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
  if (!j.header?.member_id || !j.leader || j.leader === '0') throw new Error(`no leader known to ${clientUrl}: ${body}`);
  return { memberId: j.header.member_id, leader: j.leader };
}

/** The index (in `members`) of the raft leader, as the members that answer see it. */
export async function etcdLeaderIndex(members: readonly Pick<EtcdMemberPlan, 'clientUrl'>[]): Promise<number> {
  const statuses = (await Promise.all(members.map((m) => etcdMemberStatus(m.clientUrl).catch(() => undefined)))).map((s, i) => (s ? { ...s, i } : undefined));
  const known = statuses.filter((s) => s !== undefined);
  const leader = known[0]?.leader;
  const found = known.find((s) => s.memberId === leader);
  if (!found) throw new Error(`no member answering is the leader (${JSON.stringify(known)})`);
  return found.i;
}

// --- processes ---------------------------------------------------------------------------------------------------

/** How the caller runs member processes (`H`: its handle of one process). */
export interface EtcdProcessControl<H> {
  spawn(member: EtcdMemberPlan, argv: readonly string[]): Promise<H>;
  running(h: H): Promise<boolean>;
  /** SIGKILL (a crash, the realistic outage); resolves once the process is gone. */
  kill(h: H): Promise<void>;
  /** The end of its output, for error messages. */
  output(h: H): Promise<string>;
}

export class EtcdStartError extends Error {
  override readonly name = 'EtcdStartError';
  constructor(
    message: string,
    /** The member exited because a port was taken (the caller may retry on other ports). */
    readonly portInUse = false,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the member is up: 'healthy' needs a leader (a quorum runs); 'listening' only that its client
 * listener is bound (a member started without a quorum serves nothing until its peers come back).
 */
export async function waitEtcdMember<H>(m: EtcdMemberPlan, h: H, control: EtcdProcessControl<H>, until: 'healthy' | 'listening', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (until === 'healthy' ? (await etcdHealth(m.clientUrl)) === 'healthy' : await etcdListening(m.clientUrl)) return;
    if (!(await control.running(h))) {
      const out = await control.output(h);
      throw new EtcdStartError(`etcd member ${m.name} exited during start-up: ${out}`, /address already in use/i.test(out));
    }
    if (Date.now() > deadline) throw new EtcdStartError(`etcd member ${m.name} at ${m.clientUrl} not ${until} after ${timeoutMs / 1000} s: ${await control.output(h)}`);
    await sleep(50);
  }
}

export interface StartEtcdClusterOptions<H> {
  /** Parent of the members' data directories (root/<member>); must exist. */
  root: string;
  names: readonly string[];
  token: string;
  control: EtcdProcessControl<H>;
  timeoutMs?: number;
  /** Whole-cluster attempts when a port turns out to be taken (default 3). */
  attempts?: number;
}

/** Starts every member on fresh ports and waits until all are healthy. On failure nothing is left running. */
export async function startEtcdCluster<H>(o: StartEtcdClusterOptions<H>): Promise<{ plan: EtcdClusterPlan; handles: H[] }> {
  const attempts = o.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    const plan = planEtcdCluster({ root: o.root, names: o.names, ports: await pickLoopbackPorts(2 * o.names.length), token: o.token });
    const handles: H[] = [];
    try {
      for (const m of plan.members) handles.push(await o.control.spawn(m, etcdMemberArgv(plan, m)));
      await Promise.all(plan.members.map((m, i) => waitEtcdMember(m, handles[i]!, o.control, 'healthy', o.timeoutMs)));
      return { plan, handles };
    } catch (err) {
      await Promise.all(handles.map((h) => o.control.kill(h).catch(() => undefined)));
      await Promise.all(plan.members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
      if (!(err instanceof EtcdStartError && err.portInUse && attempt < attempts)) throw err;
    }
  }
}
