// What one customer's kernel set-up costs through this layer (printed, never asserted: performance is bench/'s job),
// done three ways so the gain of batching is visible. The assertions only check that every way built the same state.
//
// Per customer: netns; veth (host end in a "host" netns); host route into the veth in table 100; customer side:
// lo up, address, a multipath onlink route (2 tunnels, weights, mtu 1476), 2 permanent neighbours; 6 sysctls;
// GRO on the customer end; an nft table (set + 4 counted rules).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addressReplaceOp } from '../../src/kernel/addresses.js';
import { resetSpawnStats, spawnStats, type SpawnStats } from '../../src/kernel/exec.js';
import { runIpOps, type IpOp } from '../../src/kernel/ip.js';
import { linkSetOp, macFromKey, ownerAlias, setLinkFeatures, vethOps } from '../../src/kernel/links.js';
import { deleteNetnsIfPresent, netnsAddOp, setSysctls } from '../../src/kernel/netns.js';
import { neighbourReplaceOp } from '../../src/kernel/neighbours.js';
import { nftExpr as x, readNftTable, replaceNftTable, type NftTableSpec } from '../../src/kernel/nft.js';
import { routeReplaceOp, RT_PROTO_OPENTRANSIT } from '../../src/kernel/routes.js';
import { readIpState } from '../../src/kernel/state.js';
import { netnsHarness } from '../support/netns.js';

const N = 10;
const h = netnsHarness();
after(() => h.cleanup());
let host = '';

interface CustomerPlan {
  ns: string;
  hostOps: IpOp[];
  custOps: IpOp[];
  sysctls: Record<string, number>;
  nft: NftTableSpec;
}

function plan(scenario: string, i: number): CustomerPlan {
  const ns = h.name(`${scenario}${i}`);
  const hostVeth = `ot${scenario}${i}`;
  const prefix = `198.18.${i}.0/24`;
  const veth = vethOps({
    ns: host, name: hostVeth, mac: macFromKey(`${ns}/h`), peerNs: ns, peerName: 'ot0', peerMac: macFromKey(`${ns}/c`), alias: ownerAlias(`acct${i}`),
  });
  const tunnels = [
    { via: '10.0.0.1', mac: macFromKey(`${ns}/t1`), weight: 3 },
    { via: '10.0.0.3', mac: macFromKey(`${ns}/t2`), weight: 1 },
  ];
  return {
    ns,
    hostOps: [...veth.host, routeReplaceOp({ dst: prefix, table: 100, nexthops: [{ via: `100.64.${i}.1`, dev: hostVeth, onlink: true }] })],
    custOps: [
      ...veth.peer,
      linkSetOp({ name: 'lo', up: true }),
      addressReplaceOp({ dev: 'ot0', cidr: `100.64.${i}.1/31` }),
      routeReplaceOp({ dst: prefix, metric: 10, mtu: 1476, nexthops: tunnels.map((t) => ({ via: t.via, dev: 'ot0', onlink: true, weight: t.weight })) }),
      ...tunnels.map((t) => neighbourReplaceOp({ dev: 'ot0', address: t.via, lladdr: t.mac })),
    ],
    sysctls: {
      'net.ipv4.ip_forward': 1,
      'net.ipv4.fib_multipath_hash_policy': 1,
      'net.ipv4.conf.all.send_redirects': 0,
      'net.ipv4.conf.default.send_redirects': 0,
      'net.ipv4.conf.ot0.send_redirects': 0,
      'net.ipv4.conf.ot0.accept_local': 1,
    },
    nft: {
      family: 'inet',
      name: 'ot_fw',
      version: `v${i}`,
      sets: [{ name: 'web', type: 'ipv4_addr', flags: ['interval'], elements: [x.prefix(`198.18.${i}.0`, 28)] }],
      chains: [{
        name: 'fwd',
        base: { type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
        rules: [
          { comment: 'r1', expr: [x.match(x.payload('ip', 'daddr'), '==', x.setRef('web')), x.match(x.payload('tcp', 'dport'), '==', x.set([80, 443])), x.counter(), x.accept()] },
          { comment: 'r2', expr: [x.match(x.payload('udp', 'dport'), '==', x.range(20, 21)), x.counter(), x.drop()] },
          { comment: 'r3', expr: [x.match(x.payload('ip', 'saddr'), '==', x.prefix('192.0.2.0', 24)), x.counter(), x.drop()] },
          { comment: 'r4', expr: [x.counter(), x.accept()] },
        ],
      }],
    },
  };
}

/** Every op its own spawn, one sysctl per spawn: what shell scripts do. */
async function naive(p: CustomerPlan): Promise<void> {
  await runIpOps(null, [netnsAddOp(p.ns)]);
  for (const op of p.hostOps) await runIpOps(host, [op]);
  for (const op of p.custOps) await runIpOps(p.ns, [op]);
  for (const [k, v] of Object.entries(p.sysctls)) await setSysctls(p.ns, { [k]: v });
  await setLinkFeatures(p.ns, 'ot0', { gro: true });
  await replaceNftTable(p.ns, p.nft);
}

/** Milliseconds per step of `perCustomer`, summed over customers. */
const steps = new Map<string, number>();
async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  steps.set(name, (steps.get(name) ?? 0) + performance.now() - t0);
}

/** One customer at a time, one batch per namespace and tool: 6 spawns. */
async function perCustomer(p: CustomerPlan): Promise<void> {
  await step('netns add', () => runIpOps(null, [netnsAddOp(p.ns)]));
  await step(`host batch (${p.hostOps.length} ops)`, () => runIpOps(host, p.hostOps));
  await step(`customer batch (${p.custOps.length} ops)`, () => runIpOps(p.ns, p.custOps));
  await step(`sysctls (${Object.keys(p.sysctls).length} keys)`, () => setSysctls(p.ns, p.sysctls));
  await step('ethtool gro', () => setLinkFeatures(p.ns, 'ot0', { gro: true }));
  await step('nft replace', () => replaceNftTable(p.ns, p.nft));
}

/** All customers of a reconcile round: namespaces and host side in one spawn each, then 4 per customer (in parallel). */
async function perRound(ps: CustomerPlan[]): Promise<void> {
  await runIpOps(null, ps.map((p) => netnsAddOp(p.ns)));
  await runIpOps(host, ps.flatMap((p) => p.hostOps));
  await Promise.all(
    ps.map(async (p) => {
      await runIpOps(p.ns, p.custOps);
      await Promise.all([setSysctls(p.ns, p.sysctls), setLinkFeatures(p.ns, 'ot0', { gro: true }), replaceNftTable(p.ns, p.nft)]);
    }),
  );
}

async function measure(label: string, fn: () => Promise<void>): Promise<{ ms: number; stats: SpawnStats }> {
  resetSpawnStats();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const stats = spawnStats();
  const by = Object.entries(stats.byProgram).map(([k, v]) => `${k} ${(v / N).toFixed(1)}`).join(', ');
  console.log(`# ${label.padEnd(34)} ${(ms / N).toFixed(1).padStart(6)} ms/customer  ${(stats.spawns / N).toFixed(1).padStart(4)} spawns/customer  (${by})`);
  return { ms, stats };
}

async function checkBuilt(ps: CustomerPlan[]): Promise<void> {
  for (const p of ps) {
    const s = await readIpState(p.ns);
    assert.equal(s.routes.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT).length, 1, p.ns);
    assert.equal(s.neighbours.filter((n) => n.permanent).length, 2, p.ns);
    assert.ok(s.links.find((l) => l.name === 'ot0')?.up, p.ns);
    assert.equal((await readNftTable(p.ns, 'inet', 'ot_fw'))?.rules.length, 4, p.ns);
  }
}

async function teardown(ps: CustomerPlan[]): Promise<void> {
  await Promise.all(ps.map((p) => deleteNetnsIfPresent(p.ns)));
}

before(async () => {
  host = await h.create('host');
  // Onlink gateways are checked against the local table, which exists only once the netns has an address.
  await runIpOps(host, [linkSetOp({ name: 'lo', up: true })]);
});

test(`cost of ${N} customers: naive vs batched per customer vs batched per round (printed)`, async () => {
  const scenarios: [string, string, (ps: CustomerPlan[]) => Promise<void>][] = [
    ['a', 'one spawn per op (shell-script style)', async (ps) => { for (const p of ps) await naive(p); }],
    ['b', 'batched, one customer at a time', async (ps) => { for (const p of ps) await perCustomer(p); }],
    ['c', 'batched per round, customers parallel', perRound],
  ];
  for (const [id, label, run] of scenarios) {
    const ps = Array.from({ length: N }, (_, i) => plan(id, i));
    await measure(label, () => run(ps));
    if (id === 'b') for (const [name, ms] of steps) console.log(`#   ${name.padEnd(32)} ${(ms / N).toFixed(1).padStart(6)} ms/customer`);
    await checkBuilt(ps);
    if (id === 'c') {
      await measure('re-apply (idempotent), per round', () => run(ps));
      await checkBuilt(ps);
      await measure('read back: ip state + nft table', async () => {
        for (const p of ps) await Promise.all([readIpState(p.ns), readNftTable(p.ns, 'inet', 'ot_fw')]);
      });
    }
    await teardown(ps);
  }
});
