/**
 * Real etcd servers for tests: the lab's cluster code (src/lab/etcd.ts: Debian's `etcd` on loopback, safe free
 * ports) with plain child processes and data under a temp dir. `startEtcd()` for one member,
 * `startEtcd({ members: 3 })` for a cluster. Members can be stopped (SIGKILL, as a crash) and started again on
 * the same ports and data. `destroy()` kills every member and removes the data; register it in an after-hook so
 * it runs even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { etcdLeaderIndex, etcdMemberArgv, startEtcdCluster, waitEtcdMember, type EtcdClusterPlan, type EtcdMemberPlan, type EtcdProcessControl } from '../../src/lab/etcd.js';

export interface EtcdMember extends EtcdMemberPlan {
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
  /** The index of the current raft leader (as the running members see it). */
  leader(): Promise<number>;
  /** Kills every member and removes all data. Safe to call twice. */
  destroy(): Promise<void>;
}

interface Child {
  child: ChildProcess;
  log: string;
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

/** Attached child processes, stderr kept (last 4000 characters) for error messages. */
const childControl: EtcdProcessControl<Child> = {
  async spawn(_m, argv) {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const h: Child = { child, log: '' };
    child.stderr?.on('data', (d: Buffer) => (h.log = (h.log + d.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`cannot start ${argv[0]}: ${err.message}`)));
    });
    return h;
  },
  async running(h) {
    return !exited(h.child);
  },
  async kill(h) {
    if (exited(h.child)) return;
    const gone = new Promise((r) => h.child.once('exit', r));
    h.child.kill('SIGKILL');
    await gone;
  },
  async output(h) {
    return h.log;
  },
};

export async function startEtcd(opts: { members?: number } = {}): Promise<EtcdCluster> {
  const count = opts.members ?? 1;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-etcd-'));
  let started: { plan: EtcdClusterPlan; handles: Child[] };
  try {
    started = await startEtcdCluster({
      root,
      names: Array.from({ length: count }, (_, i) => `m${i}`),
      token: `ot-test-${process.pid}-${path.basename(root)}`,
      control: childControl,
    });
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const { plan } = started;
  const handles: (Child | undefined)[] = [...started.handles];
  const members: EtcdMember[] = plan.members.map((m, i) => ({
    ...m,
    get process() {
      return handles[i]?.child;
    },
  }));

  const stop = async (i = 0): Promise<void> => {
    const h = handles[i];
    handles[i] = undefined;
    if (h) await childControl.kill(h);
  };

  let destroyed = false;
  return {
    members,
    endpoints: plan.members.map((m) => m.clientUrl),
    stop,
    async start(i = 0) {
      const m = plan.members[i]!;
      if (handles[i]) return;
      const h = await childControl.spawn(m, etcdMemberArgv(plan, m));
      handles[i] = h;
      await waitEtcdMember(m, h, childControl, 'healthy');
    },
    async leader() {
      // Stopped members refuse the connection at once and are skipped.
      return etcdLeaderIndex(plan.members);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await Promise.all(plan.members.map((_, i) => stop(i)));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
