// BGP anycast with real BIRD 2 daemons: a router namespace (merge paths on) peers over veths with three edge
// namespaces that announce 203.0.113.0/24 and 192.0.2.10/32 (configs built by the agent's edgeBirdSpec). The
// router's kernel must hold ONE multipath route per prefix with one nexthop per announcing edge; withdrawals,
// link loss (BFD) and graceful stops must remove exactly that edge's nexthop. Times are printed, not asserted
// (beyond generous bounds that separate BFD from the 9 s hold timer).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { edgeBirdSpec, type EdgeBgpInput } from '../../src/agent/bgp/announce.js';
import { startBird, type BirdConfigSpec, type BirdInstance } from '../../src/kernel/bird.js';
import { replaceAddresses } from '../../src/kernel/addresses.js';
import { ensureVeth, setLink } from '../../src/kernel/links.js';
import { setSysctls } from '../../src/kernel/netns.js';
import { deleteNftTableIfPresent, replaceNftTable } from '../../src/kernel/nft.js';
import { listRoutes, type Route } from '../../src/kernel/routes.js';
import { parseBgpPeerInput } from '../../src/model/bgp.js';
import { netnsHarness } from '../support/netns.js';

const h = netnsHarness();
const EDGES = [1, 2, 3] as const;
type Edge = (typeof EDGES)[number];
const routerAddr = (i: Edge) => `100.64.0.${4 * i - 3}`;
const edgeAddr = (i: Edge) => `100.64.0.${4 * i - 2}`;
const PREFIX = '203.0.113.0/24';
const ENDPOINT = '192.0.2.10/32';
/** Every character class the password charset allows that means something to BIRD's lexer outside a string. */
const PASSWORD = "S3cr!t#{;}'/*x";
/** Fast recovery for the test (BIRD's defaults wait 60 s after a failure, 120 s between connects). */
const TIMERS = { connectDelayTime: 1, connectRetryTime: 1, errorWaitTime: { min: 1, max: 2 } };
const RTPROT_BIRD = 12;
const ACCOUNT = 'a'.repeat(32);

let runDir: string;
let routerNs: string;
const edgeNs = new Map<Edge, string>();
let router: BirdInstance;
const edges = new Map<Edge, BirdInstance>();
const started: BirdInstance[] = [];

async function birdsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [comm, cmdline] = await Promise.all([readFile(`/proc/${entry}/comm`, 'utf8'), readFile(`/proc/${entry}/cmdline`, 'utf8')]);
      if (comm.trim() === 'bird' && cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

const edgeInput = (i: Edge, over: Partial<EdgeBgpInput> = {}): EdgeBgpInput => ({
  nodeId: `edge-${i}`,
  routerId: edgeAddr(i),
  asn: 65001,
  peers: [parseBgpPeerInput({ address: routerAddr(i), asn: 65000, bfd: true, hold_time: 9, keepalive: 3, password: PASSWORD })],
  accounts: [{ id: ACCOUNT, ready: true, prefixes: [{ cidr: PREFIX, advertised: true }] }],
  anycastEndpoints: ['192.0.2.10'],
  dataPlaneReady: true,
  drained: false,
  sessionTimers: TIMERS,
  ...over,
});

const routerSpec: BirdConfigSpec = {
  routerId: '100.64.0.1',
  asn: 65000,
  kernel: { export: 'all', mergePaths: true },
  staticRoutes: [],
  bgpPeers: EDGES.map((i) => ({
    name: `edge${i}`,
    neighbor: edgeAddr(i),
    remoteAs: 65001,
    bfd: true,
    holdTime: 9,
    keepaliveTime: 3,
    password: PASSWORD,
    import: 'all' as const,
    export: 'none' as const,
    ...TIMERS,
  })),
};

/** The router's kernel routes for our two prefixes (read with `ip -j route`). */
async function routerRoutes(): Promise<Route[]> {
  return (await listRoutes(routerNs, { table: 254, family: 4 })).filter((r) => r.dst === PREFIX || r.dst === ENDPOINT);
}

/** Edges whose address is a nexthop of `dst` in the router's kernel. */
function nexthopEdges(routes: Route[], dst: string): Edge[] {
  const r = routes.filter((x) => x.dst === dst);
  if (r.length === 0) return [];
  assert.equal(r.length, 1, `one route for ${dst}, got ${JSON.stringify(r)}`);
  return EDGES.filter((i) => r[0]!.nexthops.some((n) => n.via === edgeAddr(i) && n.dev === `r-e${i}`));
}

/** Polls the router's kernel until both prefixes have exactly `want` as nexthops; returns the elapsed ms. */
async function waitNexthops(want: readonly Edge[], what: string, timeoutMs = 20_000): Promise<number> {
  const t0 = performance.now();
  let last: Route[] = [];
  while (performance.now() - t0 < timeoutMs) {
    last = await routerRoutes();
    if ([PREFIX, ENDPOINT].every((d) => JSON.stringify(nexthopEdges(last, d)) === JSON.stringify([...want]))) return performance.now() - t0;
    await sleep(2);
  }
  throw new Error(`${what}: router never reached nexthops ${JSON.stringify(want)}; last: ${JSON.stringify(last)}`);
}

async function routerSession(i: Edge): Promise<string | undefined> {
  return (await router.showProtocols({ name: `edge${i}` }))[0]?.bgpState;
}

before(async () => {
  runDir = await mkdtemp('/tmp/ott-anycast-');
  routerNs = await h.create('router');
  for (const i of EDGES) edgeNs.set(i, await h.create(`edge${i}`));
  await setLink(routerNs, { name: 'lo', up: true });
  await setSysctls(routerNs, { 'net.ipv4.fib_multipath_hash_policy': 1 });
  for (const i of EDGES) {
    const ns = edgeNs.get(i)!;
    await setLink(ns, { name: 'lo', up: true });
    await ensureVeth({ ns: routerNs, name: `r-e${i}`, mac: `02:00:5e:10:0${i}:01`, peerNs: ns, peerName: `e${i}-r`, peerMac: `02:00:5e:10:0${i}:02` });
    await replaceAddresses(routerNs, [{ dev: `r-e${i}`, cidr: `${routerAddr(i)}/30` }]);
    await replaceAddresses(ns, [{ dev: `e${i}-r`, cidr: `${edgeAddr(i)}/30` }]);
  }
});

after(async () => {
  for (const b of started) await b.stop({ withdrawFirst: false, timeoutMs: 2_000 }).catch(() => undefined);
  for (const pid of await birdsUnder(runDir)) process.kill(pid, 'SIGKILL');
  await sleep(100);
  const left = await birdsUnder(runDir);
  await rm(runDir, { recursive: true, force: true });
  await h.cleanup();
  assert.deepEqual(left, [], 'no BIRD process may outlive the test');
});

test('three edges announce; the router installs one multipath route per prefix with three nexthops', async () => {
  const t0 = performance.now();
  router = await startBird({ name: 'router', netns: routerNs, runDir, spec: routerSpec });
  started.push(router);
  await Promise.all(
    EDGES.map(async (i) => {
      const e = await startBird({ name: `edge${i}`, netns: edgeNs.get(i)!, runDir, spec: edgeBirdSpec(edgeInput(i)).spec });
      started.push(e);
      edges.set(i, e);
    }),
  );
  await waitNexthops(EDGES, 'initial convergence');
  console.log(`# start to ECMP over 3 edges: ${(performance.now() - t0).toFixed(0)} ms (connect delay 1 s)`);

  const routes = await routerRoutes();
  assert.equal(routes.length, 2, 'one kernel route per prefix, not one per edge');
  for (const r of routes) {
    assert.equal(r.protocol, RTPROT_BIRD, 'installed by BIRD');
    assert.equal(r.nexthops.length, 3);
  }
  const sessions = await router.showProtocols();
  assert.deepEqual(sessions.filter((p) => p.proto === 'BGP').map((p) => [p.name, p.bgpState]), EDGES.map((i) => [`edge${i}`, 'Established']));
  const learned = await router.showRoutes({ network: PREFIX });
  assert.deepEqual(learned.map((r) => r.protocol).sort(), ['edge1', 'edge2', 'edge3']);
  assert.ok(learned.every((r) => r.asPath === 'AS65001i'), JSON.stringify(learned));
  // Edges announce but install nothing: their kernel has no blackhole for the customer prefix.
  for (const i of EDGES) {
    const own = (await listRoutes(edgeNs.get(i)!, { family: 4 })).filter((r) => r.dst === PREFIX || r.dst === ENDPOINT);
    assert.deepEqual(own, [], `edge ${i} kernel`);
  }
});

test('an edge exports exactly its list: extra static routes never leave it', async () => {
  const e1 = edges.get(1)!;
  const { spec } = edgeBirdSpec(edgeInput(1));
  const peer = spec.bgpPeers[0]!.name;
  // A bug elsewhere added routes that are not in the announce list: the export filter still holds them back.
  assert.equal(
    await e1.reconfigure({ ...spec, staticRoutes: [...spec.staticRoutes, { prefix: '198.51.100.0/24' }, { prefix: '203.0.113.128/25' }] }),
    'reconfigured',
  );
  const exported = await e1.showRoutes({ exportedTo: peer });
  assert.deepEqual(exported.map((r) => r.network).sort(), [ENDPOINT, PREFIX]);
  assert.deepEqual(await router.showRoutes({ network: '198.51.100.0/24' }), []);
  assert.deepEqual(await router.showRoutes({ network: '203.0.113.128/25' }), []);
  assert.equal(await e1.reconfigure(spec), 'reconfigured');
});

test('an edge that stops announcing (drained, by reconfigure) loses only its nexthop; restoring brings it back', async () => {
  const e2 = edges.get(2)!;
  let t0 = performance.now();
  assert.equal(await e2.reconfigure(edgeBirdSpec(edgeInput(2, { drained: true })).spec), 'reconfigured');
  const reconfMs = performance.now() - t0;
  const ms = await waitNexthops([1, 3], 'edge 2 drained');
  console.log(`# drain by reconfigure: configure took ${reconfMs.toFixed(0)} ms, router dropped the nexthop ${ms.toFixed(0)} ms later`);
  assert.equal(await routerSession(2), 'Established', 'withdrawn by UPDATE: the session stays up');

  t0 = performance.now();
  await e2.reconfigure(edgeBirdSpec(edgeInput(2)).spec);
  console.log(`# restore by reconfigure: 3 nexthops again after ${(performance.now() - t0 + (await waitNexthops(EDGES, 'edge 2 restored'))).toFixed(0)} ms`);

  // Data plane not ready: the same withdrawal.
  await e2.reconfigure(edgeBirdSpec(edgeInput(2, { dataPlaneReady: false })).spec);
  await waitNexthops([1, 3], 'edge 2 data plane down');
  await e2.reconfigure(edgeBirdSpec(edgeInput(2)).spec);
  await waitNexthops(EDGES, 'edge 2 data plane back');
});

test('an edge link going down (carrier loss, BFD on): the router drops that nexthop fast, far inside the 9 s hold time', async () => {
  const e1ns = edgeNs.get(1)!;
  await setLink(e1ns, { name: 'e1-r', up: false });
  const ms = await waitNexthops([2, 3], 'edge 1 link down');
  console.log(`# link down on edge 1: nexthop gone after ${ms.toFixed(0)} ms`);
  assert.ok(ms < 3_000, `took ${ms} ms`);
  await setLink(e1ns, { name: 'e1-r', up: true });
  console.log(`# link up: edge 1 back after ${(await waitNexthops(EDGES, 'edge 1 link up')).toFixed(0)} ms (error wait 1–2 s)`);
});

test('BFD: a silent failure (every packet dropped, link still up) is detected by BFD alone', async () => {
  const e3ns = edgeNs.get(3)!;
  const table = { family: 'inet' as const, name: 'ott_blackout' };
  await replaceNftTable(e3ns, {
    ...table,
    chains: [
      { name: 'in', base: { type: 'filter', hook: 'input', prio: -500, policy: 'drop' }, rules: [] },
      { name: 'out', base: { type: 'filter', hook: 'output', prio: -500, policy: 'drop' }, rules: [] },
    ],
  });
  try {
    const ms = await waitNexthops([1, 2], 'edge 3 blacked out');
    console.log(`# silent failure of edge 3: nexthop gone after ${ms.toFixed(0)} ms (BFD 50 ms × 3; hold time would be 9 s)`);
    assert.ok(ms < 3_000, `took ${ms} ms`);
  } finally {
    await deleteNftTableIfPresent(e3ns, table.family, table.name);
  }
  console.log(`# edge 3 reachable again: back after ${(await waitNexthops(EDGES, 'edge 3 restored')).toFixed(0)} ms`);
});

test('graceful stop withdraws first (the session is still up when the nexthop goes), then closes the session', async () => {
  const e3 = edges.get(3)!;
  const t0 = performance.now();
  // A long settle makes the order observable: withdrawals, a pause, only then `down`.
  const stopping = e3.stop({ withdrawSettleMs: 1_000 });
  const ms = await waitNexthops([1, 2], 'edge 3 graceful stop');
  const sessionThen = await routerSession(3);
  const exit = await stopping;
  const closedMs = performance.now() - t0;
  console.log(`# graceful stop of edge 3: nexthop gone after ${ms.toFixed(0)} ms, session state then ${sessionThen}; BIRD exited after ${closedMs.toFixed(0)} ms`);
  assert.equal(sessionThen, 'Established', 'withdrawn while the session was still up');
  assert.equal(exit.code, 0);
  assert.notEqual(await routerSession(3), 'Established');

  // For comparison: `down` alone (no withdrawal first) — BIRD closes the session with a Cease notification.
  const e2 = edges.get(2)!;
  const t1 = performance.now();
  const stopping2 = e2.stop({ withdrawFirst: false });
  const ms2 = await waitNexthops([1], 'edge 2 down without withdrawal');
  await stopping2;
  console.log(`# stop of edge 2 without withdrawal (Cease): nexthop gone after ${(performance.now() - t1).toFixed(0)} ms (seen at ${ms2.toFixed(0)} ms)`);

  await edges.get(1)!.stop();
  const t2 = performance.now();
  while ((await routerRoutes()).length > 0 && performance.now() - t2 < 5_000) await sleep(5);
  assert.deepEqual(await routerRoutes(), [], 'the last edge gone: no route left');
  await router.stop({ withdrawFirst: false });
  assert.deepEqual(await birdsUnder(runDir), []);
});
