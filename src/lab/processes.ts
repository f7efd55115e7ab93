/**
 * The lab's long-running processes (etcd members, API, BIRD, customer servers, agents): started detached (their own
 * session, logs to a file) so they outlive `opentransit lab up`, recorded by pid AND start time so that `down`
 * never signals a recycled pid, and found again after a crash without any record:
 *   - every process the lab starts carries OPENTRANSIT_LAB=<name> in its environment (the API runs in the
 *     machine's namespace, so namespace membership alone cannot find it);
 *   - every process inside an `otl-<name>-*` namespace belongs to the lab (what `ip netns pids` reports).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { inNetns, netnsPath } from '../kernel/netns.js';

export const LAB_ENV_MARKER = 'OPENTRANSIT_LAB';

export interface LabProcess {
  /** What it is: 'api', 'bird', 'server', 'agent'… */
  role: string;
  /** The lab host it runs in; absent for the machine's own namespace (the API). */
  host?: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid, identifies this very process. */
  startTime: string;
  argv: string[];
  log: string;
}

export interface SpawnLabProcessOptions {
  lab: string;
  role: string;
  host?: string;
  /** Run inside this namespace (nsenter --net, which execs: the pid is the program's own). */
  netns?: string;
  argv: readonly string[];
  log: string;
  cwd?: string;
  env?: Record<string, string>;
}

/** Starts a detached process with stdout+stderr appended to `log`; resolves once it has been spawned. */
export async function spawnLabProcess(o: SpawnLabProcessOptions): Promise<LabProcess> {
  const argv = o.netns ? inNetns(o.netns, o.argv) : [...o.argv];
  const fd = openSync(o.log, 'a', 0o600);
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: o.cwd,
      env: { ...process.env, ...o.env, [LAB_ENV_MARKER]: o.lab },
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new Error(`cannot start ${o.role} (${argv.join(' ')}): ${e.message}`)));
    });
    child.unref();
    const pid = child.pid!;
    const startTime = (await procStartTime(pid)) ?? '';
    const out: LabProcess = { role: o.role, pid, startTime, argv, log: o.log };
    if (o.host !== undefined) out.host = o.host;
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Field 22 (starttime) of /proc/<pid>/stat and the state letter; undefined when there is no such process. */
async function procStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: fields restart after the LAST ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
}

/** The command name of a process (/proc/<pid>/comm), undefined when there is no such process. */
export async function procComm(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export async function procStartTime(pid: number): Promise<string | undefined> {
  return (await procStat(pid))?.startTime;
}

/** True when the recorded process still runs (same pid, same start time, not a zombie). */
export async function isRunning(p: Pick<LabProcess, 'pid' | 'startTime'>): Promise<boolean> {
  const s = await procStat(p.pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X' && (p.startTime === '' || s.startTime === p.startTime);
}

async function numericPids(): Promise<number[]> {
  return (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
}

/**
 * Pids of live processes that belong to lab `name`: those in any of `namespaces` (by namespace inode, what
 * `ip netns pids` compares) and those carrying OPENTRANSIT_LAB=<name> in their environment. Never this process.
 */
export async function findLabPids(name: string, namespaces: readonly string[]): Promise<number[]> {
  const inodes = new Set<string>();
  for (const ns of namespaces) {
    try {
      inodes.add(String((await stat(netnsPath(ns))).ino));
    } catch {
      // gone meanwhile
    }
  }
  const marker = Buffer.from(`${LAB_ENV_MARKER}=${name}\0`);
  const found: number[] = [];
  for (const pid of await numericPids()) {
    if (pid === process.pid) continue;
    try {
      const link = await readlink(`/proc/${pid}/ns/net`);
      const m = /^net:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        found.push(pid);
        continue;
      }
      const env = await readFile(`/proc/${pid}/environ`);
      // environ starts with the first variable: prepend NUL so every entry is matched whole.
      if (Buffer.concat([Buffer.from([0]), env]).includes(Buffer.concat([Buffer.from([0]), marker]))) found.push(pid);
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  const live: number[] = [];
  for (const pid of found) if (await isRunning({ pid, startTime: '' })) live.push(pid);
  return live;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM to each (pid, start time) still running, then SIGKILL to whatever is left after `graceMs`.
 * Resolves when none of them runs any more.
 */
export async function stopProcesses(procs: readonly Pick<LabProcess, 'pid' | 'startTime'>[], graceMs = 3000): Promise<void> {
  const alive = async () => {
    const out: Pick<LabProcess, 'pid' | 'startTime'>[] = [];
    for (const p of procs) if (await isRunning(p)) out.push(p);
    return out;
  };
  const signal = (ps: typeof procs, sig: NodeJS.Signals) => {
    for (const p of ps) {
      try {
        process.kill(p.pid, sig);
      } catch {
        // already gone
      }
    }
  };
  let left = await alive();
  signal(left, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while ((left = await alive()).length && Date.now() < deadline) await sleep(50);
  if (left.length === 0) return;
  signal(left, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while ((left = await alive()).length && Date.now() < killDeadline) await sleep(50);
  if (left.length) throw new Error(`processes still running after SIGKILL: ${left.map((p) => p.pid).join(', ')}`);
}
