/**
 * The lab's state file (RUN/state.json): written before anything is built (phase 'building') and after each
 * process starts, so that `lab down` after a crash at any point still knows the plan and the processes.
 * Written atomically (temp file + rename), mode 0600: it holds the operator token.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { EtcdMemberPlan } from './etcd.js';
import type { LabProcess } from './processes.js';
import type { LabPlan, LabTopology } from './topology.js';

export type LabPhase = 'building' | 'up' | 'failed';

export interface LabState {
  version: 1;
  name: string;
  phase: LabPhase;
  /** ISO time of `lab up`. */
  createdAt: string;
  /** The topology file given to `lab up`, when it came from a file. */
  topologyFile?: string;
  topology: LabTopology;
  plan: LabPlan;
  runDir: string;
  api?: {
    url: string;
    operatorToken: string;
    /** Where the embedded store lives; agents open it as `lmdb:<dir>`. */
    storeDir: string;
  };
  processes: LabProcess[];
  /** `store: etcd`: the cluster (etcd.ts) and each member's process, null while stopped (`lab store stop`). */
  etcd?: LabEtcdState;
  /** Why the last `lab up` failed (phase 'failed'). */
  error?: string;
}

export interface LabEtcdState {
  token: string;
  /** What the API, the agents and the GRE controller take as --store: etcd://127.0.0.1:P,… (every member). */
  spec: string;
  members: Array<EtcdMemberPlan & { process: LabProcess | null }>;
}

/** The store spec of the lab's processes: the etcd cluster, else the API's embedded store. */
export function labStoreSpec(state: LabState): string {
  if (state.etcd) return state.etcd.spec;
  if (!state.api) throw new Error(`lab ${state.name} has no store yet`);
  return `lmdb:${state.api.storeDir}`;
}

export async function readLabState(file: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const s = JSON.parse(text) as LabState;
    if (s?.version !== 1 || typeof s.name !== 'string') throw new Error('not a version 1 lab state');
    return s;
  } catch (e) {
    throw new Error(`${file}: unreadable lab state (${(e as Error).message}); \`opentransit lab down -n NAME\` removes the lab anyway`);
  }
}

export async function writeLabState(file: string, state: LabState): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}
