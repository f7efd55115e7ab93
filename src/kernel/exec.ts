/**
 * Process spawning for the kernel layer: argv arrays only (never a shell), a timeout on every call, stderr captured
 * into typed errors, JSON output parsing. Every other module in src/kernel spawns through `run` so that costs can
 * be counted (`spawnStats`) — DESIGN.md §2 shows process spawns dominate the per-customer cost.
 */
import { spawn } from 'node:child_process';

/** Default time limit for one kernel command. Generous: a loaded 2-core VM can stall a spawn for a while. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** What a kernel message says, reduced to the cases callers branch on (idempotency needs exists / not-found). */
export type KernelErrorCode = 'EEXIST' | 'ENOENT' | 'EBUSY' | 'EINVAL' | 'EPERM' | 'EINTR' | 'TIMEOUT' | 'OTHER';

/** One failed command of a batch (`ip -batch`, `sysctl -w a b`…): which line, which command, what the kernel said. */
export interface BatchFailure {
  /** 1-based line of the batch (for sysctls: 1-based position of the key). */
  line: number;
  /** The command as it was sent (argv form, no program name). */
  command: readonly string[];
  message: string;
  code: KernelErrorCode;
}

/** A kernel command failed: it carries the command, the exit status and the kernel's own message. */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** The kernel's (or tool's) message, trimmed: the part worth showing to an operator. */
  readonly kernelMessage: string;
  readonly code: KernelErrorCode;
  readonly timedOut: boolean;
  /** For batches: each failed line. Empty for single commands. */
  readonly failures: readonly BatchFailure[];

  constructor(init: {
    argv: readonly string[];
    exitCode: number | null;
    signal?: NodeJS.Signals | null;
    stderr: string;
    kernelMessage?: string;
    timedOut?: boolean;
    failures?: readonly BatchFailure[];
    code?: KernelErrorCode;
  }) {
    const kernelMessage = (init.kernelMessage ?? init.stderr).trim() || `exit status ${init.exitCode ?? init.signal}`;
    super(`${init.argv.join(' ')}: ${kernelMessage}`);
    this.argv = init.argv;
    this.exitCode = init.exitCode;
    this.signal = init.signal ?? null;
    this.stderr = init.stderr;
    this.kernelMessage = kernelMessage;
    this.timedOut = init.timedOut ?? false;
    this.failures = init.failures ?? [];
    this.code = init.code ?? (this.timedOut ? 'TIMEOUT' : classifyKernelMessage(kernelMessage));
  }
}

/** Bad input to a kernel function (caught before anything is spawned): names the field and the reason. */
export class KernelInputError extends Error {
  override readonly name = 'KernelInputError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/**
 * Maps the messages iproute2 / nft / sysctl / ethtool print for netlink errnos to a code. Kept textual because
 * the tools print strerror() text, not numbers; LC_ALL=C (see `run`) keeps the text stable.
 */
export function classifyKernelMessage(message: string): KernelErrorCode {
  if (/File exists/i.test(message)) return 'EEXIST';
  if (
    /No such process|No such file or directory|No such device|Cannot find device|Address not found|FIB table does not exist|does not exist|Cannot stat|not found/i.test(
      message,
    )
  )
    return 'ENOENT';
  if (/Device or resource busy/i.test(message)) return 'EBUSY';
  if (/Dump was interrupted/i.test(message)) return 'EINTR';
  if (/Operation not permitted|Permission denied/i.test(message)) return 'EPERM';
  if (/Invalid argument|is expected rather than|garbage|Error: .*invalid/i.test(message)) return 'EINVAL';
  return 'OTHER';
}

export interface RunOptions {
  /** Written to the process's stdin, then stdin is closed. */
  stdin?: string;
  timeoutMs?: number;
  /** Exit codes that do not throw (the caller inspects stderr itself, e.g. batches with per-line errors). */
  okExitCodes?: readonly number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Counters over every spawn made through `run`: what a customer set-up costs, measured not guessed. */
export interface SpawnStats {
  spawns: number;
  totalMs: number;
  /** Spawns per program name (argv[0]). */
  byProgram: Record<string, number>;
}

const stats: SpawnStats = { spawns: 0, totalMs: 0, byProgram: {} };

/** A copy of the spawn counters since the last reset. */
export function spawnStats(): SpawnStats {
  return { spawns: stats.spawns, totalMs: stats.totalMs, byProgram: { ...stats.byProgram } };
}

export function resetSpawnStats(): void {
  stats.spawns = 0;
  stats.totalMs = 0;
  stats.byProgram = {};
}

/**
 * Runs `argv[0]` with `argv[1..]` (looked up in PATH, never through a shell). Resolves with stdout/stderr when the
 * exit code is 0 (or in `okExitCodes`); otherwise rejects with a KernelError carrying the command and stderr.
 * A process that outlives `timeoutMs` is killed (SIGKILL) and reported with `timedOut`.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0 || !argv[0]) throw new KernelInputError('argv', 'must name a program');
  for (const [i, a] of argv.entries()) {
    if (typeof a !== 'string' || a.includes('\0')) throw new KernelInputError(`argv[${i}]`, 'must be a string without NUL');
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();
  const program = argv[0];
  return new Promise<RunResult>((resolve, reject) => {
    // LC_ALL=C: error texts are classified (classifyKernelMessage), so they must not be translated.
    const child = spawn(program, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stats.spawns += 1;
      stats.totalMs += performance.now() - started;
      stats.byProgram[program] = (stats.byProgram[program] ?? 0) + 1;
      fn();
    };
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A tool that exits early (e.g. `ip -batch` on a fatal error) closes its stdin: EPIPE is not our error.
    child.stdin.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) =>
      finish(() =>
        reject(
          new KernelError({
            argv,
            exitCode: null,
            stderr: '',
            kernelMessage: e.code === 'ENOENT' ? `program not found: ${program}` : e.message,
            code: 'OTHER',
          }),
        ),
      ),
    );
    child.on('close', (code, signal) =>
      finish(() => {
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) {
          reject(
            new KernelError({ argv, exitCode: code, signal, stderr, timedOut: true, kernelMessage: `timed out after ${timeoutMs} ms` }),
          );
        } else if (code === 0 || (code !== null && opts.okExitCodes?.includes(code))) {
          resolve({ stdout, stderr, exitCode: code });
        } else {
          reject(new KernelError({ argv, exitCode: code, signal, stderr }));
        }
      }),
    );
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Runs a command whose stdout is one JSON document (`ip -j …`, `nft -j list …`) and parses it. */
export async function runJson<T = unknown>(argv: readonly string[], opts: RunOptions = {}): Promise<T> {
  const { stdout } = await run(argv, opts);
  return parseJson<T>(stdout, argv);
}

function parseJson<T>(text: string, argv: readonly string[]): T {
  // `ip -j` prints nothing at all for some empty dumps; treat that as an empty list.
  if (text.trim() === '') return [] as T;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new KernelError({ argv, exitCode: 0, stderr: '', kernelMessage: `unparsable JSON output: ${(e as Error).message}` });
  }
}
