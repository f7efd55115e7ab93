/**
 * Test harness for privileged tests that build network namespaces.
 *
 * Every harness gets a unique prefix `ott-<pid>-<n>-`; every namespace it creates is registered BEFORE it is
 * created, so `cleanup()` removes it even when creation or the test failed half-way. Namespaces left by a test
 * process that died (killed, timed out) are swept the next time a harness is made: their pid no longer exists.
 *
 *   const ns = netnsHarness();
 *   after(() => ns.cleanup());            // deletes, then asserts no leftovers
 *   const a = await ns.create('a');       // 'ott-1234-1-a'
 */
import assert from 'node:assert/strict';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth, listLinks } from '../../src/kernel/links.js';
import { createNetns, deleteNetnsIfPresent, inNetns, listNetns } from '../../src/kernel/netns.js';
import { listNftTables } from '../../src/kernel/nft.js';

/** Root of every test namespace name; distinct from the agent's `ot-` names. */
export const TEST_NETNS_ROOT = 'ott-';

let harnessCount = 0;

export interface NetnsHarness {
  /** `ott-<pid>-<n>-`: every name this harness makes starts with it. */
  readonly prefix: string;
  /** The namespace name for `label` (not created). */
  name(label: string): string;
  /** Registers, then creates the namespace (idempotent); returns its name. */
  create(label: string): Promise<string>;
  /** Names registered so far. */
  readonly created: ReadonlySet<string>;
  /** Deletes every registered namespace and anything else with the prefix, then asserts no leftovers. */
  cleanup(): Promise<void>;
}

export function netnsHarness(): NetnsHarness {
  harnessCount += 1;
  const prefix = `${TEST_NETNS_ROOT}${process.pid}-${harnessCount}-`;
  const created = new Set<string>();
  let swept: Promise<unknown> | undefined;
  const name = (label: string) => {
    if (!/^[a-z0-9_-]{1,20}$/.test(label)) throw new Error(`netns label ${JSON.stringify(label)}: use 1–20 of [a-z0-9_-]`);
    return prefix + label;
  };
  return {
    prefix,
    created,
    name,
    async create(label) {
      swept ??= sweepStaleTestNamespaces();
      await swept;
      const n = name(label);
      created.add(n);
      await createNetns(n);
      return n;
    },
    async cleanup() {
      const names = new Set([...created, ...(await listNetns(prefix))]);
      const results = await Promise.allSettled([...names].map((n) => deleteNetnsIfPresent(n)));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      created.clear();
      if (failed.length) throw new AggregateError(failed.map((f) => f.reason), `cleanup of ${prefix}* failed`);
      await assertNoLeftovers(prefix);
    },
  };
}

/**
 * Asserts that nothing named with `prefix` is left: no namespace, no nft table in this process's namespace, no
 * link here whose name or alias mentions it. (Links, routes and nft tables inside a deleted namespace go with it.)
 */
export async function assertNoLeftovers(prefix: string): Promise<void> {
  assert.ok(prefix.length >= 4, 'refusing a prefix this short');
  const [netns, tables, links] = await Promise.all([listNetns(prefix), listNftTables(null, prefix), listLinks(null)]);
  assert.deepEqual(netns, [], `namespaces left with prefix ${prefix}`);
  assert.deepEqual(tables, [], `nft tables left with prefix ${prefix}`);
  const ours = links.filter((l) => l.name.startsWith(prefix) || (l.alias ?? '').includes(prefix));
  assert.deepEqual(ours.map((l) => l.name), [], `links left mentioning ${prefix}`);
}

/** Deletes `ott-<pid>-…` namespaces whose test process no longer exists. Returns what it deleted. */
export async function sweepStaleTestNamespaces(): Promise<string[]> {
  const stale: string[] = [];
  for (const n of await listNetns(TEST_NETNS_ROOT)) {
    const pid = Number(/^ott-(\d+)-/.exec(n)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    await deleteNetnsIfPresent(n);
    stale.push(n);
  }
  return stale;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// --- ICMP echo ---------------------------------------------------------------------------------------------------

/**
 * Python (stdlib only) ICMP echo client: iputils ping is not installed on these machines, and we need SO_MARK
 * (`ping -m`) to exercise fwmark rules. argv: dst count mark timeout_s gap_s. Prints one JSON line.
 */
const ICMP_ECHO_PY = `
import json, os, socket, struct, sys, time
dst, n, mark, to, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
if mark:
    s.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
def csum(b):
    if len(b) % 2: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
ident, got, err = os.getpid() & 0xffff, 0, ''
for seq in range(n):
    if seq and gap: time.sleep(gap)
    p = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + b'opentransit-test'
    p = p[:2] + struct.pack('!H', csum(p)) + p[4:]
    try:
        s.sendto(p, (dst, 0))
    except OSError as e:
        err = e.strerror; continue
    end = time.time() + to
    while True:
        # Past the deadline, still read what is already queued (non-blocking): a reply that arrived while this
        # process was not scheduled (a loaded CI machine) is a reply, not a timeout.
        s.settimeout(max(end - time.time(), 0.0))
        try:
            d, _ = s.recvfrom(4096)
        except (socket.timeout, BlockingIOError):
            err = err or 'timeout'; break
        ihl = (d[0] & 15) * 4
        t, c, _, i, sq = struct.unpack('!BBHHH', d[ihl:ihl + 8])
        if t == 0 and i == ident and sq == seq: got += 1; break
        if t == 3: err = 'destination unreachable (code %d)' % c; break
print(json.dumps({'sent': n, 'received': got, 'error': err}))
`;

export interface EchoResult {
  sent: number;
  received: number;
  /** strerror of a failed send (e.g. "No route to host"), an ICMP unreachable, or 'timeout'; '' when all came back. */
  error: string;
}

/**
 * Sends `count` ICMP echo requests (one at a time, `gapS` apart, each waiting up to `timeoutS` for its reply) from
 * namespace `ns` to `dst`, optionally with SO_MARK `mark`.
 */
export async function icmpEcho(ns: string, dst: string, opts: { count?: number; mark?: number; timeoutS?: number; gapS?: number } = {}): Promise<EchoResult> {
  const argv = ['python3', '-c', ICMP_ECHO_PY, dst, String(opts.count ?? 3), String(opts.mark ?? 0), String(opts.timeoutS ?? 1), String(opts.gapS ?? 0)];
  const { stdout } = await run(inNetns(ns, argv));
  return JSON.parse(stdout) as EchoResult;
}

// --- UDP flood ------------------------------------------------------------------------------------------------

/** Python (stdlib only) UDP sender: small datagrams back to back for `secs`. argv: dst port secs. Prints the count. */
const UDP_FLOOD_PY = `
import socket, sys, time
dst, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, end = 0, time.time() + secs
while time.time() < end:
    for _ in range(50):
        try:
            s.sendto(b'opentransit-test', (dst, port)); n += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
print(n)
`;

/**
 * Sends 16-byte UDP datagrams from namespace `ns` to dst:port as fast as one Python process can (~150,000 per
 * second on the 2-core VM) for `secs` seconds; resolves to how many were sent. Count what arrives with nft counters.
 */
export async function udpFlood(ns: string, dst: string, port: number, secs: number): Promise<number> {
  const { stdout } = await run(inNetns(ns, ['python3', '-c', UDP_FLOOD_PY, dst, String(port), String(secs)]));
  return Number(stdout.trim());
}

/**
 * A linker of namespaces for one test file: each call makes a veth between `a` and `b` with the given addresses on
 * both ends. MACs are 02:00:00:00:<macByte>:<n>, so test files that give distinct bytes never share a MAC.
 */
export function vethLinker(macByte: number): (a: string, aDev: string, aAddrs: string[], b: string, bDev: string, bAddrs: string[]) => Promise<void> {
  let n = 0;
  const mac = () => `02:00:00:00:${macByte.toString(16).padStart(2, '0')}:${(++n).toString(16).padStart(2, '0')}`;
  return async (a, aDev, aAddrs, b, bDev, bAddrs) => {
    await ensureVeth({ ns: a, name: aDev, mac: mac(), peerNs: b, peerName: bDev, peerMac: mac() });
    await runIpOps(a, aAddrs.map((x) => ({ args: ['address', 'replace', x, 'dev', aDev] })));
    await runIpOps(b, bAddrs.map((x) => ({ args: ['address', 'replace', x, 'dev', bDev] })));
  };
}

/** `sysctl -w` of key=value pairs inside namespace `ns`. */
export const sysctlIn = (ns: string, ...kv: string[]) => run(inNetns(ns, ['sysctl', '-q', '-w', ...kv]));
