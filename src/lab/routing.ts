/**
 * BGP in the lab: one BIRD per BGP router (the core `internet` and each site router), rendered from the plan.
 *   core ↔ site router: eBGP (core AS 65000, site i AS 65001+i); the core sends everything it knows, a site
 *     router sends its clients' /32s and what its edges announce. So anycast is real BGP, not static routes.
 *   site router ↔ edges: a passive session per edge (AS 64512, BFD) waiting for the edge agent's BIRD (its node
 *     config names this router: agents.ts); routes from the edges are merged into one ECMP kernel route
 *     (`merge paths on`, fib_multipath_hash_policy=1).
 * Prefixes a router originates (a client's /32, a customer router's /32) are announce-only static routes in
 * BIRD; the forwarding route itself is a kernel static route the lab installs (build.ts).
 */
import { birdCommand, birdPaths, parseBirdProtocols, startBird, type BirdBgpPeerSpec, type BirdConfigSpec, type BirdProtocol } from '../kernel/bird.js';
import { labPaths, type LabPaths } from './paths.js';
import { procStartTime, type LabProcess } from './processes.js';
import type { LabState } from './state.js';
import type { LabBgpPeer, LabHostPlan, LabPlan } from './topology.js';

/** Lab timers: a dead peer is noticed in 3 s; short retry waits so the lab converges fast. */
const HOLD_S = 3;
const KEEPALIVE_S = 1;
/**
 * BFD on the site routers: they require 100 ms between packets and declare an edge dead after its 3 missed
 * packets (300 ms); an edge declares the router dead after 5 (500 ms). With the edges' default 50 ms × 3 on both
 * sides, a site router's BIRD starved of CPU for 150 ms (the whole lab shares 2 CPUs with iperf3 in the benches
 * and tests) dropped every edge at once and blackholed the customer for a moment; a killed edge is still noticed
 * in about 300 ms.
 */
const SITE_ROUTER_BFD = { intervalMs: 100, multiplier: 5 } as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function peerSpec(p: LabBgpPeer, role: LabHostPlan['role']): BirdBgpPeerSpec {
  const toEdge = role === 'site-router' && p.export === 'none';
  return {
    name: p.protocol,
    neighbor: p.neighbor,
    remoteAs: p.peerAsn,
    localAddress: p.localAddress,
    bfd: toEdge,
    holdTime: HOLD_S,
    keepaliveTime: KEEPALIVE_S,
    passive: p.passive,
    import: 'all',
    export: p.export === 'none' ? 'none' : 'all',
    connectDelayTime: 1,
    connectRetryTime: 2,
    errorWaitTime: { min: 1, max: 5 },
  };
}

/** The BIRD config of a lab router (core or site router). Pure. */
export function birdSpecFor(h: LabHostPlan): BirdConfigSpec {
  if ((h.role !== 'core' && h.role !== 'site-router') || h.asn === undefined || h.routerId === undefined)
    throw new Error(`${h.name} is not a BGP router of the lab`);
  return {
    routerId: h.routerId,
    asn: h.asn,
    kernel: { export: 'all', mergePaths: h.role === 'site-router' },
    staticRoutes: h.announce.map((prefix) => ({ prefix })),
    bgpPeers: h.bgpPeers.map((p) => peerSpec(p, h.role)),
    ...(h.role === 'site-router' ? { bfd: SITE_ROUTER_BFD } : {}),
  };
}

/** The lab hosts that run BIRD. */
export function bgpRouters(plan: LabPlan): LabHostPlan[] {
  return plan.hosts.filter((h) => h.role === 'core' || h.role === 'site-router');
}

export interface BgpSessionStatus {
  /** The router whose BIRD reported it. */
  host: string;
  protocol: string;
  peerHost: string;
  /** BIRD's state (Established, Active, Connect, Idle…), or 'unknown' when BIRD did not answer. */
  state: string;
}

/** Starts BIRD on every BGP router and waits until every core ↔ site session is Established. */
export async function startRouting(
  state: LabState,
  paths: LabPaths,
  record: (p: LabProcess) => Promise<LabProcess>,
  deadline: number,
): Promise<void> {
  for (const h of bgpRouters(state.plan)) {
    const bird = await startBird({ name: h.name, netns: h.netns, runDir: paths.birdDir, spec: birdSpecFor(h), ifRunning: 'replace' });
    const pid = bird.pid!;
    await record({ role: 'bird', host: h.name, pid, startTime: (await procStartTime(pid)) ?? '', argv: ['bird', '-c', bird.paths.config], log: bird.paths.log });
  }
  // Core sessions only: the edge sessions come up once the edge agents (started later) run their BIRD.
  for (;;) {
    const sessions = (await routingStatus(state)).filter((s) => !state.plan.edges.some((e) => e.name === s.peerHost));
    if (sessions.length > 0 && sessions.every((s) => s.state === 'Established')) return;
    if (Date.now() > deadline)
      throw new Error(`BGP between the core and the site routers did not come up in time: ${sessions.map((s) => `${s.host}→${s.peerHost} ${s.state}`).join(', ')} (BIRD logs in ${paths.birdDir})`);
    await sleep(200);
  }
}

/** Every configured BGP session of the lab's routers as their BIRD reports it (never throws). */
export async function routingStatus(state: LabState): Promise<BgpSessionStatus[]> {
  const out: BgpSessionStatus[] = [];
  for (const h of bgpRouters(state.plan)) {
    let protocols: BirdProtocol[] = [];
    try {
      protocols = parseBirdProtocols(await birdCommand(birdPaths(labPaths(state.name).birdDir, h.name).socket, 'show protocols', { timeoutMs: 2000 }));
    } catch {
      // BIRD down or hung: every session of this router is reported 'unknown'.
    }
    for (const p of h.bgpPeers) {
      const found = protocols.find((x) => x.name === p.protocol);
      out.push({ host: h.name, protocol: p.protocol, peerHost: p.peerHost, state: found?.bgpState ?? 'unknown' });
    }
  }
  return out;
}
