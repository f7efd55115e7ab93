/**
 * Network namespaces: create / delete-if-present / list / exists, running a tool inside one, and sysctls.
 *
 * A namespace is named (a bind mount under /run/netns, as `ip netns add` makes it) so that iproute2 (`ip -n NS`)
 * and nsenter (`--net=/run/netns/NS`) can both enter it. Functions that act on "some netns" take a NetnsRef:
 * a name, or null for the namespace this process runs in — never implicit, so the agent's host netns is always
 * stated (DESIGN.md §6: the lab runs agents in named host namespaces).
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { KernelError, KernelInputError, run, type BatchFailure } from './exec.js';
import { runIpOps, type IpOp, type NetnsRef } from './ip.js';
import { checkNetnsName } from './validate.js';

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
 * Twin: `ip netns add NAME`, tolerating an existing one. Run with `runIpOps(null, ops)`: many namespaces are
 * created by one `ip -batch` spawn.
 */
export function netnsAddOp(name: string): IpOp {
  return { args: ['netns', 'add', checkNetnsName('netns', name)], tolerate: ['EEXIST'] };
}

/** Twin: `ip netns delete NAME`, tolerating a missing one. Batchable like netnsAddOp. */
export function netnsDeleteOp(name: string): IpOp {
  return { args: ['netns', 'delete', checkNetnsName('netns', name)], tolerate: ['ENOENT'] };
}

/** Twin: `ip netns add NAME`. Idempotent: an existing namespace of that name is left as it is. */
export async function createNetns(name: string): Promise<void> {
  await runIpOps(null, [netnsAddOp(name)]);
}

/** Twin: `ip netns delete NAME`. Succeeds when the namespace does not exist. Its links, routes and nft tables go with it. */
export async function deleteNetnsIfPresent(name: string): Promise<void> {
  await runIpOps(null, [netnsDeleteOp(name)]);
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

/** Twin: `test -e /run/netns/NAME` (what `ip netns list` shows). */
export async function netnsExists(name: string): Promise<boolean> {
  try {
    await stat(netnsPath(name));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

// --- sysctls ---------------------------------------------------------------------------------------------------

/** Dotted sysctl key (`net.ipv4.conf.ot-a1.send_redirects`); interface names are safe here (no '.', see checkIfname). */
const SYSCTL_KEY_RE = /^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;

function checkSysctlKey(key: string): string {
  if (!SYSCTL_KEY_RE.test(key)) throw new KernelInputError(`sysctl key ${JSON.stringify(key)}`, 'must be dotted words of [A-Za-z0-9_-]');
  return key;
}

function checkSysctlValue(key: string, v: unknown): string {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(s))
    throw new KernelInputError(`sysctl ${key}`, `value must be an integer or a word of [A-Za-z0-9_.:-], got ${JSON.stringify(v)}`);
  return s;
}

const sysctlPath = (key: string) => `/proc/sys/${key.replaceAll('.', '/')}`;

/**
 * Twin: `ip netns exec NS sysctl -w k1=v1 k2=v2 …`, done as ONE spawn (`nsenter --net=… sysctl -q -w …`) whatever
 * the number of keys. In this process's own netns (ns null) the values are written to /proc/sys directly, no
 * spawn. All keys are attempted; failures are reported together (KernelError.failures, one per key).
 */
export async function setSysctls(ns: NetnsRef, values: Readonly<Record<string, string | number>>): Promise<void> {
  const entries = Object.entries(values).map(([k, v]) => [checkSysctlKey(k), checkSysctlValue(k, v)] as const);
  if (entries.length === 0) return;
  if (ns === null) {
    const failures: BatchFailure[] = [];
    for (const [i, [k, v]] of entries.entries()) {
      try {
        await writeFile(sysctlPath(k), v);
      } catch (e) {
        const errno = (e as NodeJS.ErrnoException).code;
        failures.push({ line: i + 1, command: [k], message: (e as Error).message, code: errno === 'ENOENT' ? 'ENOENT' : errno === 'EINVAL' ? 'EINVAL' : 'OTHER' });
      }
    }
    if (failures.length) throw sysctlError(['sysctl', '-w', ...entries.map(([k, v]) => `${k}=${v}`)], failures, 1, '');
    return;
  }
  const argv = inNetns(ns, ['sysctl', '-q', '-w', ...entries.map(([k, v]) => `${k}=${v}`)]);
  try {
    await run(argv);
  } catch (e) {
    if (!(e instanceof KernelError) || e.timedOut) throw e;
    throw sysctlError(argv, attributeSysctlErrors(e.stderr, entries.map(([k]) => k)), e.exitCode, e.stderr);
  }
}

/**
 * Twin: `ip netns exec NS sysctl -n k1 k2 …` (one spawn; /proc/sys read directly when ns is null). Values as the
 * kernel prints them (multi-value sysctls keep their tabs).
 */
export async function readSysctls(ns: NetnsRef, keys: readonly string[]): Promise<Record<string, string>> {
  for (const k of keys) checkSysctlKey(k);
  const out: Record<string, string> = {};
  if (keys.length === 0) return out;
  if (ns === null) {
    for (const k of keys) out[k] = (await readFile(sysctlPath(k), 'utf8')).trim();
    return out;
  }
  const argv = inNetns(ns, ['sysctl', '-n', ...keys]);
  let stdout: string;
  try {
    ({ stdout } = await run(argv));
  } catch (e) {
    if (!(e instanceof KernelError) || e.timedOut) throw e;
    throw sysctlError(argv, attributeSysctlErrors(e.stderr, keys), e.exitCode, e.stderr);
  }
  const lines = stdout.replace(/\n$/, '').split('\n');
  keys.forEach((k, i) => (out[k] = (lines[i] ?? '').trim()));
  return out;
}

/** sysctl(8) prints one line per failing key naming its /proc/sys path or the key itself. */
function attributeSysctlErrors(stderr: string, keys: readonly string[]): BatchFailure[] {
  const failures: BatchFailure[] = [];
  for (const line of stderr.split('\n').filter((l) => l.trim())) {
    const i = keys.findIndex((k) => line.includes(sysctlPath(k) + ':') || line.includes(`"${k}"`));
    const message = line.replace(/^sysctl: /, '');
    failures.push({
      line: i + 1,
      command: i >= 0 ? [keys[i]!] : [],
      message,
      code: /No such file|cannot stat/i.test(message) ? 'ENOENT' : /Invalid argument/.test(message) ? 'EINVAL' : 'OTHER',
    });
  }
  return failures;
}

function sysctlError(argv: readonly string[], failures: BatchFailure[], exitCode: number | null, stderr: string): KernelError {
  return new KernelError({
    argv,
    exitCode,
    stderr,
    failures,
    kernelMessage: failures.map((f) => `${f.command[0] ?? '?'}: ${f.message}`).join('; ') || stderr,
  });
}
