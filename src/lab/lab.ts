/**
 * The lab's life cycle: up, down, status, exec. One lab at a time per name; everything it makes is named after
 * it (namespaces `otl-<name>-*`, run directory /run/opentransit-lab/<name>/, OPENTRANSIT_LAB=<name> on every
 * process), so `down` finds and removes all of it even when the state file or the process that wrote it is gone.
 *
 * Processes (children of nobody once `lab up` returns; logs in RUN/logs/):
 *   etcd (3)       `store: etcd` only: the members of the lab's cluster on loopback ports (store.ts), first of all
 *   api            `opentransit api --listen 127.0.0.1:PORT --data-dir RUN/store [--store etcd://…]` (the machine's
 *                  namespace, loopback)
 *   bird-<router>  BIRD of the core and of each site router (eBGP core ↔ sites; sites wait for their edges)
 *   server-<host>  the echo server of each customer host with `listen` entries (echo-server.ts)
 * Hooks for the edge agents (later work): state.plan.edges lists, per edge, its namespace, uplink, gateway, ASN
 * and its site router's BGP address and ASN (the site router already has a passive session configured for it);
 * agents reach the store as labStoreSpec(state) (`lmdb:<state.api.storeDir>` or the etcd cluster); an agent started by the lab is recorded with role
 * 'agent' and host = the edge name, which is what `edges[NAME].up` reports.
 */
import { configureSettings, edgeAgentDir, spawnEdgeAgent, startAgents } from './agents.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ValidationError } from '../model/errors.js';
import { buildNetwork, deleteNamespaces, labNamespaces } from './build.js';
import { labPaths, labRunRoot, nodeEntryArgv, packageRoot, type LabPaths } from './paths.js';
import { findLabPids, isRunning, procComm, procStartTime, spawnLabProcess, stopProcesses, type LabProcess } from './processes.js';
import { startRouting, routingStatus, type BgpSessionStatus } from './routing.js';
import { labStoreSpec, readLabState, writeLabState, type LabState } from './state.js';
import { LAB_ETCD_MEMBERS, labStoreMembers, startLabEtcd, type LabStoreMemberStatus } from './store.js';
import { LAB_NAME_RE, netnsPrefixOf, parseTopology, planLab, validateTopology, type LabTopology } from './topology.js';

/** Where lab-made BPF pins would live (the customer routers' GRE programs, later work): removed by `down`. */
export const LAB_BPF_PIN_ROOT = '/sys/fs/bpf/opentransit-lab';

export class LabError extends Error {
  override readonly name = 'LabError';
}

export interface LabUpOptions {
  /** Print progress lines (the CLI passes stderr). */
  log?: (line: string) => void;
  /**
   * Seconds for the whole start-up (etcd, API, BIRD, servers, agents, GRE controller) to be ready (default 90: a
   * bound for a lab that will never come up, generous because a loaded 2-core machine starts a dozen processes
   * slowly).
   */
  readyTimeoutS?: number;
}

export interface LabUpResult {
  /** True when the lab was already up: nothing was changed. */
  alreadyUp: boolean;
  state: LabState;
}

function checkLabName(name: string): string {
  if (!LAB_NAME_RE.test(name)) throw new ValidationError('name', `a lab name is 1–12 characters of [a-z0-9] starting with a letter, got ${JSON.stringify(name)}`);
  return name;
}

/** A topology from a YAML file path, or a parsed document (the YAML's shape: snake_case fields). */
async function loadTopology(input: string | object): Promise<{ topology: LabTopology; file?: string }> {
  if (typeof input === 'string') {
    const file = path.resolve(input);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new LabError(`cannot read the topology file ${file}: ${(e as Error).message}`);
    }
    return { topology: parseTopology(text, file), file };
  }
  return { topology: validateTopology(input) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Waits until `test()` returns a value, the process dies (error with its log), or the deadline passes. */
async function waitFor<T>(what: string, proc: LabProcess, deadline: number, test: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await test();
    if (v !== undefined) return v;
    if (!(await isRunning(proc))) throw new LabError(`${what} exited; the end of its log ${proc.log}:\n${await tail(proc.log)}`);
    if (Date.now() > deadline) throw new LabError(`${what} not ready in time; the end of its log ${proc.log}:\n${await tail(proc.log)}`);
    await sleep(100);
  }
}

/** Is the recorded lab complete and alive: phase up, every process running, every namespace present? */
async function labHealthy(state: LabState): Promise<boolean> {
  if (state.phase !== 'up') return false;
  for (const p of state.processes) if (!(await isRunning(p))) return false;
  const present = new Set(await labNamespaces(state.plan.netnsPrefix));
  return state.plan.hosts.every((h) => present.has(h.netns));
}

/**
 * Builds the lab described by `input` (a topology file path, or the parsed YAML document) and starts its
 * processes. A lab of that name that is already up is left as it is (`alreadyUp`); leftovers of a crashed or
 * half-built one are removed first. On failure everything made so far is removed and the error names the step.
 */
export async function labUp(input: string | object, opts: LabUpOptions = {}): Promise<LabUpResult> {
  const log = opts.log ?? (() => {});
  const { topology, file } = await loadTopology(input);
  const plan = planLab(topology);
  const paths = labPaths(topology.name);

  const previous = await readLabState(paths.stateFile).catch(() => undefined);
  if (previous && (await labHealthy(previous))) return { alreadyUp: true, state: previous };
  const leftovers = await labNamespaces(plan.netnsPrefix);
  if (previous || leftovers.length || existsSync(paths.runDir)) {
    log(`lab ${topology.name}: removing what a previous run left`);
    await labDown(topology.name);
  }

  await mkdir(labRunRoot(), { recursive: true, mode: 0o755 });
  // Non-recursive: if another `lab up` of the same name created it meanwhile, we stop here.
  await mkdir(paths.runDir, { mode: 0o700 });
  await Promise.all([paths.logDir, paths.storeDir, paths.birdDir, paths.agentsDir, paths.etcdDir].map((d) => mkdir(d, { mode: 0o700 })));
  const state: LabState = {
    version: 1,
    name: topology.name,
    phase: 'building',
    createdAt: new Date().toISOString(),
    topology,
    plan,
    runDir: paths.runDir,
    processes: [],
  };
  if (file !== undefined) state.topologyFile = file;
  await writeLabState(paths.stateFile, state);
  const deadline = Date.now() + (opts.readyTimeoutS ?? 90) * 1000;
  const record = async (p: LabProcess) => {
    state.processes.push(p);
    await writeLabState(paths.stateFile, state);
    return p;
  };

  try {
    log(`lab ${topology.name}: building ${plan.hosts.length} namespaces and ${plan.links.length} links`);
    await buildNetwork(plan);

    if (topology.store === 'etcd') {
      log(`lab ${topology.name}: starting a ${LAB_ETCD_MEMBERS.length}-member etcd cluster on loopback (data in ${paths.etcdDir})`);
      await startLabEtcd(state, paths, () => writeLabState(paths.stateFile, state), Math.max(1000, deadline - Date.now()));
    }
    log(`lab ${topology.name}: starting the API (${state.etcd ? `etcd ${state.etcd.spec}` : `embedded store in ${paths.storeDir}`})`);
    state.api = { url: '', operatorToken: `ot_${randomBytes(32).toString('base64url')}`, storeDir: paths.storeDir };
    await startApi(state, paths, record, deadline);

    log(`lab ${topology.name}: starting BIRD on the core and the site routers`);
    await startRouting(state, paths, record, deadline);

    await startServers(state, paths, record, deadline);

    log(`lab ${topology.name}: starting ${plan.edges.length} edge agents`);
    await configureSettings(state);
    await startAgents(state, paths, record, async (nodeId, proc) => {
      await waitFor(`the agent of ${nodeId}`, proc, deadline, async () => ((await nodeReported(state, nodeId)) ? true : undefined));
    });

    log(`lab ${topology.name}: starting the customer routers' GRE controller`);
    const cpe = await record(
      await spawnLabProcess({
        lab: state.name,
        role: 'cpe',
        argv: [...nodeEntryArgv('main'), 'lab', 'cpe-controller', '-n', state.name],
        log: path.join(paths.logDir, 'cpe-controller.log'),
        cwd: packageRoot(),
      }),
    );
    await waitFor('the GRE controller', cpe, deadline, async () => ((await tail(cpe.log, 20)).includes('watching') ? true : undefined));

    state.phase = 'up';
    await writeLabState(paths.stateFile, state);
    log(`lab ${topology.name}: up (API ${state.api.url}, run directory ${paths.runDir})`);
    return { alreadyUp: false, state };
  } catch (e) {
    const message = (e as Error).message;
    log(`lab ${topology.name}: failed (${message}); removing it`);
    await labDown(topology.name).catch((d: unknown) => log(`lab ${topology.name}: cleanup failed too: ${(d as Error).message}`));
    throw e instanceof LabError || e instanceof ValidationError ? e : new LabError(`lab ${topology.name}: ${message}`);
  }
}

type Record_ = (p: LabProcess) => Promise<LabProcess>;

/** True once the agent of `nodeId` has reported its status to the store (through the API). */
async function nodeReported(state: LabState, nodeId: string): Promise<boolean> {
  try {
    const res = await fetch(`${state.api!.url}/v1/nodes`, {
      headers: { authorization: `Bearer ${state.api!.operatorToken}` },
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) return false;
    const body = (await res.json()) as { items: { id: string }[] };
    return body.items.some((n) => n.id === nodeId);
  } catch {
    return false;
  }
}

async function startApi(state: LabState, paths: LabPaths, record: Record_, deadline: number): Promise<void> {
  const api = state.api!;
  const listen = `127.0.0.1:${state.topology.apiPort}`;
  const proc = await record(
    await spawnLabProcess({
      lab: state.name,
      role: 'api',
      // On etcd the data directory keeps only what the server stores besides the store (the token hash, if any).
      argv: [...nodeEntryArgv('main'), 'api', '--listen', listen, '--data-dir', paths.storeDir, ...(state.etcd ? ['--store', state.etcd.spec] : [])],
      log: path.join(paths.logDir, 'api.log'),
      cwd: packageRoot(),
      env: { OPENTRANSIT_OPERATOR_TOKEN: api.operatorToken },
    }),
  );
  // The API prints its URL once listening (port 0 means the kernel chose one).
  api.url = await waitFor('the API', proc, deadline, async () => {
    const m = /API listening on (http:\/\/\S+)/.exec(await tail(proc.log, 50));
    return m?.[1];
  });
  await waitFor('the API', proc, deadline, async () => {
    try {
      const res = await fetch(`${api.url}/healthz`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

async function startServers(state: LabState, paths: LabPaths, record: Record_, deadline: number): Promise<void> {
  const procs: LabProcess[] = [];
  for (const c of state.plan.customers) {
    for (const h of c.hosts) {
      if (h.listen.length === 0) continue;
      procs.push(
        await record(
          await spawnLabProcess({
            lab: state.name,
            role: 'server',
            host: h.host,
            netns: h.netns,
            argv: [...nodeEntryArgv('lab/echo-server'), '--label', h.host, ...h.listen.flatMap((l) => ['--listen', `${l.proto}/${l.port}`])],
            log: path.join(paths.logDir, `server-${h.host}.log`),
            cwd: packageRoot(),
          }),
        ),
      );
    }
  }
  for (const p of procs) {
    await waitFor(`the server of ${p.host}`, p, deadline, async () => ((await tail(p.log, 5)).includes('ready ') ? true : undefined));
  }
}

/**
 * Restarts the agent of edge `edge` with the same arguments: SIGTERM (default) is a graceful stop (BGP withdrawn
 * first), SIGKILL a crash (its BIRD keeps announcing for the new agent to adopt). Resolves once the new agent has
 * been spawned and recorded; it boots from its local replica, then follows the store.
 */
export async function labRestartAgent(name: string, edge: string, opts: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<LabProcess> {
  checkLabName(name);
  const paths = labPaths(name);
  const state = await readLabState(paths.stateFile);
  if (!state) throw new LabError(`lab ${name} is not up`);
  const e = state.plan.edges.find((x) => x.name === edge);
  if (!e) throw new ValidationError('edge', `lab ${name} has no edge ${JSON.stringify(edge)}; edges: ${state.plan.edges.map((x) => x.name).join(', ')}`);
  const old = state.processes.filter((p) => p.role === 'agent' && p.host === edge);
  if (opts.signal === 'SIGKILL') {
    for (const p of old) if (await isRunning(p)) process.kill(p.pid, 'SIGKILL');
  }
  await stopProcesses(old);
  const proc = await spawnEdgeAgent(state, paths, e);
  state.processes = [...state.processes.filter((p) => !old.includes(p)), proc];
  await writeLabState(paths.stateFile, state);
  return proc;
}

// --- down --------------------------------------------------------------------------------------------------------

export interface LabDownResult {
  name: string;
  /** Namespaces deleted. */
  namespaces: string[];
  /** Processes stopped. */
  processes: number;
  /** True when a run directory was removed. */
  runDir: boolean;
}

/**
 * Removes every namespace, process, pin and file of lab `name`, whatever state it is in: from the state file
 * when there is one, and by sweeping `otl-<name>-*` namespaces, the processes inside them and the processes
 * marked OPENTRANSIT_LAB=<name>. Idempotent: a lab that does not exist is a no-op.
 */
export async function labDown(name: string): Promise<LabDownResult> {
  checkLabName(name);
  const paths = labPaths(name);
  const state = await readLabState(paths.stateFile).catch(() => undefined);
  const prefix = netnsPrefixOf(name);
  const namespaces = [...new Set([...(state?.plan.hosts.map((h) => h.netns) ?? []), ...(await labNamespaces(prefix))])].filter((n) => n.startsWith(prefix));

  // Processes first: BIRD and servers hold sockets in the namespaces; the API holds the store open.
  const recorded = [...(state?.processes ?? []), ...(state?.etcd?.members.flatMap((m) => (m.process ? [m.process] : [])) ?? [])];
  const swept = await findLabPids(name, namespaces);
  const targets = [...recorded];
  for (const pid of swept) {
    if (recorded.some((p) => p.pid === pid)) continue;
    targets.push({ role: (await procComm(pid)) === 'etcd' ? 'etcd' : 'swept', pid, startTime: (await procStartTime(pid)) ?? '', argv: [], log: '' });
  }
  const running: LabProcess[] = [];
  for (const p of targets) if (await isRunning(p)) running.push(p);
  // etcd last: agents and the API stopping gracefully still talk to it (status, watch cancel) instead of waiting
  // for their calls to time out.
  await stopProcesses(running.filter((p) => p.role !== 'etcd'));
  await stopProcesses(running.filter((p) => p.role === 'etcd'));

  const existing = new Set(await labNamespaces(prefix));
  const toDelete = namespaces.filter((n) => existing.has(n));
  await deleteNamespaces(toDelete);

  await rm(path.join(LAB_BPF_PIN_ROOT, name), { recursive: true, force: true });
  const hadRunDir = existsSync(paths.runDir);
  await rm(paths.runDir, { recursive: true, force: true });

  const left = await labNamespaces(prefix);
  if (left.length) throw new LabError(`lab ${name}: namespaces still present after down: ${left.join(', ')}`);
  return { name, namespaces: toDelete, processes: running.length, runDir: hadRunDir };
}

// --- status ------------------------------------------------------------------------------------------------------

export interface LabHostStatus {
  netns: string;
  role: string;
  /** Every address of the host (`addr/len`): interfaces, bridge and lo. */
  addresses: string[];
  present: boolean;
}

export interface LabStatus {
  name: string;
  phase: string;
  run_dir: string;
  api_url: string;
  operator_token: string;
  /**
   * The lab's store. `spec` is what the API, agents and GRE controller take as --store (`lmdb:<dir>` or
   * `etcd://…`); on etcd, every member with its pid (null while stopped) and health.
   */
  store: { kind: 'embedded'; spec: string } | { kind: 'etcd'; spec: string; members: LabStoreMemberStatus[] };
  anycast_endpoints: string[];
  hosts: Record<string, LabHostStatus>;
  edges: Record<
    string,
    {
      node_id: string;
      up: boolean;
      site: string;
      netns: string;
      uplink: string;
      gateway: string;
      asn: number;
      router: string;
      router_asn: number;
      bgp?: string;
      /** What the agent last wrote in its local status file (absent until it wrote one). */
      store_reachable?: boolean;
    }
  >;
  processes: { role: string; host?: string; pid: number; running: boolean; log: string }[];
  bgp: BgpSessionStatus[];
  healthy: boolean;
}

/** Names of labs that have a run directory or namespaces on this machine. */
export async function listLabs(): Promise<string[]> {
  const names = new Set<string>();
  try {
    for (const d of await readdir(labRunRoot())) if (LAB_NAME_RE.test(d)) names.add(d);
  } catch {
    // no run root yet
  }
  for (const ns of await labNamespaces('otl-')) {
    const m = /^otl-([a-z][a-z0-9]{0,11})-/.exec(ns);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

/**
 * An edge agent's local status file (<data dir>/local-status.json: its node status plus
 * `store: {reachable, since, error?}`), which it writes even when the store is unreachable; undefined when absent
 * or unreadable (being rewritten).
 */
export async function readAgentLocalStatus(
  paths: LabPaths,
  edge: string,
): Promise<({ store?: { reachable?: boolean; since?: string; error?: string } } & Record<string, unknown>) | undefined> {
  try {
    return JSON.parse(await readFile(path.join(edgeAgentDir(paths, edge), 'local-status.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export async function labStatus(name: string): Promise<LabStatus> {
  checkLabName(name);
  const state = await readLabState(labPaths(name).stateFile);
  if (!state) {
    const leftovers = await labNamespaces(netnsPrefixOf(name));
    throw new LabError(
      leftovers.length
        ? `lab ${name} has no state file but ${leftovers.length} namespaces are left; \`opentransit lab down -n ${name}\` removes them`
        : `lab ${name} is not up`,
    );
  }
  const present = new Set(await labNamespaces(state.plan.netnsPrefix));
  const hosts: LabStatus['hosts'] = {};
  for (const h of state.plan.hosts) {
    const addresses = [
      ...h.interfaces.flatMap((i) => [i.address, i.address6 ?? '']).filter((a) => a !== ''),
      ...(h.bridge ? [h.bridge.address, ...(h.bridge.address6 ? [h.bridge.address6] : [])] : []),
      ...h.loopback,
    ];
    hosts[h.name] = { netns: h.netns, role: h.role, addresses, present: present.has(h.netns) };
  }
  const processes: LabStatus['processes'] = [];
  for (const p of state.processes) {
    const entry: LabStatus['processes'][number] = { role: p.role, pid: p.pid, running: await isRunning(p), log: p.log };
    if (p.host !== undefined) entry.host = p.host;
    processes.push(entry);
  }
  const bgp = state.phase === 'up' ? await routingStatus(state) : [];
  const edges: LabStatus['edges'] = {};
  for (const e of state.plan.edges) {
    const agent = processes.find((p) => p.role === 'agent' && p.host === e.name);
    const session = bgp.find((s) => s.host === e.router.host && s.peerHost === e.name);
    edges[e.name] = {
      node_id: e.nodeId,
      up: agent?.running ?? false,
      site: e.site,
      netns: e.netns,
      uplink: e.uplink.address,
      gateway: e.uplink.gateway,
      asn: e.asn,
      router: e.router.address,
      router_asn: e.router.asn,
      ...(session ? { bgp: session.state } : {}),
    };
    const local = await readAgentLocalStatus(labPaths(name), e.name);
    if (typeof local?.store?.reachable === 'boolean') edges[e.name]!.store_reachable = local.store.reachable;
  }
  return {
    name: state.name,
    phase: state.phase,
    run_dir: state.runDir,
    api_url: state.api?.url ?? '',
    operator_token: state.api?.operatorToken ?? '',
    store: state.etcd
      ? { kind: 'etcd', spec: state.etcd.spec, members: await labStoreMembers(state.etcd) }
      : { kind: 'embedded', spec: state.api ? labStoreSpec(state) : '' },
    anycast_endpoints: state.plan.anycastEndpoints,
    hosts,
    edges,
    processes,
    bgp,
    healthy: await labHealthy(state),
  };
}

// --- exec --------------------------------------------------------------------------------------------------------

export interface LabExecOptions {
  /** 'inherit' (the CLI: the command talks to the terminal) or 'pipe' (default: output captured). */
  stdio?: 'inherit' | 'pipe';
  stdin?: string;
  timeoutMs?: number;
}

export interface LabExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The namespace of a lab host, checked against the lab's plan (the error lists the hosts). */
export async function labHostNetns(name: string, host: string): Promise<string> {
  checkLabName(name);
  const state = await readLabState(labPaths(name).stateFile);
  if (!state) throw new LabError(`lab ${name} is not up`);
  const h = state.plan.hosts.find((x) => x.name === host);
  if (!h) throw new ValidationError('host', `lab ${name} has no host ${JSON.stringify(host)}; hosts: ${state.plan.hosts.map((x) => x.name).join(', ')}`);
  return h.netns;
}

/**
 * Runs `argv` inside lab host `host` (`ip netns exec otl-<name>-<host> …`: also gives the command that
 * namespace's /sys, so tools reading sysfs see the host's interfaces). Resolves with the exit status; a command
 * that fails is not an error here.
 */
export async function labExec(name: string, host: string, argv: readonly string[], opts: LabExecOptions = {}): Promise<LabExecResult> {
  if (argv.length === 0) throw new ValidationError('command', 'give the command to run after --');
  const netns = await labHostNetns(name, host);
  const full = ['ip', 'netns', 'exec', netns, ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: opts.stdio === 'inherit' ? 'inherit' : ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.stdin ?? '');
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new LabError(`cannot run ${full.join(' ')}: ${e.message}`));
    });
    child.once('close', (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr });
    });
  });
}
