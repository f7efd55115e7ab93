/**
 * The lab's etcd cluster (`store: etcd` in the topology): three members on loopback ports (etcd.ts), started by
 * `lab up` before the API, data in RUN/etcd/<member>, logs in RUN/logs/etcd-<member>.log, each member a lab process
 * (OPENTRANSIT_LAB=<name>, so `lab down` finds it even after a crash) recorded in state.etcd.
 *
 * `opentransit lab store stop|start [MEMBER]` rehearses outages: stop = SIGKILL (a crash, what an outage really
 * is: no goodbye to the peers or the clients), start = the same argv on the same data directory, so the member
 * rejoins the cluster it belonged to.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../model/errors.js';
import { etcdHealth, etcdMemberArgv, etcdStoreSpec, startEtcdCluster, waitEtcdMember, type EtcdHealth, type EtcdProcessControl } from './etcd.js';
import { labPaths, packageRoot, type LabPaths } from './paths.js';
import { isRunning, spawnLabProcess, type LabProcess } from './processes.js';
import { readLabState, writeLabState, type LabEtcdState, type LabState } from './state.js';

/** Member names of the lab's cluster. Three: one can fail and the cluster still has a quorum. */
export const LAB_ETCD_MEMBERS = ['etcd1', 'etcd2', 'etcd3'] as const;

export class LabStoreError extends Error {
  override readonly name = 'LabStoreError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs members as lab processes (detached, marked, logging to logs/etcd-<member>.log). */
export function labEtcdControl(lab: string, paths: LabPaths): EtcdProcessControl<LabProcess> {
  return {
    spawn: (m, argv) => spawnLabProcess({ lab, role: 'etcd', argv, log: path.join(paths.logDir, `etcd-${m.name}.log`), cwd: packageRoot() }),
    running: (p) => isRunning(p),
    kill: (p) => killProcess(p),
    async output(p) {
      try {
        return (await readFile(p.log, 'utf8')).trimEnd().split('\n').slice(-15).join('\n');
      } catch {
        return '(no log)';
      }
    },
  };
}

/** SIGKILL and wait until the process is gone (or a zombie: it no longer serves). */
async function killProcess(p: LabProcess): Promise<void> {
  if (!(await isRunning(p))) return;
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    return; // gone meanwhile
  }
  const deadline = Date.now() + 5000;
  while (await isRunning(p)) {
    if (Date.now() > deadline) throw new LabStoreError(`etcd (pid ${p.pid}) still runs 5 s after SIGKILL`);
    await sleep(20);
  }
}

/**
 * Starts the lab's cluster and records it in `state.etcd` (saved through `save`). The data directory root must
 * not hold a previous cluster (lab up starts from an empty run directory).
 */
export async function startLabEtcd(state: LabState, paths: LabPaths, save: () => Promise<void>, timeoutMs: number): Promise<LabEtcdState> {
  const { plan, handles } = await startEtcdCluster({
    root: paths.etcdDir,
    names: LAB_ETCD_MEMBERS,
    token: `otl-${state.name}-${Date.now().toString(36)}`,
    control: labEtcdControl(state.name, paths),
    timeoutMs,
  });
  state.etcd = { token: plan.token, spec: etcdStoreSpec(plan), members: plan.members.map((m, i) => ({ ...m, process: handles[i]! })) };
  await save();
  return state.etcd;
}

export interface LabStoreMemberStatus {
  name: string;
  /** null while the member is stopped. */
  pid: number | null;
  client_url: string;
  peer_url: string;
  data_dir: string;
  health: EtcdHealth;
}

/** Each member's process and health (health asked of the member itself, 1 s at most). */
export async function labStoreMembers(etcd: LabEtcdState): Promise<LabStoreMemberStatus[]> {
  return Promise.all(
    etcd.members.map(async (m) => {
      const running = m.process !== null && (await isRunning(m.process));
      return {
        name: m.name,
        pid: running ? m.process!.pid : null,
        client_url: m.clientUrl,
        peer_url: m.peerUrl,
        data_dir: m.dataDir,
        health: running ? await etcdHealth(m.clientUrl) : 'down',
      };
    }),
  );
}

async function etcdLab(name: string): Promise<{ state: LabState; etcd: LabEtcdState; paths: LabPaths }> {
  const paths = labPaths(name);
  const state = await readLabState(paths.stateFile);
  if (!state) throw new LabStoreError(`lab ${name} is not up`);
  if (!state.etcd) throw new LabStoreError(`lab ${name} runs the embedded store; \`lab store\` needs \`store: etcd\` in its topology`);
  return { state, etcd: state.etcd, paths };
}

function selectMembers(name: string, etcd: LabEtcdState, member: string | undefined): LabEtcdState['members'] {
  if (member === undefined) return etcd.members;
  const m = etcd.members.find((x) => x.name === member);
  if (!m) throw new ValidationError('member', `lab ${name} has no etcd member ${JSON.stringify(member)}; its members: ${etcd.members.map((x) => x.name).join(', ')}`);
  return [m];
}

export interface LabStoreChange {
  /** Members whose process this call stopped or started. */
  changed: string[];
  /** Members that already were in the asked state. */
  unchanged: string[];
  /** After a start: true when a quorum runs (the cluster serves). */
  quorum?: boolean;
}

/** `lab store stop [MEMBER]`: SIGKILL the member (all by default), as a crash would. */
export async function labStoreStop(name: string, member?: string): Promise<LabStoreChange> {
  const { state, etcd, paths } = await etcdLab(name);
  const out: LabStoreChange = { changed: [], unchanged: [] };
  const targets = selectMembers(name, etcd, member);
  await Promise.all(
    targets.map(async (m) => {
      if (m.process && (await isRunning(m.process))) {
        await killProcess(m.process);
        out.changed.push(m.name);
      } else out.unchanged.push(m.name);
      m.process = null;
    }),
  );
  await writeLabState(paths.stateFile, state);
  out.changed.sort();
  out.unchanged.sort();
  return out;
}

/**
 * `lab store start [MEMBER]`: starts the stopped member (all by default) with its data and cluster config, and
 * waits until it serves: healthy when a quorum then runs, else only listening (a lone member waits for its peers).
 */
export async function labStoreStart(name: string, member?: string, timeoutMs = 20_000): Promise<LabStoreChange> {
  const { state, etcd, paths } = await etcdLab(name);
  const control = labEtcdControl(name, paths);
  const plan = { token: etcd.token, members: etcd.members };
  const out: LabStoreChange = { changed: [], unchanged: [] };
  const started: Array<[LabEtcdState['members'][number], LabProcess]> = [];
  for (const m of selectMembers(name, etcd, member)) {
    if (m.process && (await isRunning(m.process))) {
      out.unchanged.push(m.name);
      continue;
    }
    m.process = await control.spawn(m, etcdMemberArgv(plan, m));
    started.push([m, m.process]);
    out.changed.push(m.name);
  }
  // Recorded before waiting: a member that fails to come up is still the lab's, for `down` and `status`.
  await writeLabState(paths.stateFile, state);
  let running = 0;
  for (const m of etcd.members) if (m.process && (await isRunning(m.process))) running++;
  out.quorum = running > etcd.members.length / 2;
  await Promise.all(started.map(([m, p]) => waitEtcdMember(m, p, control, out.quorum ? 'healthy' : 'listening', timeoutMs)));
  return out;
}
