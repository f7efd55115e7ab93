/**
 * Where the lab keeps its files, and where its own programs are.
 *
 * Run directory: /run/opentransit-lab/<name>/ (tmpfs: it vanishes on reboot, exactly like the namespaces it
 * describes, so a stale state file can never outlive its lab). Override the root with OPENTRANSIT_LAB_RUN_ROOT.
 *   state.json            the lab's state: plan, processes (pid + start time), API URL and operator token (0600)
 *   store/                the API's embedded LMDB store (agents open it as lmdb:<run>/store)
 *   logs/<proc>.log       stdout+stderr of every process the lab started (api, bird-<host>, server-<host>…)
 *   bird/<host>/          BIRD config and control socket of each lab router
 *   agents/<edge>/        reserved for each edge agent's run directory
 *   etcd/<member>/        `store: etcd`: each etcd member's data (store.ts)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAB_RUN_ROOT_ENV = 'OPENTRANSIT_LAB_RUN_ROOT';
export const DEFAULT_LAB_RUN_ROOT = '/run/opentransit-lab';

export function labRunRoot(env: Record<string, string | undefined> = process.env): string {
  const v = env[LAB_RUN_ROOT_ENV];
  return v !== undefined && v !== '' ? path.resolve(v) : DEFAULT_LAB_RUN_ROOT;
}

export interface LabPaths {
  runDir: string;
  stateFile: string;
  storeDir: string;
  logDir: string;
  birdDir: string;
  agentsDir: string;
  etcdDir: string;
}

export function labPaths(name: string, root = labRunRoot()): LabPaths {
  const runDir = path.join(root, name);
  return {
    runDir,
    stateFile: path.join(runDir, 'state.json'),
    storeDir: path.join(runDir, 'store'),
    logDir: path.join(runDir, 'logs'),
    birdDir: path.join(runDir, 'bird'),
    agentsDir: path.join(runDir, 'agents'),
    etcdDir: path.join(runDir, 'etcd'),
  };
}

/** True when this module runs from TypeScript source (tsx), false when compiled into dist/. */
export const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');

/** The repository (package) root: the nearest directory above this module holding package.json and examples/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'examples'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the opentransit package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export function defaultTopologyFile(): string {
  return path.join(packageRoot(), 'examples', 'lab.yaml');
}

/**
 * The argv that runs one of our own Node entry points (`src/<rel>` without extension, e.g. 'main' or
 * 'lab/echo-server') with the same Node: compiled from dist/ normally, or through tsx when running from source.
 */
export function nodeEntryArgv(rel: string): string[] {
  const file = fileURLToPath(new URL(`../${rel}.${RUNNING_FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
  return RUNNING_FROM_SOURCE ? [process.execPath, '--import', 'tsx', file] : [process.execPath, file];
}
