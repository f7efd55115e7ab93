/**
 * Network namespaces: create / delete-if-present / list / exists, running a tool inside one, and sysctls.
 *
 * A namespace is named (a bind mount under /run/netns, as `ip netns add` makes it) so that iproute2 (`ip -n NS`)
 * and nsenter (`--net=/run/netns/NS`) can both enter it. Functions that act on "some netns" take a NetnsRef:
 * a name, or null for the namespace this process runs in — never implicit, so the agent's host netns is always
 * stated (DESIGN.md §6: the lab runs agents in named host namespaces).
 *
 * No process is spawned here (a spawn costs milliseconds; a customer needs several of these): namespaces are made
 * and removed in-process by the addon exactly as iproute2 does it (native/nsfs.cc), and sysctls are files under
 * /proc/sys/net opened with the thread inside the namespace (withNetns). A failure is a KernelError whose argv is
 * the iproute2/sysctl twin of what failed, so an operator can retry it by hand.
 */
import { closeSync, openSync, readFileSync, statfsSync, writeSync, constants as fsConstants } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { addNamedNetns, deleteNamedNetns, isNativeError, withNetns } from './bpf/index.js';
import { KernelError, KernelInputError, type BatchFailure, type KernelErrorCode } from './exec.js';
import type { IpOp, NetnsRef } from './ip.js';
import { checkNetnsName } from './validate.js';
import { releaseNetns } from './netlink/socket.js';
import { forgetNftVersions } from './nft.js';
import { devconfKey, netconfKey, readDevconf, readNetconf, writeDevconf, type DevconfFailure } from './devconf.js';

export type { NetnsRef } from './ip.js';

/** Where iproute2 keeps the bind mounts of named namespaces. */
export const NETNS_RUN_DIR = '/run/netns';

export function netnsPath(name: string): string {
  return `${NETNS_RUN_DIR}/${checkNetnsName('netns', name)}`;
}

/**
 * The argv that runs `argv` inside `ns`. nsenter only switches the network namespace (cheaper than `ip netns exec`,
 * which also unshares the mount namespace and remounts /sys); none of our tools needs the netns's /sys view.
 */
export function inNetns(ns: NetnsRef, argv: readonly string[]): string[] {
  return ns === null ? [...argv] : ['nsenter', `--net=${netnsPath(ns)}`, '--', ...argv];
}

/**
 * Twin: `ip netns add NAME`, tolerating an existing one, as an op for `runIpOps(null, ops)` (one `ip -batch` spawn
 * for many namespaces, as the lab uses it). createNetns does the same in-process, without any spawn.
 */
export function netnsAddOp(name: string): IpOp {
  return { args: ['netns', 'add', checkNetnsName('netns', name)], tolerate: ['EEXIST'] };
}

/** Twin: `ip netns delete NAME`, tolerating a missing one. Batchable like netnsAddOp. */
export function netnsDeleteOp(name: string): IpOp {
  return { args: ['netns', 'delete', checkNetnsName('netns', name)], tolerate: ['ENOENT'] };
}

/**
 * Twin: `ip netns add NAME`, tolerating an existing one, in-process (native/nsfs.cc: /run/netns made a shared mount
 * once, the file created, a new netns unshared on a thread of its own and bind-mounted onto it). Idempotent: a live
 * namespace of that name is left as it is; a bare file left by a creator that died half-way gets a namespace.
 */
export async function createNetns(name: string): Promise<void> {
  checkNetnsName('netns', name);
  // Sockets we still hold under this name belong to a namespace deleted behind our back: they would keep it alive.
  releaseNetns(name);
  await nativeKernelCallAsync(['ip', 'netns', 'add', name], () => addNamedNetns(NETNS_RUN_DIR, name));
}

/**
 * Twin: `ip netns delete NAME` (umount -l + unlink), in-process. Succeeds when the namespace does not exist. Its
 * links, routes and nft tables go with it once nothing else holds it.
 */
export async function deleteNetnsIfPresent(name: string): Promise<void> {
  checkNetnsName('netns', name);
  // Our cached netlink socket in that namespace would keep it (and its veth pair) alive after the name is gone.
  releaseNetns(name);
  forgetNftVersions(name);
  await yieldToEventLoop();
  nativeKernelCall(['ip', 'netns', 'delete', name], () => deleteNamedNetns(NETNS_RUN_DIR, name));
}

/**
 * Twin: `ip netns list` (which reads the same directory). Names starting with `prefix`, sorted. Reading the
 * directory costs no spawn.
 */
export async function listNetns(prefix = ''): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(NETNS_RUN_DIR);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.filter((n) => n.startsWith(prefix)).sort();
}

/** statfs f_type of a namespace file (NSFS_MAGIC, "nsfs"): what a bind-mounted netns file reports. */
const NSFS_MAGIC = 0x6e736673;

/**
 * Twin: `ip netns exec NAME true` succeeding — the name exists AND is a namespace. A creator killed between making
 * the file and bind-mounting the namespace on it leaves a bare file that `ip netns list` shows but nobody can
 * enter (setns: EINVAL); it counts as absent, so the caller creates it (createNetns replaces such a file).
 */
export async function netnsExists(name: string): Promise<boolean> {
  try {
    // Synchronous: a statfs of a mount point is microseconds, while the promise version's hop through the thread
    // pool cost 0.3 ms per customer pass (a cold start checks 1000 names).
    return statfsSync(netnsPath(name)).type === NSFS_MAGIC;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

// --- sysctls ---------------------------------------------------------------------------------------------------

/**
 * Dotted sysctl key under the per-namespace trees we set (`net.ipv4.conf.ot-a1.send_redirects`). Checked before it
 * becomes a /proc/sys path: dotted words only (so no '..' and no '/'), and only net.ipv4 / net.ipv6 / net.core —
 * the /proc/sys/net files that belong to the namespace they are opened in. Interface names are safe here (no '.',
 * see checkIfname).
 */
const SYSCTL_KEY_RE = /^net\.(ipv4|ipv6|core)(\.[A-Za-z0-9_-]+)+$/;

function checkSysctlKey(key: string): string {
  if (typeof key !== 'string' || !SYSCTL_KEY_RE.test(key))
    throw new KernelInputError(`sysctl key ${JSON.stringify(key)}`, 'must be dotted words of [A-Za-z0-9_-] under net.ipv4, net.ipv6 or net.core');
  return key;
}

function checkSysctlValue(key: string, v: unknown): string {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(s))
    throw new KernelInputError(`sysctl ${key}`, `value must be an integer or a word of [A-Za-z0-9_.:-], got ${JSON.stringify(v)}`);
  return s;
}

const sysctlPath = (key: string) => `/proc/sys/${key.replaceAll('.', '/')}`;

/** The twin that names a sysctl operation in errors: `ip netns exec NS sysctl ARGS…` (or plain sysctl for ns null). */
const sysctlArgv = (ns: NetnsRef, args: readonly string[]) => (ns === null ? ['sysctl', ...args] : ['ip', 'netns', 'exec', ns, 'sysctl', ...args]);

/**
 * Twin: `ip netns exec NS sysctl -w k1=v1 k2=v2 …`, in-process, no spawn: a few per-device IPv4 settings by one
 * rtnetlink request per device (devconf.ts says which and why), every other key by opening its /proc/sys/net file
 * with this thread inside NS (withNetns; the open binds the file to that namespace) and writing it. All keys are
 * attempted; failures are reported together (KernelError.failures, one per key, code ENOENT for a missing key,
 * EINVAL for a value the kernel refuses).
 */
export async function setSysctls(ns: NetnsRef, values: Readonly<Record<string, string | number>>): Promise<void> {
  const entries = Object.entries(values).map(([k, v]) => [checkSysctlKey(k), checkSysctlValue(k, v)] as const);
  if (entries.length === 0) return;
  const argv = sysctlArgv(ns, ['-w', ...entries.map(([k, v]) => `${k}=${v}`)]);
  const position = new Map(entries.map(([k], i) => [k, i]));
  const viaNetlink = entries.flatMap(([k, v]) => {
    const d = devconfKey(k, v);
    return d ? [[d, v] as const] : [];
  });
  const onNetlink = new Set(viaNetlink.map(([d]) => d.key));
  const failures = (await writeDevconf(ns, viaNetlink)).map((f) => devconfFailure(position.get(f.key)!, f));
  const rest = entries.filter(([k]) => !onNetlink.has(k));
  if (rest.length > 0) {
    await yieldToEventLoop();
    failures.push(
      ...inNetnsSync(ns, argv, () =>
        rest.flatMap(([k, v]): BatchFailure[] => {
          try {
            const fd = openSync(sysctlPath(k), fsConstants.O_WRONLY);
            try {
              writeSync(fd, v);
            } finally {
              closeSync(fd);
            }
            return [];
          } catch (e) {
            return [sysctlFailure(position.get(k)!, k, e)];
          }
        }),
      ),
    );
  }
  if (failures.length) throw sysctlError(argv, failures.sort((a, b) => a.line - b.line));
}

/**
 * Twin: `ip netns exec NS sysctl -n k1 k2 …`, in-process like setSysctls; `all`/`default` forwarding and rp_filter
 * come from RTM_GETNETCONF (devconf.ts: netconfKey). Values as the kernel prints them
 * (multi-value sysctls keep their tabs). Any failing key fails the read (KernelError.failures names each).
 */
export async function readSysctls(ns: NetnsRef, keys: readonly string[]): Promise<Record<string, string>> {
  for (const k of keys) checkSysctlKey(k);
  const out: Record<string, string> = {};
  if (keys.length === 0) return out;
  const argv = sysctlArgv(ns, ['-n', ...keys]);
  const position = new Map(keys.map((k, i) => [k, i]));
  const viaNetlink = keys.flatMap((k) => devconfKey(k) ?? []);
  const viaNetconf = keys.flatMap((k) => netconfKey(k) ?? []);
  const [fromNetlink, fromNetconf] = [await readDevconf(ns, viaNetlink), await readNetconf(ns, viaNetconf)];
  Object.assign(out, fromNetlink.values, fromNetconf.values);
  const failures = [...fromNetlink.failures, ...fromNetconf.failures].map((f) => devconfFailure(position.get(f.key)!, f));
  const onNetlink = new Set([...viaNetlink, ...viaNetconf].map((d) => d.key));
  const rest = keys.filter((k) => !onNetlink.has(k));
  if (rest.length > 0) {
    await yieldToEventLoop();
    failures.push(
      ...inNetnsSync(ns, argv, () =>
        rest.flatMap((k): BatchFailure[] => {
          try {
            out[k] = readFileSync(sysctlPath(k), 'utf8').trim();
            return [];
          } catch (e) {
            return [sysctlFailure(position.get(k)!, k, e)];
          }
        }),
      ),
    );
  }
  if (failures.length) throw sysctlError(argv, failures.sort((a, b) => a.line - b.line));
  // In the order asked for, as sysctl prints them.
  return Object.fromEntries(keys.map((k) => [k, out[k]!]));
}

/** A key rtnetlink refused, worded as its /proc/sys file's failure (a missing device reads as a missing file). */
function devconfFailure(i: number, f: DevconfFailure): BatchFailure {
  const missing = f.error.code === 'ENOENT';
  return { line: i + 1, command: [f.key], message: `${sysctlPath(f.key)}: ${missing ? 'No such file or directory' : f.error.kernelMessage}`, code: f.error.code };
}

function sysctlFailure(i: number, key: string, e: unknown): BatchFailure {
  const err = e as NodeJS.ErrnoException;
  return { line: i + 1, command: [key], message: `${sysctlPath(key)}: ${err.message.replace(/^\w+: /, '')}`, code: errnoCode(err.code) };
}

function sysctlError(argv: readonly string[], failures: BatchFailure[]): KernelError {
  return new KernelError({
    argv,
    exitCode: null,
    stderr: '',
    failures,
    kernelMessage: failures.map((f) => `${f.command[0] ?? '?'}: ${f.message}`).join('; '),
    code: failures.every((f) => f.code === failures[0]!.code) ? failures[0]!.code : 'OTHER',
  });
}

// --- native calls ----------------------------------------------------------------------------------------------

/**
 * The in-process kernel calls are synchronous (each well under a few ms), but callers wrote loops over them as over
 * I/O: `while (!done) await replaceNftTable(…)` or a reconcile of 1000 customers. Without a turn of the event loop
 * per call those would starve timers, child-process exits and store watches until the whole loop ends. One
 * setImmediate per call costs microseconds.
 */
export function yieldToEventLoop(): Promise<void> {
  return nextTurn();
}

const KERNEL_CODES: readonly string[] = ['EEXIST', 'ENOENT', 'EBUSY', 'EINVAL', 'EPERM', 'EINTR'];

/** An errno name as the KernelErrorCode callers branch on (EACCES counts as EPERM). */
export function errnoCode(code: string | undefined): KernelErrorCode {
  if (code === 'EACCES') return 'EPERM';
  return code !== undefined && KERNEL_CODES.includes(code) ? (code as KernelErrorCode) : 'OTHER';
}

/** An addon errno error as a KernelError named by `argv` (the iproute2/nft twin of the call); anything else as is. */
export function asKernelError(e: unknown, argv: readonly string[]): unknown {
  if (!isNativeError(e)) return e;
  return new KernelError({ argv, exitCode: null, stderr: '', kernelMessage: e.message, code: errnoCode(e.code) });
}

/** Runs a synchronous addon call; its errno errors become KernelErrors (asKernelError). */
export function nativeKernelCall<T>(argv: readonly string[], fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asKernelError(e, argv);
  }
}

/** Awaits an asynchronous addon call; its errno errors become KernelErrors (asKernelError). */
export async function nativeKernelCallAsync<T>(argv: readonly string[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asKernelError(e, argv);
  }
}

/**
 * fn() with this thread inside `ns` (null: where it is). fn must be synchronous (see withNetns). A namespace that
 * cannot be entered (e.g. missing) is a KernelError named by `argv`; what fn throws passes through.
 */
export function inNetnsSync<T>(ns: NetnsRef, argv: readonly string[], fn: () => T): T {
  if (ns === null) return fn();
  checkNetnsName('netns', ns);
  let entered = false;
  try {
    return withNetns(ns, () => {
      entered = true;
      return fn();
    });
  } catch (e) {
    throw entered ? e : asKernelError(e, argv);
  }
}
