/**
 * BIRD 2 daemons: start one inside a network namespace, reconfigure it from a structured spec, ask it questions,
 * stop it (withdrawing first), and supervise it (restart after a crash or a hang, with backoff). Used by the edge
 * agent (one BIRD per edge host netns) and the lab (a router and edges in namespaces).
 *
 * One import point: this module re-exports the renderer (bird-config.ts), the control-socket client
 * (bird-control.ts) and the reply parsers (bird-show.ts).
 *
 * Files of an instance, all under its runDir: `<name>.conf` (0600: it may hold TCP-MD5 passwords), `<name>.ctl`
 * (control socket), `<name>.pid`, `<name>.log` (BIRD's stderr, where it logs unless the spec names a log file).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { KernelError, KernelInputError, run } from './exec.js';
import { inNetns, type NetnsRef } from './netns.js';
import { checkNetnsName } from './validate.js';
import { renderBirdConfig, checkProtocolName, type BirdConfigSpec } from './bird-config.js';
import { BirdError, birdCommand, type BirdCommandOptions, type BirdReply } from './bird-control.js';
import { parseBirdProtocols, parseBirdRoutes, parseBirdStatus, type BirdProtocol, type BirdRoute, type BirdStatus } from './bird-show.js';

export * from './bird-config.js';
export * from './bird-control.js';
export * from './bird-keywords.js';
export * from './bird-show.js';

/** Program names, looked up in PATH (Debian's bird2 puts them in /usr/sbin). */
export const BIRD_PROGRAM = 'bird';

const INSTANCE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** sun_path is 108 bytes with the NUL: a longer control socket path cannot be bound. */
const MAX_SOCKET_PATH = 107;

export interface BirdPaths {
  config: string;
  socket: string;
  pidFile: string;
  log: string;
}

/** The files of instance `name` under `runDir` (checked: absolute runDir of safe characters, short socket path). */
export function birdPaths(runDir: string, name: string): BirdPaths {
  if (typeof name !== 'string' || !INSTANCE_NAME_RE.test(name))
    throw new KernelInputError('name', `must be 1–32 characters of [a-z0-9_-] starting with a letter or digit, got ${JSON.stringify(name)}`);
  if (typeof runDir !== 'string' || !/^\/[A-Za-z0-9_.\/-]*$/.test(runDir) || runDir.split('/').includes('..'))
    throw new KernelInputError('runDir', `must be an absolute path of [A-Za-z0-9_./-] without "..", got ${JSON.stringify(runDir)}`);
  const base = `${runDir.replace(/\/+$/, '')}/${name}`;
  const paths = { config: `${base}.conf`, socket: `${base}.ctl`, pidFile: `${base}.pid`, log: `${base}.log` };
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH)
    throw new KernelInputError('runDir', `control socket path ${paths.socket} is longer than ${MAX_SOCKET_PATH} bytes (a unix socket limit)`);
  return paths;
}

// --- config files ----------------------------------------------------------------------------------------------

/**
 * Twin: `bird -p -c FILE`. Parses the file as the daemon would (without starting anything); throws
 * BirdError('config') with BIRD's message ("FILE:LINE:COL reason"). Warnings do not fail it.
 */
export async function validateBirdConfigFile(path: string): Promise<void> {
  try {
    await run([BIRD_PROGRAM, '-p', '-c', path], { timeoutMs: 15_000 });
  } catch (e) {
    if (e instanceof KernelError && !e.timedOut && e.exitCode !== null)
      throw new BirdError('config', `BIRD refused the config: ${e.kernelMessage.replace(/^bird: /gm, '')}`);
    throw e;
  }
}

/** Writes `text` to `path` atomically (temp file + rename) with mode 0600. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/**
 * Renders `spec`, writes it to `<path>.new`, validates it with `bird -p`, then renames it over `path`. Nothing is
 * replaced when the spec or the text is refused. Returns the text.
 */
export async function writeBirdConfig(path: string, spec: BirdConfigSpec): Promise<string> {
  const text = renderBirdConfig(spec);
  const candidate = `${path}.new`;
  await writeFileAtomic(candidate, text);
  try {
    await validateBirdConfigFile(candidate);
  } catch (e) {
    await rm(candidate, { force: true });
    throw e;
  }
  await rename(candidate, path);
  return text;
}

/** Validates a spec completely (fields, then `bird -p` on the rendered text in `dir`) without touching a daemon. */
export async function checkBirdConfig(spec: BirdConfigSpec, dir: string): Promise<string> {
  const path = `${dir.replace(/\/+$/, '')}/check-${process.pid}-${Date.now()}.conf`;
  try {
    return await writeBirdConfig(path, spec);
  } finally {
    await rm(path, { force: true });
  }
}

// --- one instance ----------------------------------------------------------------------------------------------

export interface StartBirdOptions {
  /** Instance name: 1–32 of [a-z0-9_-]; names the files under runDir. */
  name: string;
  /** Namespace to run BIRD in; null = this process's own. */
  netns: NetnsRef;
  /** Absolute directory for the instance's files (created with mode 0700 if missing). */
  runDir: string;
  spec: BirdConfigSpec;
  /**
   * When a BIRD already answers on this instance's socket (e.g. the agent restarted, BIRD kept running):
   * 'fail' (default) throws; 'adopt' takes it over and reconfigures it to `spec` (no session flap);
   * 'replace' stops it (withdrawing first) and starts a new one.
   */
  ifRunning?: 'fail' | 'adopt' | 'replace';
  /** How long BIRD may take to answer its socket after the spawn (default 10 s). */
  startTimeoutMs?: number;
  /** Deadline of each control-socket question (default 5 s). */
  controlTimeoutMs?: number;
}

export interface BirdExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BirdHealth {
  /** The daemon answered `show status` within the deadline and is not shutting down. */
  healthy: boolean;
  /** The process exists (it may still be hung). */
  running: boolean;
  pid?: number;
  latencyMs?: number;
  status?: BirdStatus;
  /** Why it is not healthy: 'exited', 'timeout' (hung or overloaded), 'unreachable', 'reply', 'closed'. */
  problem?: string;
  error?: string;
}

export interface StopBirdOptions {
  /**
   * Withdraw every announcement (reconfigure with announceNothing(spec), wait until no BGP channel exports a route)
   * before shutting down, so peers move traffic on an UPDATE rather than on the session going away — some
   * routers keep a dead session's routes for a while (graceful restart). Default true.
   */
  withdrawFirst?: boolean;
  /** Most time to wait for the withdrawals to be exported (default 2 s). */
  withdrawTimeoutMs?: number;
  /**
   * Pause after the last withdrawal was queued, before the sessions close (default 100 ms): the UPDATEs leave on
   * BIRD's next loop iteration, and a peer should act on them before it sees the session end.
   */
  withdrawSettleMs?: number;
  /** Time given to `down` before SIGTERM, then again before SIGKILL (default 5 s). */
  timeoutMs?: number;
}

export interface ShowRoutesOptions {
  /** BIRD table name (default: BIRD's default tables). */
  table?: string;
  /** Only routes from this protocol. */
  protocol?: string;
  /** Only this network (exact), e.g. "203.0.113.0/24". */
  network?: string;
  /** Only routes this protocol exports (what a BGP session announces): `show route export NAME`. */
  exportedTo?: string;
}

/** A running (or adopted) BIRD. Operations are serialised: a reconfigure never races a stop. */
export class BirdInstance {
  readonly name: string;
  readonly netns: NetnsRef;
  readonly paths: BirdPaths;
  /** Resolves when the process is gone. */
  readonly exited: Promise<BirdExit>;
  /** True when this process found BIRD already running and took it over (it is not our child). */
  readonly adopted: boolean;
  private currentSpec: BirdConfigSpec;
  private configText: string;
  private exitInfo: BirdExit | undefined;
  private pidValue: number | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly controlTimeoutMs: number;

  /** @internal Use startBird. */
  constructor(init: {
    name: string;
    netns: NetnsRef;
    paths: BirdPaths;
    spec: BirdConfigSpec;
    configText: string;
    child?: ChildProcess;
    pid: number;
    controlTimeoutMs: number;
  }) {
    this.name = init.name;
    this.netns = init.netns;
    this.paths = init.paths;
    this.currentSpec = init.spec;
    this.configText = init.configText;
    this.adopted = init.child === undefined;
    this.pidValue = init.pid;
    this.controlTimeoutMs = init.controlTimeoutMs;
    this.exited = init.child ? watchChild(init.child) : watchPid(init.pid);
    void this.exited.then((e) => (this.exitInfo = e));
  }

  get pid(): number | undefined {
    return this.exitInfo ? undefined : this.pidValue;
  }

  /** The spec of the config BIRD was last told to load. */
  get spec(): BirdConfigSpec {
    return this.currentSpec;
  }

  /** Set once the process is gone. */
  get exitStatus(): BirdExit | undefined {
    return this.exitInfo;
  }

  /** Twin: `birdc -s SOCK COMMAND`. */
  command(command: string, opts: BirdCommandOptions = {}): Promise<BirdReply> {
    return birdCommand(this.paths.socket, command, { timeoutMs: this.controlTimeoutMs, ...opts });
  }

  /**
   * Renders and validates `spec` (`bird -p`), writes it atomically and tells BIRD to load it (`birdc configure`).
   * Returns 'unchanged' without asking BIRD when the rendered text is what it runs already. On a refused
   * config the running one stays, and so does its file.
   */
  reconfigure(spec: BirdConfigSpec): Promise<'reconfigured' | 'unchanged'> {
    return this.serial(() => this.reconfigureNow(spec));
  }

  private async reconfigureNow(spec: BirdConfigSpec): Promise<'reconfigured' | 'unchanged'> {
    const text = renderBirdConfig(spec);
    if (text === this.configText) {
      this.currentSpec = spec;
      return 'unchanged';
    }
    const previous = this.configText;
    await writeBirdConfig(this.paths.config, spec);
    try {
      const reply = await this.command('configure');
      // 3 Reconfigured, 4 Reconfiguration in progress (queued behind another), 19 Nothing to do.
      if (![3, 4, 19].includes(reply.code)) throw new BirdError('reply', `BIRD answered "configure" with ${reply.code} ${reply.message}`, reply.code);
    } catch (e) {
      // Keep the file telling the truth about what runs (unknown for an adopted daemon: then leave the new one).
      if (previous) await writeFileAtomic(this.paths.config, previous);
      throw e;
    }
    this.configText = text;
    this.currentSpec = spec;
    return 'reconfigured';
  }

  /** Twin: `birdc show status`. */
  async status(timeoutMs?: number): Promise<BirdStatus> {
    return parseBirdStatus(await this.command('show status', timeoutMs ? { timeoutMs } : {}));
  }

  /** Never throws: asks `show status` with a deadline (default 2 s) — a hung BIRD times out. */
  async health(timeoutMs = 2_000): Promise<BirdHealth> {
    if (this.exitInfo) return { healthy: false, running: false, problem: 'exited', error: describeExit(this.exitInfo) };
    const started = performance.now();
    const pid = this.pidValue!;
    try {
      const status = await this.status(timeoutMs);
      const latencyMs = performance.now() - started;
      return { healthy: status.state !== 'shutting-down', running: true, pid, latencyMs, status };
    } catch (e) {
      const kind = e instanceof BirdError ? e.kind : 'error';
      return { healthy: false, running: !this.exitInfo, pid, problem: this.exitInfo ? 'exited' : kind, error: (e as Error).message };
    }
  }

  async isAlive(timeoutMs = 2_000): Promise<boolean> {
    return (await this.health(timeoutMs)).healthy;
  }

  /** Twin: `birdc show protocols [all] [NAME]`. */
  async showProtocols(opts: { all?: boolean; name?: string } = {}): Promise<BirdProtocol[]> {
    const name = opts.name === undefined ? '' : ` ${checkProtocolNameOrInternal('name', opts.name)}`;
    return parseBirdProtocols(await this.command(`show protocols${opts.all ? ' all' : ''}${name}`));
  }

  /**
   * Twin: `birdc show route [NETWORK] [table T] [export E] [protocol P]`; a string argument is the table. An unknown
   * network is an empty list.
   */
  async showRoutes(tableOrOpts: string | ShowRoutesOptions = {}): Promise<BirdRoute[]> {
    const opts: ShowRoutesOptions = typeof tableOrOpts === 'string' ? { table: tableOrOpts } : tableOrOpts;
    const words = ['show route'];
    if (opts.network !== undefined) {
      if (typeof opts.network !== 'string' || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(opts.network))
        throw new KernelInputError('network', `must be a network like 203.0.113.0/24, got ${JSON.stringify(opts.network)}`);
      words.push(opts.network);
    }
    if (opts.table !== undefined) words.push(`table ${checkProtocolNameOrInternal('table', opts.table)}`);
    if (opts.exportedTo !== undefined) words.push(`export ${checkProtocolNameOrInternal('exportedTo', opts.exportedTo)}`);
    if (opts.protocol !== undefined) words.push(`protocol ${checkProtocolNameOrInternal('protocol', opts.protocol)}`);
    const reply = await this.command(words.join(' '), { allowErrors: true });
    if (reply.code === 8001) return []; // "Network not found"
    if (reply.code >= 8000) throw new BirdError('reply', `BIRD refused "${words.join(' ')}": ${reply.message}`, reply.code);
    return parseBirdRoutes(reply);
  }

  /**
   * Stops announcing: reconfigures with announceNothing(spec), then waits until no BGP channel exports anything (or
   * `timeoutMs`), plus a short pause for the UPDATEs to leave. The spec remembered stays the desired one.
   */
  withdrawAll(timeoutMs = 2_000, settleMs = 100): Promise<void> {
    return this.serial(async () => {
      const desired = this.currentSpec;
      await this.reconfigureNow(announceNothing(desired));
      this.currentSpec = desired;
      await this.waitForNoExports(timeoutMs, settleMs);
    });
  }

  private async waitForNoExports(timeoutMs: number, settleMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const protocols = await this.showProtocols({ all: true });
      const exporting = protocols.some((p) => p.proto === 'BGP' && p.established && (p.channels ?? []).some((c) => c.exported > 0));
      if (!exporting) break;
      await sleep(20);
    }
    // The channel counts drop when BIRD queues the withdrawals; the UPDATE leaves on its next loop iteration.
    await sleep(settleMs);
  }

  /**
   * Graceful stop: withdraw first (see StopBirdOptions), `birdc down` (BIRD closes its sessions with a Cease),
   * then SIGTERM and SIGKILL if it does not exit in time. Leaves no socket or pid file behind.
   */
  stop(opts: StopBirdOptions = {}): Promise<BirdExit> {
    return this.serial(() => this.stopNow(opts));
  }

  private async stopNow(opts: StopBirdOptions): Promise<BirdExit> {
    const timeoutMs = opts.timeoutMs ?? 5_000;
    if (!this.exitInfo) {
      if (opts.withdrawFirst ?? true) {
        try {
          const desired = this.currentSpec;
          await this.reconfigureNow(announceNothing(desired));
          this.currentSpec = desired;
          await this.waitForNoExports(opts.withdrawTimeoutMs ?? 2_000, opts.withdrawSettleMs ?? 100);
        } catch {
          // A BIRD that cannot withdraw (hung, dying) is still stopped below.
        }
      }
      try {
        await this.command('down');
      } catch {
        // Signals below.
      }
      if (!(await this.waitExit(timeoutMs))) {
        this.signal('SIGTERM');
        if (!(await this.waitExit(timeoutMs))) {
          this.signal('SIGKILL');
          await this.waitExit(timeoutMs);
        }
      }
    }
    const exit = await this.exited;
    await Promise.all([rm(this.paths.socket, { force: true }), rm(this.paths.pidFile, { force: true })]);
    return exit;
  }

  /** Sends a signal to the daemon (no-op once it exited). SIGKILL is how a supervisor ends a hung BIRD. */
  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo || this.pidValue === undefined) return;
    try {
      process.kill(this.pidValue, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  private async waitExit(ms: number): Promise<boolean> {
    if (this.exitInfo) return true;
    const timer = sleep(ms).then(() => false);
    return Promise.race([this.exited.then(() => true), timer]);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** The same config announcing nothing: no static routes and every BGP export 'none' (sessions stay up). */
export function announceNothing(spec: BirdConfigSpec): BirdConfigSpec {
  return { ...spec, staticRoutes: [], bgpPeers: spec.bgpPeers.map((p) => ({ ...p, export: 'none' as const })) };
}

/** Table and protocol names in commands: ours (kernel4, master4…) or a checked peer name. */
function checkProtocolNameOrInternal(field: string, v: unknown): string {
  if (typeof v === 'string' && /^(master[46]|device1|direct1|kernel[46]|static[46]|bfd1)$/.test(v)) return v;
  return checkProtocolName(field, v);
}

function describeExit(e: BirdExit): string {
  return e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`;
}

function watchChild(child: ChildProcess): Promise<BirdExit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** An adopted BIRD is not our child: poll its pid (unref'd, it never keeps the process alive). */
function watchPid(pid: number): Promise<BirdExit> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!processExists(pid)) {
        clearInterval(timer);
        resolve({ code: null, signal: null });
      }
    }, 200);
    timer.unref();
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a BIRD pid file if that process is alive and is a `bird`; undefined otherwise. */
async function livePidFromFile(pidFile: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
    return comm === 'bird' ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitPidGone(pid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (!processExists(pid)) return true;
    await sleep(20);
  }
  return !processExists(pid);
}

/**
 * Starts BIRD (`nsenter --net=/run/netns/NS bird -f -c CONF -s SOCK -P PIDFILE`, stderr to `<name>.log`) after
 * validating the rendered config with `bird -p`, and waits until it answers on its control socket. Throws
 * BirdError('process') with the log's tail when it exits or stays silent.
 *
 * BIRD runs in its own process group and does not keep Node's event loop alive: like any daemon it outlives an
 * agent crash (the announcements stay up while the data plane keeps working); the next agent adopts it.
 */
export async function startBird(opts: StartBirdOptions): Promise<BirdInstance> {
  const paths = birdPaths(opts.runDir, opts.name);
  if (opts.netns !== null) checkNetnsName('netns', opts.netns);
  const controlTimeoutMs = opts.controlTimeoutMs ?? 5_000;
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  // Checks the spec before anything else happens (KernelInputError names the field).
  renderBirdConfig(opts.spec);
  await mkdir(opts.runDir, { recursive: true, mode: 0o700 });

  const running = await existingInstance(paths, controlTimeoutMs);
  if (running) {
    const mode = opts.ifRunning ?? 'fail';
    if (mode === 'fail')
      throw new BirdError('process', `BIRD "${opts.name}" is already running (pid ${running.pid ?? '?'}, socket ${paths.socket})`);
    if (mode === 'adopt' && running.answering && running.pid !== undefined) {
      // configText '' forces a `configure`: the file on disk may be newer than what the daemon loaded.
      const instance = new BirdInstance({ name: opts.name, netns: opts.netns, paths, spec: opts.spec, configText: '', pid: running.pid, controlTimeoutMs });
      await instance.reconfigure(opts.spec);
      return instance;
    }
    // 'replace', or a hung/unknown daemon we cannot adopt: end it.
    if (running.answering) {
      try {
        await birdCommand(paths.socket, 'down', { timeoutMs: controlTimeoutMs });
      } catch {
        // Signals below.
      }
    }
    if (running.pid !== undefined && !(await waitPidGone(running.pid, 5_000))) {
      process.kill(running.pid, 'SIGKILL');
      await waitPidGone(running.pid, 5_000);
    } else if (running.pid === undefined && running.answering) {
      // No pid to watch: wait until it stops answering — an exiting BIRD unlinks its socket path, which would
      // delete the new daemon's socket if that were already bound.
      await waitSocketSilent(paths.socket, 5_000);
    }
  }
  await Promise.all([rm(paths.socket, { force: true }), rm(paths.pidFile, { force: true })]);

  const configText = await writeBirdConfig(paths.config, opts.spec);
  const log = await open(paths.log, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND, 0o600);
  let child: ChildProcess;
  try {
    const argv = inNetns(opts.netns, [BIRD_PROGRAM, '-f', '-c', paths.config, '-s', paths.socket, '-P', paths.pidFile]);
    // nsenter execs BIRD in place (no fork), so child.pid is BIRD's pid.
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log.fd, log.fd], detached: true, env: { ...process.env, LC_ALL: 'C' } });
  } finally {
    await log.close();
  }
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new BirdError('process', `could not spawn ${BIRD_PROGRAM}: ${(await spawnError).message}`);
  const instance = new BirdInstance({ name: opts.name, netns: opts.netns, paths, spec: opts.spec, configText, child, pid, controlTimeoutMs });

  const deadline = performance.now() + startTimeoutMs;
  for (;;) {
    if (instance.exitStatus) throw new BirdError('process', `BIRD "${opts.name}" ${describeExit(instance.exitStatus)} at start: ${await logTail(paths.log)}`);
    try {
      await birdCommand(paths.socket, 'show status', { timeoutMs: Math.max(100, Math.min(1_000, deadline - performance.now())) });
      return instance;
    } catch (e) {
      if (!(e instanceof BirdError)) throw e;
    }
    if (performance.now() > deadline) {
      instance.signal('SIGKILL');
      await instance.exited;
      throw new BirdError('process', `BIRD "${opts.name}" did not answer on ${paths.socket} within ${startTimeoutMs} ms: ${await logTail(paths.log)}`);
    }
    await sleep(20);
  }
}

/** A BIRD already bound to this instance's files: answering its socket, or alive per the pid file (maybe hung). */
async function existingInstance(paths: BirdPaths, timeoutMs: number): Promise<{ pid?: number; answering: boolean } | undefined> {
  const pid = await livePidFromFile(paths.pidFile);
  try {
    await birdCommand(paths.socket, 'show status', { timeoutMs: Math.min(timeoutMs, 2_000) });
    return { pid, answering: true };
  } catch (e) {
    if (!(e instanceof BirdError)) throw e;
    if (e.kind === 'unreachable' && pid === undefined) return undefined;
    return pid === undefined && e.kind === 'unreachable' ? undefined : { pid, answering: false };
  }
}

async function waitSocketSilent(socket: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    try {
      await birdCommand(socket, 'show status', { timeoutMs: 500 });
    } catch (e) {
      if (e instanceof BirdError && (e.kind === 'unreachable' || e.kind === 'closed')) return;
    }
    await sleep(20);
  }
  throw new BirdError('process', `the BIRD on ${socket} did not shut down within ${ms} ms`);
}

async function logTail(path: string, lines = 8): Promise<string> {
  try {
    const text = (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join(' | ');
    return text || '(log is empty)';
  } catch {
    return '(no log)';
  }
}

// --- supervision -----------------------------------------------------------------------------------------------

export type BirdSupervisorEvent =
  | { type: 'started'; pid: number; adopted: boolean; restarts: number }
  | { type: 'exited'; exit: BirdExit }
  | { type: 'unhealthy'; consecutive: number; problem: string; error: string }
  | { type: 'killing-hung'; pid: number }
  | { type: 'restart-scheduled'; delayMs: number; attempt: number }
  | { type: 'start-failed'; error: string };

export interface BirdSupervisorOptions extends Omit<StartBirdOptions, 'ifRunning'> {
  /** Health check period (default 5 s). */
  checkIntervalMs?: number;
  /** Deadline of one health check (default 2 s). */
  healthTimeoutMs?: number;
  /** Consecutive failed checks that make BIRD "hung": it is killed and restarted (default 3). */
  failuresBeforeRestart?: number;
  /** Restart delay: initialMs doubling per consecutive failure up to maxMs (default 500 ms … 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  onEvent?: (e: BirdSupervisorEvent) => void;
}

/**
 * Keeps one BIRD running with the latest spec: restarts it when it exits or stops answering (killed with SIGKILL
 * after `failuresBeforeRestart` failed checks), waiting with exponential backoff between attempts. The backoff
 * resets once a restarted BIRD passes a health check.
 */
export class BirdSupervisor {
  private current: BirdInstance | undefined;
  private desired: BirdConfigSpec;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private startFailures = 0;
  private restartCount = 0;
  private checking = false;
  private restarting: Promise<void> | undefined;

  constructor(private readonly opts: BirdSupervisorOptions) {
    this.desired = opts.spec;
  }

  /** The BIRD currently supervised (undefined while restarting). */
  get instance(): BirdInstance | undefined {
    return this.current && !this.current.exitStatus ? this.current : undefined;
  }

  /** Restarts so far (not counting the first start). */
  get restarts(): number {
    return this.restartCount;
  }

  get spec(): BirdConfigSpec {
    return this.desired;
  }

  /** First start: adopts a BIRD left running by a previous agent, else starts one. Throws if that fails. */
  async start(): Promise<BirdInstance> {
    this.stopping = false;
    const instance = await this.launch('adopt');
    this.scheduleChecks();
    return instance;
  }

  /**
   * Makes `spec` the desired config: applied now when BIRD runs (a refused spec throws and is not kept), or at
   * the next restart.
   */
  async reconfigure(spec: BirdConfigSpec): Promise<'reconfigured' | 'unchanged' | 'deferred'> {
    renderBirdConfig(spec);
    const instance = this.instance;
    if (!instance) {
      this.desired = spec;
      return 'deferred';
    }
    const result = await instance.reconfigure(spec);
    this.desired = spec;
    return result;
  }

  /** Ends supervision and stops BIRD (withdrawing first unless told otherwise). */
  async stop(opts: StopBirdOptions = {}): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.restartTimer);
    await this.restarting?.catch(() => undefined);
    await this.current?.stop(opts);
  }

  /**
   * Ends supervision and leaves BIRD running as it is, announcing what it announces: for a process handing over
   * to its next run, which adopts the daemon (start()) without a session flap.
   */
  async release(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.restartTimer);
    await this.restarting?.catch(() => undefined);
  }

  private emit(e: BirdSupervisorEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // An observer's bug must not stop supervision.
    }
  }

  private async launch(ifRunning: 'adopt' | 'replace'): Promise<BirdInstance> {
    const instance = await startBird({ ...this.opts, spec: this.desired, ifRunning });
    this.current = instance;
    this.failures = 0;
    if (ifRunning === 'replace') this.restartCount += 1;
    this.emit({ type: 'started', pid: instance.pid!, adopted: instance.adopted, restarts: this.restartCount });
    void instance.exited.then((exit) => {
      if (this.current !== instance || this.stopping) return;
      this.emit({ type: 'exited', exit });
      this.scheduleRestart();
    });
    return instance;
  }

  private scheduleChecks(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.check(), this.opts.checkIntervalMs ?? 5_000);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const instance = this.instance;
    if (this.checking || this.stopping || !instance) return;
    this.checking = true;
    try {
      const h = await instance.health(this.opts.healthTimeoutMs ?? 2_000);
      if (h.healthy) {
        this.failures = 0;
        this.startFailures = 0;
        return;
      }
      if (!h.running) return; // The exit handler restarts it.
      this.failures += 1;
      this.emit({ type: 'unhealthy', consecutive: this.failures, problem: h.problem ?? 'unknown', error: h.error ?? '' });
      if (this.failures >= (this.opts.failuresBeforeRestart ?? 3) && instance.pid !== undefined) {
        this.emit({ type: 'killing-hung', pid: instance.pid });
        instance.signal('SIGKILL'); // The exit handler restarts it.
      }
    } finally {
      this.checking = false;
    }
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    const initial = this.opts.backoff?.initialMs ?? 500;
    const max = this.opts.backoff?.maxMs ?? 30_000;
    const delayMs = Math.min(max, initial * 2 ** this.startFailures);
    this.startFailures += 1;
    this.emit({ type: 'restart-scheduled', delayMs, attempt: this.startFailures });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restarting = (async () => {
        if (this.stopping) return;
        try {
          // 'replace': whatever holds the socket now (a half-dead BIRD) is ended first.
          await this.launch('replace');
        } catch (e) {
          this.emit({ type: 'start-failed', error: (e as Error).message });
          this.scheduleRestart();
        }
      })();
    }, delayMs);
    this.restartTimer.unref();
  }
}
