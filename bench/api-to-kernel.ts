/**
 * api-to-kernel: with the agent running on a few customers (embedded LMDB store, agent in-process), W API writes
 * each changing one route's priority; for each, the time from sending the request until the agent reports the
 * write's revision applied (status applied_revision of the account), then confirmed by reading the kernel
 * (a route dump of the customer netns shows the new metric; the read's time is reported separately).
 *
 * Baseline: the bare kernel change the write stands for — `ip route replace` with the new metric and `ip route
 * delete` of the old one, in one `ip -batch` process — on a namespace of its own: the floor of any path that
 * changes the kernel through iproute2. The same two changes as in-process netlink requests are reported too.
 */
import { Agent } from '../src/agent/agent.js';
import { BPFFS, unpin } from '../src/kernel/bpf/index.js';
import { customerNetns } from '../src/agent/desired/node.js';
import { run } from '../src/kernel/exec.js';
import { ipArgv, runIpOps } from '../src/kernel/ip.js';
import { addressReplaceOp } from '../src/kernel/addresses.js';
import { ensureVeth, macFromKey } from '../src/kernel/links.js';
import { listRoutes, routeDeleteOp, routeReplaceOp, RT_PROTO_OPENTRANSIT } from '../src/kernel/routes.js';
import { customerPrefix, openApiWithCustomers } from './lib/customers.js';
import { createEdgeHost } from './lib/edge.js';
import { benchNetns } from './lib/netns.js';
import { flagParam, metric, numberParam, registerBenchmark } from './lib/registry.js';
import { distribution, sleep } from './lib/stats.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const revisionOf = (etag: string | string[] | number | undefined) => Number(String(etag ?? '').replace(/"/g, ''));

registerBenchmark({
  name: 'api-to-kernel',
  description: 'API write (route priority) → agent applied → kernel shows it: p50/p99, vs the bare ip command',
  order: 20,
  async run(ctx) {
    const k = numberParam(ctx, 'customers', 5, 3);
    const writes = numberParam(ctx, 'writes', 200, 20);
    // off: without the agent's kernel notifications (to compare).
    const kernelWatch = flagParam(ctx, 'kernel_watch', true);
    const ns = benchNetns();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-bench-latency-'));
    // The data plane's pins live under a bpffs directory of this run only (removed at the end).
    const pinBase = `${BPFFS}/ot-bench-latency-${process.pid}`;
    const { api, customers } = await openApiWithCustomers(k);
    let agent: Agent | undefined;
    try {
      const edge = await createEdgeHost(ns, 'l');
      agent = new Agent({ node: edge.node, store: api.store, dataDir, resyncMs: 3_600_000, watchKernel: kernelWatch, log: () => {}, bpf: { pinBase } });
      await agent.start();
      for (;;) {
        await agent.idle();
        const s = agent.snapshotStatus();
        if (customers.every((c) => s.accounts[c.id]?.state === 'ok')) break;
        if (customers.some((c) => s.accounts[c.id]?.state === 'error')) throw new Error(`set-up failed: ${JSON.stringify(s.accounts)}`);
        await sleep(20);
      }
      const routeIds = await Promise.all(customers.map(async (c) => {
        const res = await api.call('GET', `/v1/accounts/${c.id}/routes`);
        return (res.json() as { items: { id: string; prefix: string; nexthop: string }[] }).items[0]!;
      }));

      const writeMs: number[] = [];
      const appliedMs: number[] = [];
      const confirmedMs: number[] = [];
      for (let w = 0; w < writes; w++) {
        const i = w % customers.length;
        const c = customers[i]!;
        const route = routeIds[i]!;
        const priority = 1000 + w;
        const t0 = performance.now();
        const res = await api.call('PUT', `/v1/accounts/${c.id}/routes/${route.id}`, { body: { prefix: route.prefix, nexthop: route.nexthop, priority } });
        if (res.statusCode !== 200) throw new Error(`write ${w}: ${res.statusCode} ${res.body}`);
        const revision = revisionOf(res.headers.etag);
        if (!Number.isInteger(revision) || revision <= 0) throw new Error(`write ${w}: no revision in ETag ${JSON.stringify(res.headers.etag)}`);
        const tw = performance.now();
        for (;;) {
          const a = agent.snapshotStatus().accounts[c.id];
          if (a?.state === 'ok' && (a.applied_revision ?? 0) >= revision) break;
          if (a?.state === 'error') throw new Error(`write ${w}: account error: ${a.error}`);
          if (performance.now() - t0 > 30_000) throw new Error(`write ${w}: not applied after 30 s`);
          await sleep(1);
        }
        const ta = performance.now();
        const routes = await listRoutes(customerNetns(edge.node, c.id), { table: 254 });
        const mine = routes.filter((r) => r.dst === customerPrefix(c.index) && r.protocol === RT_PROTO_OPENTRANSIT);
        if (mine.length !== 1 || mine[0]!.metric !== priority)
          throw new Error(`write ${w}: the agent reported revision ${revision} applied, but the kernel has ${JSON.stringify(mine.map((r) => r.metric))}, not metric ${priority}`);
        const tc = performance.now();
        writeMs.push(tw - t0);
        appliedMs.push(ta - t0);
        confirmedMs.push(tc - t0);
      }

      // Baseline: the same route change with one ip process, on a namespace of its own.
      const raw = await ns.create('raw');
      const rawPeer = await ns.create('rawpeer');
      await ensureVeth({ ns: raw, name: 'edge0', mac: macFromKey(`${raw}/a`), peerNs: rawPeer, peerName: 'eth0', peerMac: macFromKey(`${raw}/b`) });
      await runIpOps(raw, [addressReplaceOp({ dev: 'edge0', cidr: '10.100.0.0/31' })]);
      const spec = (metric: number) => ({ dst: customerPrefix(0), metric, mtu: 1476, nexthops: [{ via: '10.100.0.1', dev: 'edge0', onlink: true }] });
      await runIpOps(raw, [routeReplaceOp(spec(1000))]);
      const baseSamples = Math.min(writes, numberParam(ctx, 'baseline_samples', 50, 10));
      const change = (m: number) => [routeReplaceOp(spec(m)), routeDeleteOp({ family: 4, dst: customerPrefix(0), table: 254, metric: m - 1, protocol: RT_PROTO_OPENTRANSIT, type: 'unicast' })];
      const bareMs: number[] = [];
      for (let w = 1; w <= baseSamples; w++) {
        const t0 = performance.now();
        // One iproute2 process, as before in-process netlink: the batch text of the same two ops.
        await run([...ipArgv(raw), '-batch', '-'], { stdin: change(1000 + w).map((op) => op.args.join(' ')).join('\n') + '\n' });
        bareMs.push(performance.now() - t0);
      }
      const netlinkMs: number[] = [];
      for (let w = baseSamples + 1; w <= 2 * baseSamples; w++) {
        const t0 = performance.now();
        await runIpOps(raw, change(1000 + w));
        netlinkMs.push(performance.now() - t0);
      }

      const applied = distribution(appliedMs);
      const confirmed = distribution(confirmedMs);
      const bare = distribution(bareMs);
      const bareNetlink = distribution(netlinkMs);
      return {
        params: { customers: k, writes, baseline_samples: baseSamples, kernel_watch: kernelWatch ? 1 : 0 },
        metrics: [
          metric({ name: 'applied_p50', value: applied.p50, unit: 'ms', better: 'lower', baseline: { label: 'bare ip p50', value: bare.p50 } }),
          metric({ name: 'applied_p99', value: applied.p99, unit: 'ms', better: 'lower', baseline: { label: 'bare ip p99', value: bare.p99 }, goal: { on: 'value', op: '<=', target: 100 } }),
          metric({ name: 'applied_max', value: applied.max, unit: 'ms', better: 'lower' }),
          metric({ name: 'confirmed_p99', value: confirmed.p99, unit: 'ms', better: 'lower', note: 'applied, then one in-process route dump of the customer netns' }),
          metric({ name: 'bare_netlink_p50', value: bareNetlink.p50, unit: 'ms', better: 'lower', baseline: { label: 'bare ip p50', value: bare.p50 }, note: 'the same replace + delete as two in-process netlink requests' }),
          metric({ name: 'api_write_p50', value: distribution(writeMs).p50, unit: 'ms', better: 'lower', note: 'the API request alone (inject, LMDB commit)' }),
        ],
        notes: [
          'Writes are sequential, round-robin over the customers; each changes one route priority (a new metric: replace + delete in the kernel).',
          'applied = request sent → the agent status shows the account ok at the write\'s revision (polled every 1 ms in-process).',
        ],
        details: { applied_ms: applied, confirmed_ms: confirmed, api_write_ms: distribution(writeMs), bare_ip_ms: bare, bare_netlink_ms: bareNetlink },
      };
    } finally {
      await agent?.stop();
      await api.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      unpin(pinBase);
      await ns.cleanup();
    }
  },
});
