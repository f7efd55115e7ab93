/**
 * The edge's BGP: one BIRD in the host netns (files under <dataDir>/bird/, control socket edge.ctl), configured
 * from the desired state through edgeBirdSpec, supervised (restarted after a crash or a hang, with backoff).
 *
 * Each pass (scheduler key "bgp"; after every account or host result, settings, node config or drain change):
 *   1. the anycast endpoints are made local (lo, anycast-local.ts);
 *   2. what may be announced is computed (plan.ts → announce.ts): advertised prefixes of accounts ready here and
 *      routed by the kernel, the endpoints that are local; nothing while drained or while the host is not ready;
 *   3. BIRD is started or reconfigured to exactly that (a config BIRD refuses leaves the running one).
 *
 * Life cycle decisions:
 *   - Agent start: BIRD left running by an earlier agent (crash, or `stop({bgp: 'leave'})`) is ADOPTED, but only
 *     once the agent has a complete view (host and every account reconciled once, or `settleTimeoutMs`): until
 *     then it keeps announcing what it announced, so an agent restart never flaps the node's routes.
 *   - Agent crash: BIRD keeps running and announcing (the data plane keeps working too); if the host dies with it,
 *     the peers' BFD/hold timers remove its routes.
 *   - Graceful stop (SIGTERM): withdraw everything, wait for the UPDATEs to leave, then stop BIRD (`stop()`); the
 *     kernel objects stay.
 *   - No peers configured: no BIRD (a running one is stopped, withdrawing first).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { listAddresses } from '../../kernel/addresses.js';
import { BirdSupervisor, birdPaths, startBird, type BirdBfdSpec, type BirdConfigSpec, type BirdSupervisorEvent } from '../../kernel/bird.js';
import { listRoutes, RT_PROTO_OPENTRANSIT } from '../../kernel/routes.js';
import { effectiveNodeBgp, type NodeConfig as NodeDocument } from '../../model/node-config.js';
import type { BgpSessionStatus, NodeBgpStatus, NodeStatus } from '../../model/node-status.js';
import type { Settings } from '../../model/schemas.js';
import { hostVethName, type NodeConfig } from '../desired/node.js';
import { errorText } from '../reconcile/engine.js';
import { bgpPeerProtocolName, edgeBirdSpec, type EdgeSessionTimers } from './announce.js';
import { anycastLoopbackDesired, reconcileAnycastLoopback } from './anycast-local.js';
import { accountsForBgp, type AccountsForBgp, type AppliedAdvertised } from './plan.js';

/** The instance name: files <dataDir>/bird/edge.{conf,ctl,pid,log}. */
export const EDGE_BIRD_NAME = 'edge';

/**
 * Recovery timers of the edge's sessions. BIRD's defaults (connect after 5 s, retry every 120 s, wait 60–300 s after
 * an error) would keep a repaired link dark for minutes; these retry within seconds and back off to 30 s while a
 * link flaps.
 */
export const EDGE_SESSION_TIMERS: EdgeSessionTimers = { connectDelayTime: 1, connectRetryTime: 5, errorWaitTime: { min: 2, max: 30 } };

export interface BgpManagerOptions {
  node: NodeConfig;
  /** The agent's directory: BIRD's files go to <dataDir>/bird/. */
  dataDir: string;
  log: (msg: string) => void;
  /** Called when the BGP status changed (the agent publishes its status document). */
  onStatus: () => void;
  /** BIRD supervision (defaults: check every 2 s, 2 s deadline, 3 failures = hung; restart backoff 500 ms … 30 s). */
  supervision?: { checkIntervalMs?: number; healthTimeoutMs?: number; failuresBeforeRestart?: number; backoff?: { initialMs?: number; maxMs?: number } };
  sessionTimers?: EdgeSessionTimers;
  /** BFD timers for peers with bfd on (default 50 ms × 3). */
  bfd?: BirdBfdSpec;
  /** Longest wait for the first complete reconcile before announcing what is ready (default 30 s). */
  settleTimeoutMs?: number;
  /** How often sessions are read from BIRD for the status (default 2 s). */
  sessionPollMs?: number;
}

/** The agent's view at the time of a pass. */
export interface BgpView extends AccountsForBgp {
  /** The replica holds a complete state (initial sync, or a replica that completed one). */
  complete: boolean;
  /** Decoders of the stored documents (they throw when a document is unreadable: reported, BIRD left as it is). */
  settings: () => Settings;
  nodeConfig: () => NodeDocument;
  drained: boolean;
  /** The host netns objects and the data plane ('ok' = ready to take traffic). */
  hostState: 'ok' | 'error' | 'pending';
}

export class BgpManager {
  private supervisor: BirdSupervisor | undefined;
  private readonly applied: AppliedAdvertised = new Map();
  private readonly outcomes = new Map<string, string>();
  private readonly status: NodeBgpStatus = { state: 'pending', drained: false, announced: [], sessions: [] };
  private readonly startedAt = Date.now();
  private stopped = false;
  private queue: Promise<unknown> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | undefined;
  private peers: { address: string; asn: number }[] = [];
  private readonly runDir: string;

  constructor(private readonly o: BgpManagerOptions) {
    this.runDir = path.join(o.dataDir, 'bird');
  }

  /**
   * Whether the outcome of scheduler key `key` (an account's state and applied revision, or the host's state)
   * differs from the last one seen: a BGP pass is needed only then (a periodic resync of 1000 unchanged accounts
   * must not cost 1000 passes).
   */
  outcomeChanged(key: string, status: Pick<NodeStatus, 'accounts' | 'host'>): boolean {
    const a = status.accounts[key];
    const outcome = a ? `${a.state}|${a.applied_revision ?? ''}` : key === 'host' || key === 'dataplane' ? status.host.state : undefined;
    const before = this.outcomes.get(key);
    if (outcome === undefined) {
      this.outcomes.delete(key);
      return true;
    }
    if (before === outcome) return false;
    this.outcomes.set(key, outcome);
    return true;
  }

  /** The BGP part of the node status (a copy). */
  snapshot(): NodeBgpStatus {
    return structuredClone(this.status);
  }

  /** The supervised BIRD's pid (undefined when none runs). */
  get birdPid(): number | undefined {
    return this.supervisor?.instance?.pid;
  }

  /** One pass (serialised with stop). Throws when the pass failed (the scheduler retries with backoff). */
  apply(view: BgpView): Promise<void> {
    return this.serial(() => this.applyNow(view));
  }

  /**
   * Ends BGP management. 'withdraw' (default): withdraw every announcement, then stop BIRD. 'leave': stop
   * supervising and leave BIRD running as it is (the next agent adopts it).
   */
  stop(mode: 'withdraw' | 'leave' = 'withdraw'): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    return this.serial(async () => {
      const s = this.supervisor;
      this.supervisor = undefined;
      if (!s) return;
      if (mode === 'leave') return s.release();
      this.o.log('bgp: withdrawing every announcement, then stopping BIRD');
      await s.stop({ withdrawFirst: true });
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private setStatus(patch: Partial<NodeBgpStatus>, replace = false): void {
    const before = JSON.stringify(this.status);
    if (replace) {
      for (const k of Object.keys(this.status) as (keyof NodeBgpStatus)[]) {
        if (!['state', 'drained', 'announced', 'sessions', 'bird'].includes(k)) delete this.status[k];
      }
    }
    Object.assign(this.status, patch);
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete (this.status as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(this.status) !== before) this.o.onStatus();
  }

  /** Waiting for the first complete reconcile (see the module comment), unless it takes too long. */
  private settling(view: BgpView): string | undefined {
    if (Date.now() - this.startedAt > (this.o.settleTimeoutMs ?? 30_000)) return undefined;
    if (!view.complete) return 'waiting for a complete desired state';
    if (view.hostState === 'pending') return 'waiting for the host to be reconciled';
    const pending = [...view.docs.keys()].filter((id) => (view.states[id]?.state ?? 'pending') === 'pending');
    if (pending.length) return `waiting for ${pending.length} account(s) to be reconciled`;
    return undefined;
  }

  private async applyNow(view: BgpView): Promise<void> {
    if (this.stopped) return;
    const { node } = this.o;
    const settling = this.settling(view);
    if (settling) {
      this.setStatus({ state: 'pending', error: settling, drained: view.drained });
      return;
    }
    let bgp: ReturnType<typeof effectiveNodeBgp>;
    let settings: Settings;
    try {
      settings = view.settings();
      bgp = effectiveNodeBgp(settings, view.nodeConfig());
    } catch (err) {
      // Keep announcing what BIRD announces: an unreadable document is not a reason to move traffic.
      const error = `cannot read the BGP configuration: ${errorText(err)}`;
      this.setStatus({ state: 'error', error, drained: view.drained });
      throw new Error(error);
    }
    this.peers = bgp.peers.map((p) => ({ address: p.address, asn: p.asn }));
    const changes: string[] = [];
    const problems: string[] = [];

    // 1. The endpoints become local addresses (kept while drained, pruned only from a complete state).
    let localEndpoints: string[] = [];
    try {
      localEndpoints = await reconcileAnycastLoopback(node.hostNetns, anycastLoopbackDesired(settings.anycast_endpoints), view.complete, changes);
    } catch (err) {
      problems.push(`anycast endpoints on lo: ${errorText(err)}`);
    }
    for (const c of changes) this.o.log(`bgp: ${c}`);

    if (bgp.peers.length === 0) {
      await this.stopBird('no BGP peers are configured');
      this.setStatus({ state: problems.length ? 'error' : 'off', error: problems.length ? problems.join('; ') : 'no BGP peers configured (settings bgp.peers or the node config)', drained: view.drained, announced: [], sessions: [], asn: bgp.asn }, true);
      if (problems.length) throw new Error(problems.join('; '));
      return;
    }

    const routerId = bgp.routerId ?? (await this.uplinkAddress());
    if (!routerId) {
      const error = `no BGP router id: set bgp.router_id in the node config, or give the uplink ${node.uplink} an IPv4 address`;
      this.setStatus({ state: 'error', error, drained: view.drained });
      throw new Error(error);
    }

    // 2. What may be announced. The kernel must route each prefix to its account's veth.
    const servable = new Map<string, Set<string>>();
    const vethOf = new Map([...view.docs.keys()].map((id) => [hostVethName(id), id]));
    for (const r of await listRoutes(node.hostNetns, { table: node.table, protocol: RT_PROTO_OPENTRANSIT })) {
      if (r.type !== 'unicast') continue;
      for (const nh of r.nexthops) {
        const id = vethOf.get(nh.dev);
        if (id) (servable.get(id) ?? servable.set(id, new Set()).get(id)!).add(r.dst);
      }
    }
    const { plan, spec, announcements } = desiredEdgeBird({
      node,
      view: { ...view, servable },
      bgp,
      routerId,
      localEndpoints,
      applied: this.applied,
      ...(this.o.sessionTimers ? { sessionTimers: this.o.sessionTimers } : {}),
      ...(this.o.bfd ? { bfd: this.o.bfd } : {}),
    });

    // 3. BIRD runs exactly that.
    try {
      await this.runBird(spec);
    } catch (err) {
      problems.push(`BIRD: ${errorText(err)}`);
    }
    const refused = [
      ...announcements.refused.map((r) => ({ ...(r.accountId ? { account_id: r.accountId } : {}), value: r.value, reason: r.reason })),
      ...plan.held.map((h) => ({ account_id: h.accountId, value: h.value, reason: h.reason })),
    ];
    this.setStatus(
      {
        state: problems.length ? 'error' : 'ok',
        error: problems.length ? problems.join('; ') : undefined,
        drained: view.drained,
        router_id: routerId,
        asn: bgp.asn,
        announced: announcements.all,
        withheld: announcements.withheld,
        not_ready: Object.keys(plan.notReady).length ? plan.notReady : undefined,
        refused: refused.length ? refused : undefined,
        bird: this.birdInfo(),
      },
      true,
    );
    await this.pollSessions();
    if (problems.length) throw new Error(problems.join('; '));
  }

  private birdInfo(): NodeBgpStatus['bird'] {
    const s = this.supervisor;
    if (!s) return undefined;
    const i = s.instance;
    return { restarts: s.restarts, ...(i?.pid !== undefined ? { pid: i.pid } : {}), ...(i ? { adopted: i.adopted } : {}) };
  }

  /** The first global IPv4 address of the uplink: the default router id. */
  private uplinkAddress(): Promise<string | undefined> {
    return uplinkRouterId(this.o.node);
  }

  private async runBird(spec: BirdConfigSpec): Promise<void> {
    if (this.supervisor) {
      const r = await this.supervisor.reconfigure(spec);
      if (r === 'reconfigured') this.o.log(`bgp: BIRD reconfigured (announcing ${spec.staticRoutes.map((s) => s.prefix).join(' ') || 'nothing'})`);
      return;
    }
    const s = new BirdSupervisor({
      name: EDGE_BIRD_NAME,
      netns: this.o.node.hostNetns,
      runDir: this.runDir,
      spec,
      checkIntervalMs: this.o.supervision?.checkIntervalMs ?? 2_000,
      healthTimeoutMs: this.o.supervision?.healthTimeoutMs ?? 2_000,
      failuresBeforeRestart: this.o.supervision?.failuresBeforeRestart ?? 3,
      ...(this.o.supervision?.backoff ? { backoff: this.o.supervision.backoff } : {}),
      onEvent: (e) => this.onBirdEvent(e),
    });
    // Adopts a BIRD an earlier agent left running (reconfiguring it to `spec`), else starts one.
    await s.start();
    this.supervisor = s;
    this.pollTimer ??= setInterval(() => void this.serial(() => this.pollSessions()).catch(() => undefined), this.o.sessionPollMs ?? 2_000);
    this.pollTimer.unref();
  }

  private onBirdEvent(e: BirdSupervisorEvent): void {
    switch (e.type) {
      case 'started':
        this.o.log(`bgp: BIRD ${e.adopted ? 'adopted' : 'started'} (pid ${e.pid}${e.restarts ? `, restart ${e.restarts}` : ''})`);
        break;
      case 'exited':
        this.o.log(`bgp: BIRD exited (${e.exit.signal ? `signal ${e.exit.signal}` : `status ${e.exit.code}`}); restarting`);
        break;
      case 'unhealthy':
        this.o.log(`bgp: BIRD did not answer (${e.problem}, ${e.consecutive} in a row): ${e.error}`);
        break;
      case 'killing-hung':
        this.o.log(`bgp: BIRD (pid ${e.pid}) is hung: killing it`);
        break;
      case 'restart-scheduled':
        this.o.log(`bgp: restarting BIRD in ${e.delayMs} ms (attempt ${e.attempt})`);
        break;
      case 'start-failed':
        this.o.log(`bgp: BIRD failed to start: ${e.error}`);
        break;
    }
    if (!this.stopped) this.setStatus({ bird: this.birdInfo() });
  }

  /** Stops the supervised BIRD, or one an earlier agent left on our socket (withdrawing first). */
  private async stopBird(why: string): Promise<void> {
    if (this.supervisor) {
      this.o.log(`bgp: stopping BIRD (${why})`);
      const s = this.supervisor;
      this.supervisor = undefined;
      await s.stop({ withdrawFirst: true });
      return;
    }
    const paths = birdPaths(this.runDir, EDGE_BIRD_NAME);
    if (!existsSync(paths.socket) && !existsSync(paths.pidFile)) return;
    try {
      const left = await startBird({ name: EDGE_BIRD_NAME, netns: this.o.node.hostNetns, runDir: this.runDir, spec: noPeersSpec(), ifRunning: 'adopt' });
      this.o.log(`bgp: stopping the BIRD an earlier run left (${why})`);
      await left.stop({ withdrawFirst: false });
    } catch (err) {
      this.o.log(`bgp: could not stop the BIRD an earlier run left: ${errorText(err)}`);
    }
  }

  /** Reads the sessions from BIRD into the status. */
  private async pollSessions(): Promise<void> {
    if (this.stopped) return;
    const instance = this.supervisor?.instance;
    let sessions: BgpSessionStatus[];
    if (!instance) {
      sessions = this.peers.map((p) => ({ peer: p.address, peer_asn: p.asn, state: this.supervisor ? 'bird-down' : 'off' }));
    } else {
      let protocols: Awaited<ReturnType<typeof instance.showProtocols>> = [];
      let failed = false;
      try {
        protocols = await instance.showProtocols({ all: true });
      } catch {
        failed = true;
      }
      sessions = this.peers.map((p) => {
        const found = protocols.find((x) => x.name === bgpPeerProtocolName(p.address));
        if (!found) return { peer: p.address, peer_asn: p.asn, state: failed ? 'unknown' : 'absent' };
        const s: BgpSessionStatus = { peer: p.address, peer_asn: p.asn, state: found.state, since: found.since };
        if (found.bgpState) s.bgp_state = found.bgpState;
        const exported = found.channels?.reduce((n, c) => n + c.exported, 0);
        if (exported !== undefined) s.exported = exported;
        if (found.lastError) s.info = found.lastError;
        return s;
      });
    }
    this.setStatus({ sessions, bird: this.birdInfo() });
  }
}

/**
 * What the edge's BIRD should run: the announcement input from the view (plan.ts), then the config spec
 * (announce.ts). One function for the agent's pass and `opentransit plan` (bgp/plan-node.ts), so both say the same.
 */
export function desiredEdgeBird(i: {
  node: NodeConfig;
  view: AccountsForBgp & { drained: boolean; hostState: 'ok' | 'error' | 'pending' };
  bgp: ReturnType<typeof effectiveNodeBgp>;
  routerId: string;
  /** The anycast endpoints that are local addresses (anycast-local.ts). */
  localEndpoints: readonly string[];
  applied: AppliedAdvertised;
  sessionTimers?: EdgeSessionTimers;
  bfd?: BirdBfdSpec;
}): { plan: ReturnType<typeof accountsForBgp> } & ReturnType<typeof edgeBirdSpec> {
  const { view } = i;
  const plan = accountsForBgp({ docs: view.docs, states: view.states, ...(view.servable ? { servable: view.servable } : {}) }, i.applied);
  const { spec, announcements } = edgeBirdSpec({
    nodeId: i.node.nodeId,
    routerId: i.routerId,
    asn: i.bgp.asn,
    peers: i.bgp.peers,
    accounts: plan.accounts,
    anycastEndpoints: i.localEndpoints,
    dataPlaneReady: view.hostState === 'ok',
    drained: view.drained,
    sessionTimers: i.sessionTimers ?? EDGE_SESSION_TIMERS,
    ...(i.bfd ? { bfd: i.bfd } : {}),
  });
  return { plan, spec, announcements };
}

/** The edge BIRD's files under an agent's data dir. */
export function edgeBirdPaths(dataDir: string): ReturnType<typeof birdPaths> {
  return birdPaths(path.join(dataDir, 'bird'), EDGE_BIRD_NAME);
}

/** The first global IPv4 address of the uplink: the default BGP router id. */
export async function uplinkRouterId(node: NodeConfig): Promise<string | undefined> {
  const addrs = await listAddresses(node.hostNetns, { dev: node.uplink, family: 4 });
  return addrs.find((a) => a.scope === 0)?.local;
}

/** A config that only lets an adopted BIRD answer until it is stopped (no sessions, nothing announced). */
function noPeersSpec(): BirdConfigSpec {
  return { routerId: '192.0.2.1', asn: 64512, kernel: { export: 'none', mergePaths: false }, staticRoutes: [], bgpPeers: [] };
}
