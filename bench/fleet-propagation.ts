/**
 * fleet-propagation: how fast one API write reaches a fleet.
 *
 * 1. Propagation: the API (in this process, fastify inject) and A real `opentransit agent` processes (started
 *    through src/lab's process helper, each with its own host netns as in api-to-kernel, its own store client and
 *    replica) on a few customers. W sequential writes, each changing one route's priority; for each, the time from
 *    sending the request until the new metric is in the kernel of EVERY agent (the latest agent decides), read
 *    from each agent's customer netns over rtnetlink every couple of milliseconds.
 *    Once on the embedded store (LMDB: agents follow it through the notify file), once on a 3-member etcd cluster
 *    on loopback (agent i talks to member i; the API to any).
 * 2. Watch fan-out: one write seen by N watchers (listAndWatch, spread over 5 store clients as a few processes
 *    would hold them): the time until the LATEST watcher has the event, vs the same with one watcher (baseline).
 *
 * etcd's figures carry the embedded ones as baselines: the ratio says what the network store costs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { customerNetns } from '../src/agent/desired/node.js';
import { repoRoot } from '../src/kernel/bpf/paths.js';
import { spawnLabProcess, stopProcesses, type LabProcess } from '../src/lab/processes.js';
import { keys } from '../src/model/keys.js';
import type { NodeStatus } from '../src/model/node-status.js';
import { build } from '../src/api/app.js';
import { BPFFS, unpin } from '../src/kernel/bpf/index.js';
import { listRoutes, RT_PROTO_OPENTRANSIT } from '../src/kernel/routes.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { openLmdbStore } from '../src/store/lmdb.js';
import type { Store } from '../src/store/store.js';
import { startEtcd, type EtcdCluster } from '../test/support/etcd.js';
import { customerConfig, customerPrefix } from './lib/customers.js';
import { createEdgeHost } from './lib/edge.js';
import { benchNetns } from './lib/netns.js';
import { metric, numberParam, registerBenchmark, type BenchContext } from './lib/registry.js';
import { distribution, sleep, type Distribution } from './lib/stats.js';

const OPERATOR_TOKEN = 'ot_bench-fleet-operator-token-0123456789';
const FANOUT_CLIENTS = 5;
const quiet = { onError: () => undefined };

type Backend = 'lmdb' | 'etcd';

interface Propagation {
  appliedAll: Distribution;
  appliedEach: Distribution;
  apiWrite: Distribution;
}

registerBenchmark({
  name: 'fleet-propagation',
  description: 'API write → applied in the kernel on every agent (3 agents), embedded LMDB vs 3-member etcd; one write seen by 50 watchers',
  order: 25,
  async run(ctx) {
    const agents = numberParam(ctx, 'agents', 3, 3);
    const customers = numberParam(ctx, 'customers', 3, 2);
    const writes = numberParam(ctx, 'writes', 200, 20);
    const watchers = numberParam(ctx, 'watchers', 50, 50);
    const fanoutWrites = numberParam(ctx, 'fanout_writes', 200, 20);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-bench-fleet-'));
    let etcd: EtcdCluster | undefined;
    try {
      ctx.log('embedded (LMDB): propagation');
      const lmdbDir = path.join(tmp, 'lmdb');
      const lmdb = await propagation(ctx, 'lmdb', () => openLmdbStore(lmdbDir), () => `lmdb:${lmdbDir}`, { agents, customers, writes, tmp });
      const lmdbFan = await fanout(() => openLmdbStore(path.join(tmp, 'fanout'), quiet), watchers, fanoutWrites);

      ctx.log('etcd: starting a 3-member cluster on loopback');
      etcd = await startEtcd({ members: 3 });
      const endpoints = etcd.endpoints;
      ctx.log('etcd: propagation');
      const onEtcd = await propagation(ctx, 'etcd', () => openEtcdStore(endpoints, quiet), (i) => `etcd://${endpoints[i % endpoints.length]!.replace(/^http:\/\//, '')}`, { agents, customers, writes, tmp });
      let client = 0;
      const etcdFan = await fanout(() => openEtcdStore([endpoints[client++ % endpoints.length]!], quiet), watchers, fanoutWrites);

      const vs = (label: string, d: Distribution, p: 'p50' | 'p99') => ({ label: `${label} ${p}`, value: d[p] });
      return {
        params: { agents, customers, writes, watchers, fanout_writes: fanoutWrites, etcd_members: 3 },
        metrics: [
          metric({ name: 'embedded_applied_all_p50', value: lmdb.appliedAll.p50, unit: 'ms', better: 'lower' }),
          metric({ name: 'embedded_applied_all_p99', value: lmdb.appliedAll.p99, unit: 'ms', better: 'lower', goal: { on: 'value', op: '<=', target: 100 } }),
          metric({ name: 'etcd_applied_all_p50', value: onEtcd.appliedAll.p50, unit: 'ms', better: 'lower', baseline: vs('embedded', lmdb.appliedAll, 'p50') }),
          metric({ name: 'etcd_applied_all_p99', value: onEtcd.appliedAll.p99, unit: 'ms', better: 'lower', baseline: vs('embedded', lmdb.appliedAll, 'p99'), goal: { on: 'value', op: '<=', target: 500 } }),
          metric({ name: 'etcd_api_write_p50', value: onEtcd.apiWrite.p50, unit: 'ms', better: 'lower', baseline: vs('embedded', lmdb.apiWrite, 'p50'), note: 'the API request alone (its reads and compare-and-swap)' }),
          metric({ name: 'fanout_embedded_latest_p50', value: lmdbFan.latest.p50, unit: 'ms', better: 'lower', baseline: vs('1 watcher', lmdbFan.single, 'p50') }),
          metric({ name: 'fanout_embedded_latest_p99', value: lmdbFan.latest.p99, unit: 'ms', better: 'lower', baseline: vs('1 watcher', lmdbFan.single, 'p99') }),
          metric({ name: 'fanout_etcd_latest_p50', value: etcdFan.latest.p50, unit: 'ms', better: 'lower', baseline: vs('1 watcher', etcdFan.single, 'p50') }),
          metric({ name: 'fanout_etcd_latest_p99', value: etcdFan.latest.p99, unit: 'ms', better: 'lower', baseline: vs('1 watcher', etcdFan.single, 'p99') }),
        ],
        notes: [
          `Each agent is its own \`opentransit agent\` process (own store client, replica, host netns); API, writer and watchers in the bench process; ${os.cpus().length} CPUs shared with everything else on the machine.`,
          'applied_all = request sent → the new metric is in the kernel of every agent (customer netns routes read over rtnetlink every ~2 ms; the polling shares the CPUs with the agents).',
          'etcd: 3 members on loopback (heartbeat 50 ms, election 500 ms); agent i follows member i, the API and the fan-out writer use any member.',
          `fan-out: ${watchers} listAndWatch on one prefix spread over ${FANOUT_CLIENTS} store clients; latest = write sent → the last watcher has the event; baseline: one watcher alone, same writes.`,
        ],
        details: {
          embedded: lmdb,
          etcd: onEtcd,
          fanout: { embedded: lmdbFan, etcd: etcdFan },
        },
      };
    } finally {
      await etcd?.destroy();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
});

/** The propagation run on one backend: API + agents set up, W timed writes, everything torn down. */
async function propagation(
  ctx: BenchContext,
  backend: Backend,
  openApiStore: () => Promise<Store>,
  agentStoreSpec: (i: number) => string,
  o: { agents: number; customers: number; writes: number; tmp: string },
): Promise<Propagation> {
  const ns = benchNetns();
  const pinBases: string[] = [];
  const running: LabProcess[] = [];
  const lab = `bench-${process.pid}`;
  const bin = path.join(repoRoot(), 'bin', 'opentransit');
  const apiStore = await openApiStore();
  const app = await build({ store: apiStore, operatorToken: OPERATOR_TOKEN });
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
  try {
    const ids: string[] = [];
    for (let i = 0; i < o.customers; i++) {
      const created = await call('POST', '/v1/accounts', { name: `bench-${i}` });
      if (created.statusCode !== 201) throw new Error(`creating customer ${i}: ${created.statusCode} ${created.body}`);
      const id = (created.json() as { id: string }).id;
      const res = await call('PUT', `/v1/accounts/${id}/config`, customerConfig(i));
      if (res.statusCode !== 200) throw new Error(`writing customer ${i}: ${res.statusCode} ${res.body}`);
      ids.push(id);
    }
    const edges = [];
    for (let i = 0; i < o.agents; i++) {
      const edge = await createEdgeHost(ns, `a${i}`, `fleet-${i}`);
      const pinBase = `${BPFFS}/ot-bench-${process.pid}-fleet-${backend}-${i}`;
      pinBases.push(pinBase);
      const dataDir = fs.mkdtempSync(path.join(o.tmp, `agent-${backend}-${i}-`));
      running.push(
        await spawnLabProcess({
          lab,
          role: 'agent',
          argv: [process.execPath, bin, 'agent', '--node-id', edge.node.nodeId, '--host-netns', edge.host, '--uplink', edge.node.uplink,
            '--store', agentStoreSpec(i), '--data-dir', dataDir, '--netns-prefix', edge.node.netnsPrefix, '--resync-ms', '3600000', '--bpf-pin-base', pinBase],
          log: path.join(o.tmp, `agent-${backend}-${i}.log`),
        }),
      );
      edges.push(edge);
    }
    const logs = () => running.map((r) => `${r.log}:\n${fs.readFileSync(r.log, 'utf8').slice(-2000)}`).join('\n');
    const deadline = Date.now() + 120_000;
    for (;;) {
      const states = await Promise.all(
        edges.map(async (e) => {
          const kv = await apiStore.get(keys.nodeStatus(e.node.nodeId));
          return kv ? (JSON.parse(kv.value) as NodeStatus).accounts : {};
        }),
      );
      if (states.every((s) => ids.every((id) => s[id]?.state === 'ok'))) break;
      const failed = states.flatMap((s) => ids.map((id) => s[id]).filter((a) => a?.state === 'error'));
      if (failed.length) throw new Error(`${backend}: set-up failed: ${JSON.stringify(failed)}`);
      if (Date.now() > deadline) throw new Error(`${backend}: agents not ready after 120 s: ${JSON.stringify(states)}\n${logs()}`);
      await sleep(100);
    }
    ctx.log(`${backend}: ${o.agents} agents ready with ${o.customers} customers; ${o.writes} writes`);
    const routes = await Promise.all(ids.map(async (id) => {
      const res = await call('GET', `/v1/accounts/${id}/routes`);
      return (res.json() as { items: { id: string; prefix: string; nexthop: string }[] }).items[0]!;
    }));

    const writeMs: number[] = [];
    const allMs: number[] = [];
    const eachMs: number[] = [];
    for (let w = 0; w < o.writes; w++) {
      const c = w % ids.length;
      const id = ids[c]!;
      const route = routes[c]!;
      const priority = 1000 + w;
      const t0 = performance.now();
      const res = await call('PUT', `/v1/accounts/${id}/routes/${route.id}`, { prefix: route.prefix, nexthop: route.nexthop, priority });
      if (res.statusCode !== 200) throw new Error(`${backend} write ${w}: ${res.statusCode} ${res.body}`);
      writeMs.push(performance.now() - t0);
      // Each agent's kernel, read until it has the new metric (and only it: the old route is gone too).
      const done = new Array<number | undefined>(edges.length).fill(undefined);
      while (done.some((d) => d === undefined)) {
        for (const [i, edge] of edges.entries()) {
          if (done[i] !== undefined) continue;
          const mine = (await listRoutes(customerNetns(edge.node, id), { table: 254 })).filter((r) => r.dst === customerPrefix(c) && r.protocol === RT_PROTO_OPENTRANSIT);
          if (mine.length === 1 && mine[0]!.metric === priority) done[i] = performance.now() - t0;
        }
        if (performance.now() - t0 > 30_000) throw new Error(`${backend} write ${w}: not in every kernel after 30 s (${JSON.stringify(done)})\n${logs()}`);
        if (done.some((d) => d === undefined)) await sleep(2);
      }
      allMs.push(Math.max(...(done as number[])));
      eachMs.push(...(done as number[]));
    }
    return { appliedAll: distribution(allMs), appliedEach: distribution(eachMs), apiWrite: distribution(writeMs) };
  } finally {
    // SIGTERM: each agent stops gracefully (revokes its liveness lease; the kernel stays as it is).
    await stopProcesses(running, 5000).catch(() => undefined);
    await app.close();
    await apiStore.close();
    for (const p of pinBases) unpin(p);
    await ns.cleanup();
  }
}

/**
 * One writer, `n` watchers on one prefix spread over FANOUT_CLIENTS clients: per write, write sent → the last
 * watcher has it. First with a single watcher (the baseline), then with all of them.
 */
async function fanout(open: () => Promise<Store>, n: number, writes: number): Promise<{ single: Distribution; latest: Distribution; median_watcher: Distribution }> {
  const writer = await open();
  const clients: Store[] = [];
  try {
    for (let i = 0; i < Math.min(FANOUT_CLIENTS, n); i++) clients.push(await open());
    const prefix = `/opentransit/bench/fanout-${process.pid}/`;
    const run = async (count: number, label: string) => {
      const seen = new Map<string, number[]>();
      let wake: (() => void) | undefined;
      const watches = [];
      let synced = 0;
      for (let w = 0; w < count; w++) {
        watches.push(
          await clients[w % clients.length]!.listAndWatch(prefix, (e) => {
            if (e.type === 'synced') synced++;
            if (e.type !== 'put') return;
            const at = performance.now();
            const list = seen.get(e.kv.value) ?? [];
            list.push(at);
            seen.set(e.kv.value, list);
            wake?.();
          }),
        );
      }
      try {
        while (synced < count) await sleep(5);
        const latest: number[] = [];
        const medians: number[] = [];
        for (let i = 0; i < writes; i++) {
          const value = `${label}-${i}`;
          const t0 = performance.now();
          await writer.txn([], [{ type: 'put', key: `${prefix}k`, value }]);
          const deadline = t0 + 30_000;
          while ((seen.get(value)?.length ?? 0) < count) {
            if (performance.now() > deadline) throw new Error(`fan-out: write ${i} seen by ${seen.get(value)?.length ?? 0} of ${count} watchers after 30 s`);
            await new Promise<void>((r) => {
              wake = r;
              setTimeout(r, 50);
            });
          }
          const times = seen.get(value)!.map((t) => t - t0).sort((a, b) => a - b);
          latest.push(times.at(-1)!);
          medians.push(times[Math.floor(times.length / 2)]!);
        }
        return { latest: distribution(latest), median: distribution(medians) };
      } finally {
        for (const w of watches) await w.close();
      }
    };
    const single = await run(1, 'single');
    const all = await run(n, 'all');
    return { single: single.latest, latest: all.latest, median_watcher: all.median };
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await writer.close().catch(() => undefined);
  }
}
