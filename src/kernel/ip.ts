/**
 * Runner for link/address/route/neighbour/rule operations on ONE namespace. Every object module (links, addresses,
 * routes, rules, neighbours) builds `IpOp`s; callers either run one op (`runIpOps(ns, [op])`) or gather many.
 *
 * An op carries its iproute2 twin (`args`: logs, plans, doc comments) and, for the kinds the agent reconciles, a
 * netlink request (`nl`) that runIpOps sends in-process on the namespace's rtnetlink socket (netlink/socket.ts) —
 * no process at all (DESIGN.md §2: spawns dominated the per-customer cost). Ops without `nl` (e.g. `ip netns add`,
 * bridges in the lab) still run as one `ip -n NS -force -batch -` process.
 *
 * Contract of an IpOp: running it twice has the same effect as once (replace, set, delete-if-present,
 * add-if-missing). That is what makes the batch fallback below safe.
 */
import { classifyKernelMessage, KernelError, KernelInputError, run, type BatchFailure, type KernelErrorCode } from './exec.js';
import { linkByNameBody, RTM } from './netlink/codec.js';
import { closeNetnsFd, NetlinkRequestError, openNetnsFd, rtnlBatch, rtnlGet } from './netlink/socket.js';
import { checkNetnsName } from './validate.js';

/** A named network namespace, or null for the namespace of this process (see netns.ts). */
export type NetnsRef = string | null;

/** `ip [-n NS]` — the iproute2 prefix for a namespace. */
export function ipArgv(ns: NetnsRef): string[] {
  return ns === null ? ['ip'] : ['ip', '-n', checkNetnsName('netns', ns)];
}

export interface IpOp {
  /** Arguments after `ip [-n NS]`, e.g. ['route', 'replace', '203.0.113.0/24', …]. */
  readonly args: readonly string[];
  /**
   * Errors that mean "already as wanted": ENOENT for delete-if-present, EEXIST for add-if-missing. Such an op
   * ends as 'unchanged' instead of failing.
   */
  readonly tolerate?: readonly KernelErrorCode[];
  /**
   * Run under `ip -6` (a batch line cannot say it): needed where the arguments do not show the family, e.g. an
   * IPv6 policy rule without addresses. runIpOps runs such ops in a batch of their own.
   */
  readonly family?: 6;
  /** The same operation as one rtnetlink request, sent in-process (see NlRequest). */
  readonly nl?: NlRequest;
}

/** What `NlRequest.build` may ask for: names resolved in the op's namespace, and open namespace fds. */
export interface NlContext {
  ifindex(dev: string): number;
  netnsFd(name: string): number;
}

/** One rtnetlink request: message type, flags beyond REQUEST|ACK, and the body (fixed header + attributes). */
export interface NlRequest {
  readonly type: number;
  readonly flags: number;
  /** Devices whose ifindexes `build` needs (resolved in the op's namespace; a missing one fails the op like iproute2's "Cannot find device"). */
  readonly devs?: readonly string[];
  /** Namespaces whose fds `build` needs (a veth peer created directly in its namespace). */
  readonly netnsFds?: readonly string[];
  /** True for ops that add, delete or rename links: later ops re-resolve names. */
  readonly changesLinks?: boolean;
  build(ctx: NlContext): Buffer;
}

/** Per op: 'done' (the command succeeded) or 'unchanged' (it failed with a tolerated error, e.g. already absent). */
export type IpOpOutcome = 'done' | 'unchanged';

/** A batch line is tokenised by iproute2: whitespace, quotes, backslashes and '#' would change the command. */
const BATCH_SAFE_RE = /^[A-Za-z0-9_.:\/@+=,%-]+$/;

function checkOp(op: IpOp, i: number): void {
  if (op.args.length === 0) throw new KernelInputError(`ops[${i}]`, 'has no arguments');
  for (const a of op.args) {
    if (!BATCH_SAFE_RE.test(a)) throw new KernelInputError(`ops[${i}]`, `argument ${JSON.stringify(a)} is not batch-safe`);
  }
}

/**
 * Twin: `ip -n NS -force -batch -` with one line per op (a single op runs as plain argv). Every op is attempted
 * (-force); tolerated errors are swallowed; the rest are thrown together as one KernelError whose `failures`
 * name each failed line and the kernel's message.
 *
 * Some iproute2 commands (`ip neigh del` of a missing entry, parse errors) exit the whole batch instead of
 * reporting the line. Then we cannot tell which ops ran, so every op is re-run on its own — correct because ops
 * are idempotent, and only paid on that rare path.
 */
export async function runIpOps(ns: NetnsRef, ops: readonly IpOp[]): Promise<IpOpOutcome[]> {
  ops.forEach(checkOp);
  if (ops.length === 0) return [];
  if (ops.every((op) => op.nl)) return runNetlinkOps(ns, ops);
  if (ops.some((op) => op.nl)) return runMixed(ns, ops);
  return runIproute2(ns, ops);
}

/**
 * Ops with and without netlink requests, in order: consecutive runs of one kind go together; every op is attempted
 * (like -force) and the failures of all groups are thrown together, numbered by their position in `ops`.
 */
async function runMixed(ns: NetnsRef, ops: readonly IpOp[]): Promise<IpOpOutcome[]> {
  const outcomes: IpOpOutcome[] = [];
  const failures: BatchFailure[] = [];
  for (let start = 0; start < ops.length; ) {
    let end = start + 1;
    while (end < ops.length && !!ops[end]!.nl === !!ops[start]!.nl) end++;
    const group = ops.slice(start, end);
    try {
      outcomes.push(...(await (group[0]!.nl ? runNetlinkOps(ns, group) : runIproute2(ns, group))));
    } catch (e) {
      if (!(e instanceof KernelError) || e.failures.length === 0) throw e;
      outcomes.push(...group.map(() => 'done' as const));
      failures.push(...e.failures.map((f) => ({ ...f, line: f.line + start })));
    }
    start = end;
  }
  if (failures.length > 0) throw batchError([...ipArgv(ns), '-batch', '-'], 1, '', failures);
  return outcomes;
}

/**
 * Runs an in-process read (a netlink dump), reporting a refusal as the KernelError its iproute2 twin `argsTwin`
 * would have raised — callers of the list functions handle one error type.
 */
export function netlinkRead<T>(ns: NetnsRef, argsTwin: readonly string[], read: () => Promise<T>): Promise<T> {
  return asTwinError([...ipArgv(ns), ...argsTwin], read);
}

/**
 * Runs an in-process kernel call, reporting a netlink refusal (NetlinkRequestError) as the KernelError its
 * command-line twin `argv` would have raised; other errors pass unchanged.
 */
export async function asTwinError<T>(argv: readonly string[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof NetlinkRequestError)) throw e;
    throw new KernelError({ argv: [...argv], exitCode: 1, stderr: '', kernelMessage: e.kernelMessage, code: e.code });
  }
}

/** The ifindex of `dev` in `ns` (RTM_GETLINK by name), undefined when there is no such link. */
export async function linkIndex(ns: NetnsRef, dev: string): Promise<number | undefined> {
  const reply = await rtnlGet(ns, RTM.GETLINK, linkByNameBody(dev));
  return reply ? reply.readInt32LE(4) : undefined;
}

/**
 * Sends each op's netlink request in order on the namespace's socket. Every op is attempted; tolerated errors make
 * an op 'unchanged'; the others are thrown together as one KernelError whose `failures` name each op (1-based,
 * its iproute2 twin) and the kernel's message — the same shape as an `ip -batch` failure.
 *
 * Requests are pipelined (rtnlBatch) in groups: a group ends after an op that adds or deletes links, because a
 * later op may name a link that op made; device names are resolved per group (one RTM_GETLINK per new name).
 */
async function runNetlinkOps(ns: NetnsRef, ops: readonly IpOp[]): Promise<IpOpOutcome[]> {
  const indexes = new Map<string, number | undefined>();
  const outcomes: IpOpOutcome[] = ops.map(() => 'done');
  const failures: BatchFailure[] = [];
  const fail = (i: number, e: NetlinkRequestError) => {
    const op = ops[i]!;
    if (op.tolerate?.includes(e.code)) outcomes[i] = 'unchanged';
    else failures.push({ line: i + 1, command: op.args, message: e.kernelMessage, code: e.code });
  };
  for (let start = 0; start < ops.length; ) {
    let end = start;
    while (end < ops.length && !ops[end]!.nl!.changesLinks) end++;
    end = Math.min(end + 1, ops.length);
    const group = ops.slice(start, end);
    const missing = [...new Set(group.flatMap((op) => op.nl!.devs ?? []))].filter((d) => !indexes.has(d));
    const found = await rtnlBatch(ns, missing.map((dev) => ({ type: RTM.GETLINK, flags: 0, body: linkByNameBody(dev) })));
    missing.forEach((dev, k) => {
      const r = found[k];
      if (r instanceof NetlinkRequestError && r.code !== 'ENOENT') throw r;
      indexes.set(dev, r instanceof Buffer ? r.readInt32LE(4) : undefined);
    });
    const fdNames = [...new Set(group.flatMap((op) => op.nl!.netnsFds ?? []))];
    const fds = new Map<string, number>();
    try {
      for (const name of fdNames) fds.set(name, openNetnsFd(name));
      const sent: number[] = [];
      const reqs = [];
      for (const [k, op] of group.entries()) {
        const absent = (op.nl!.devs ?? []).find((d) => indexes.get(d) === undefined);
        if (absent !== undefined) {
          fail(start + k, new NetlinkRequestError(19, `Cannot find device "${absent}"`));
          continue;
        }
        sent.push(start + k);
        reqs.push({ type: op.nl!.type, flags: op.nl!.flags, body: op.nl!.build({ ifindex: (dev) => indexes.get(dev)!, netnsFd: (name) => fds.get(name)! }) });
      }
      const answers = await rtnlBatch(ns, reqs);
      answers.forEach((a, k) => a instanceof NetlinkRequestError && fail(sent[k]!, a));
    } catch (e) {
      if (!(e instanceof NetlinkRequestError)) throw e;
      // The namespace of a veth peer does not exist: every op of the group that needed it fails.
      for (let k = start; k < end; k++) fail(k, e);
    } finally {
      for (const fd of fds.values()) closeNetnsFd(fd);
    }
    if (group.some((op) => op.nl!.changesLinks)) indexes.clear();
    start = end;
  }
  if (failures.length > 0) {
    // One op reads like a single `ip` command's error; several like a batch's.
    if (ops.length === 1) {
      const f = failures[0]!;
      throw new KernelError({ argv: [...ipArgv(ns), ...f.command], exitCode: 1, stderr: '', kernelMessage: f.message, code: f.code, failures });
    }
    throw batchError([...ipArgv(ns), '-batch', '-'], 1, '', failures);
  }
  return outcomes;
}

/** The iproute2 path: one `ip -force -batch` process for ops that have no netlink request. */
async function runIproute2(ns: NetnsRef, ops: readonly IpOp[]): Promise<IpOpOutcome[]> {
  if (ops.some((op) => op.family === 6) && ops.some((op) => op.family !== 6)) {
    // Two batches, one per family; outcomes go back to the ops' positions.
    const v6 = ops.filter((op) => op.family === 6);
    const other = ops.filter((op) => op.family !== 6);
    const [o6, oOther] = [await runIproute2(ns, v6), await runIproute2(ns, other)];
    let i6 = 0;
    let iOther = 0;
    return ops.map((op) => (op.family === 6 ? o6[i6++]! : oOther[iOther++]!));
  }
  const global = ops[0]!.family === 6 ? ['-6'] : [];
  if (ops.length === 1) return [await runOne(ns, ops[0]!)];
  const argv = [...ipArgv(ns), ...global, '-force', '-batch', '-'];
  const stdin = ops.map((op) => op.args.join(' ')).join('\n') + '\n';
  const res = await run(argv, { stdin, okExitCodes: [1, 2, 255] });
  if (res.exitCode === 0) return ops.map(() => 'done');

  const { byLine, unattributed } = parseBatchStderr(res.stderr);
  if (unattributed.length > 0 || res.exitCode !== 1) return runEachAlone(ns, ops);

  const outcomes: IpOpOutcome[] = ops.map(() => 'done');
  const failures: BatchFailure[] = [];
  for (const [line, message] of byLine) {
    const op = ops[line - 1];
    if (!op) return runEachAlone(ns, ops); // a line number we did not send: do not guess
    const code = classifyKernelMessage(message);
    if (op.tolerate?.includes(code)) outcomes[line - 1] = 'unchanged';
    else failures.push({ line, command: op.args, message, code });
  }
  if (failures.length > 0) throw batchError(argv, res.exitCode, res.stderr, failures);
  return outcomes;
}

async function runOne(ns: NetnsRef, op: IpOp): Promise<IpOpOutcome> {
  try {
    await run([...ipArgv(ns), ...(op.family === 6 ? ['-6'] : []), ...op.args]);
    return 'done';
  } catch (e) {
    if (!(e instanceof KernelError) || e.timedOut) throw e;
    if (op.tolerate?.includes(e.code)) return 'unchanged';
    // Same shape as a batch failure, so callers attribute errors one way.
    throw new KernelError({ argv: e.argv, exitCode: e.exitCode, stderr: e.stderr, kernelMessage: e.kernelMessage, code: e.code,
      failures: [{ line: 1, command: op.args, message: e.kernelMessage, code: e.code }] });
  }
}

async function runEachAlone(ns: NetnsRef, ops: readonly IpOp[]): Promise<IpOpOutcome[]> {
  const outcomes: IpOpOutcome[] = [];
  const failures: BatchFailure[] = [];
  for (const [i, op] of ops.entries()) {
    try {
      outcomes.push(await runOne(ns, op));
    } catch (e) {
      if (!(e instanceof KernelError) || e.timedOut) throw e;
      outcomes.push('done');
      failures.push({ line: i + 1, command: op.args, message: e.kernelMessage, code: e.code });
    }
  }
  if (failures.length > 0) throw batchError([...ipArgv(ns), '-batch', '-'], 1, '', failures);
  return outcomes;
}

function batchError(argv: readonly string[], exitCode: number | null, stderr: string, failures: BatchFailure[]): KernelError {
  const kernelMessage = failures.map((f) => `line ${f.line} (${f.command.join(' ')}): ${f.message}`).join('; ');
  return new KernelError({ argv, exitCode, stderr, failures, kernelMessage, code: failures.length === 1 ? failures[0]!.code : 'OTHER' });
}

/** iproute2 prints the kernel's message, then `Command failed -:N` for the line it belonged to. */
export function parseBatchStderr(stderr: string): { byLine: Map<number, string>; unattributed: string[] } {
  const byLine = new Map<number, string>();
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m) {
      byLine.set(Number(m[1]), pending.join('\n').trim() || 'failed');
      pending = [];
    } else if (line.trim()) pending.push(line.trim());
  }
  return { byLine, unattributed: pending };
}
