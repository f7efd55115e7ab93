/**
 * Network namespaces of one benchmark run: every name starts with `otb-<pid>-<n>-` (distinct from the tests'
 * `ott-` and the agent's `ot-`), so cleanup can find everything the run made — including the customer namespaces
 * an agent created with a netnsPrefix under it — and namespaces left by a bench process that died are swept by
 * the next run.
 */
import { runIpOps } from '../../src/kernel/ip.js';
import { listLinks } from '../../src/kernel/links.js';
import { createNetns, listNetns, netnsDeleteOp } from '../../src/kernel/netns.js';
import { listNftTables } from '../../src/kernel/nft.js';

export const BENCH_NETNS_ROOT = 'otb-';
let count = 0;

export interface BenchNetns {
  readonly prefix: string;
  name(label: string): string;
  create(label: string): Promise<string>;
  /** Deletes every namespace with the prefix (one `ip -batch`), then throws if anything of ours is left. */
  cleanup(): Promise<void>;
}

export function benchNetns(): BenchNetns {
  count += 1;
  const prefix = `${BENCH_NETNS_ROOT}${process.pid}-${count}-`;
  let swept: Promise<void> | undefined;
  const name = (label: string) => {
    if (!/^[a-z0-9-]{1,24}$/.test(label)) throw new Error(`netns label ${JSON.stringify(label)}: use 1–24 of [a-z0-9-]`);
    return prefix + label;
  };
  return {
    prefix,
    name,
    async create(label) {
      swept ??= sweepStale();
      await swept;
      const n = name(label);
      await createNetns(n);
      return n;
    },
    async cleanup() {
      await deleteAll(await listNetns(prefix));
      const left = await listNetns(prefix);
      const tables = (await listNftTables(null, prefix)).map((t) => t.name);
      const links = (await listLinks(null)).filter((l) => l.name.startsWith(prefix) || (l.alias ?? '').includes(prefix)).map((l) => l.name);
      if (left.length || tables.length || links.length)
        throw new Error(`bench cleanup left ${JSON.stringify({ netns: left, nftTables: tables, links })}`);
    },
  };
}

async function deleteAll(names: readonly string[]): Promise<void> {
  // Batches of 500: one spawn each, a bounded command line.
  for (let i = 0; i < names.length; i += 500) await runIpOps(null, names.slice(i, i + 500).map(netnsDeleteOp));
}

/** Deletes `otb-<pid>-…` namespaces whose bench process no longer exists. */
async function sweepStale(): Promise<void> {
  const stale = (await listNetns(BENCH_NETNS_ROOT)).filter((n) => {
    const pid = Number(/^otb-(\d+)-/.exec(n)?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid);
  });
  await deleteAll(stale);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
