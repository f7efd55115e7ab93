/**
 * The edge agent: follows the desired state in the store into a local replica, and keeps the kernel of its host
 * netns equal to it, continuously.
 *
 *   store ──listAndWatch(desired/)──► replica (persisted; serves when the store is gone)
 *         ──► scheduler: one key per account + "host" + "dataplane" ──► desired (pure) ──► reconcile ──► kernel
 *         ──► status (per account ok/error, applied revision) ──► store nodes/<id>/status
 *         ──► data-plane counters, every countersMs ──► store nodes/<id>/counters
 *
 * The eBPF data plane (reconcile/dataplane.ts): loaded (or its pins reopened) at start; XDP on the uplink and the
 * global maps (anycast endpoints, blocklist, mitigation rules, sampling) are the "dataplane" key's; each account's
 * pass attaches tc on its veth and writes its own entries, so an account is reported ok only once its namespace,
 * firewall, routes AND its data-plane entries are in place. Accounts and rules get small numbers on this node,
 * persisted in the data dir (reconcile/dataplane-numbers.ts).
 *
 * - Changes reconcile only the accounts they touch.
 * - Drift repair: kernel notifications (drift-watch.ts) reconcile the account, the host or the data plane they
 *   touch within milliseconds; the data plane (XDP: not notified) is re-checked every `resyncMs`, and everything
 *   else in full every `accountResyncMs`, for what the kernel does not notify (map entries, most sysctls, GRO).
 *   Without the notifications (AgentOptions.watchKernel false, or the watch failed to open) every key re-runs
 *   every `resyncMs`.
 * - Pruning (accounts deleted, objects we own but no longer want) happens only once the replica holds a complete
 *   state: after the store's initial sync, or from a replica that completed one before (offline boot).
 * - Shutdown never touches the kernel: traffic keeps flowing while the agent restarts.
 */
import { decodeAccountDocument } from '../model/account.js';
import type { NodeCounters } from '../model/counters.js';
import { accountIdOfKey, keys } from '../model/keys.js';
import { decodeSettings } from '../model/settings.js';
import type { AccountDocument } from '../model/schemas.js';
import type { NodeStatus } from '../model/node-status.js';
import type { XdpMode } from '../kernel/bpf/index.js';
import { Replica, followIntoReplica, type Following } from '../store/replica.js';
import type { Store, WatchEvent } from '../store/store.js';
import { customerDesired, type CustomerDesired } from './desired/customer.js';
import { activeMitigations, decodeMitigations, type DataplanePlan } from './desired/dataplane.js';
import { hostDesired } from './desired/host.js';
import { accountShortId, CUSTOMER_VETH, customerNetns, hostVethName, type NodeConfig } from './desired/node.js';
import { reconcileCustomer, removeCustomer } from './reconcile/customer.js';
import { DataplaneManager } from './reconcile/dataplane.js';
import { reconcileHost } from './reconcile/host.js';
import { Scheduler } from './reconcile/scheduler.js';
import { errorText } from './reconcile/engine.js';
import { BgpManager, type BgpManagerOptions } from './bgp/manager.js';
import { decodeNodeConfig } from '../model/node-config.js';
import { DEFAULT_HEARTBEAT_MS } from '../model/node-status.js';
import { initialStoreStatus, StatusPublisher } from './status-publisher.js';
import { KernelWatch, type KernelChange } from '../kernel/netlink/watch.js';
import { driftKeys, type DriftContext, type LinkCheck } from './drift-watch.js';
import { dropHostSnapshot } from './reconcile/customer.js';

export const HOST_KEY = 'host';
/** The scheduler key of the data plane's shared state: XDP on the uplink, global maps, pruning. */
export const DATAPLANE_KEY = 'dataplane';
/** How long an account pass trusts the shared data plane it (or another account pass) found in place. */
const GLOBAL_CHECK_MS = 1000;
/** The scheduler key of BGP (bgp/manager.ts): BIRD's announcements follow every other key's result. */
export const BGP_KEY = 'bgp';

interface AccountsView {
  version: number;
  docs: Map<string, { doc: AccountDocument; revision: number }>;
  broken: Map<string, string>;
  /** account id → the account whose short id it shares (and which keeps the kernel names). */
  clashes: Map<string, string>;
}

/** The drift-repair resync period when AgentOptions.resyncMs is not given. */
export const DEFAULT_RESYNC_MS = 5000;
/** The slow tier (sysctls, GRO) is re-read every this many resync periods unless slowCheckMs says otherwise. */
export const SLOW_CHECK_PERIODS = 6;
/** How long a veth end the kernel reported changed is left to settle before it is judged (Agent.checkLinks). */
const LINK_SETTLE_MS = 250;
/** With kernel notifications, how often each account is checked in full when AgentOptions.accountResyncMs is not given. */
export const DEFAULT_ACCOUNT_RESYNC_MS = 60_000;

export interface AgentOptions {
  node: NodeConfig;
  store: Store;
  /** The agent's own directory (replica). */
  dataDir: string;
  /** Full resync period (drift repair); default 5000 ms. */
  resyncMs?: number;
  /**
   * How often an account's sysctls and GRO setting, in namespaces that already existed, are re-read (default six
   * resync periods, 30 s). They are the dearest reads of a resync pass (/proc/sys opens cost O(namespaces), a
   * generic netlink socket per namespace) and the least likely to drift; routes, rules, addresses, neighbours, the
   * veth, the namespace, the firewall table and the data plane are checked every resync period.
   */
  slowCheckMs?: number;
  /**
   * React to kernel notifications (default true): a route, rule, address, link, tc filter, nft table or namespace
   * of ours changed by someone else is repaired within milliseconds (drift-watch.ts), and the accounts' periodic
   * check runs every accountResyncMs instead of every resyncMs. If the watch cannot be opened the agent says so
   * and checks every account every resyncMs.
   */
  watchKernel?: boolean;
  /**
   * With kernel notifications: each account is checked in full at least this often (default 60 s), for drift the
   * kernel does not notify (the data plane's map entries, sysctls other than forwarding and rp_filter, GRO). The
   * checks are spread evenly over the period.
   */
  accountResyncMs?: number;
  /** How many accounts reconcile at once (kernel work spawns processes); default 4. */
  concurrency?: number;
  log?: (msg: string) => void;
  /** The eBPF data plane: where its pins live (default /sys/fs/bpf/opentransit), object files, XDP mode. */
  bpf?: { pinBase?: string; objects?: { xdpEdge?: string; tcGre?: string }; xdpMode?: XdpMode };
  /** Copy one packet in N to the samples ring buffer (0 = off, the default). */
  sampleEvery?: number;
  /** How often data-plane counters are published to the store; default 10000 ms. */
  countersMs?: number;
  /**
   * The status is republished at least this often (default 5000 ms), even when nothing changed: readers take a
   * node whose last report is older than three heartbeats as stale (the agent died or cannot reach the store).
   */
  heartbeatMs?: number;
  /** BGP tuning (supervision, timers; tests). */
  bgp?: Partial<Omit<BgpManagerOptions, 'node' | 'dataDir' | 'log' | 'onStatus'>>;
}

export class Agent {
  private replica!: Replica;
  private following: Following | undefined;
  private readonly scheduler: Scheduler;
  private complete = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly status: NodeStatus;
  /** Status, liveness lease and store reachability (local-status.json): status-publisher.ts. */
  private readonly publisher: StatusPublisher;
  private stopped = false;
  private readonly log: (msg: string) => void;
  /** Bumped on every replica change; keys the decoded view. */
  private replicaVersion = 0;
  private view: AccountsView | undefined;
  private dataplane: DataplaneManager | undefined;
  private dataplaneInitError: string | undefined;
  private planCache: { key: string; plan: DataplanePlan } | undefined;
  private readonly desiredCache = new Map<string, { revision: number; desired: CustomerDesired }>();
  /** When each account's slow-tier objects (sysctls, GRO) were last checked (AgentOptions.slowCheckMs). */
  private readonly slowChecked = new Map<string, number>();
  private mitigationsCache: ({ version: number } & ReturnType<typeof decodeMitigations>) | undefined;
  /** status.applied_revision may be behind the accounts' states (stamp, refreshApplied). */
  private appliedStale = false;
  /** The global plan an account pass last found in place, and when (see applyAccountDataplane). */
  private globalChecked: { global: DataplanePlan['global']; at: number } | undefined;
  /** Set by the periodic resync: the next data-plane pass diffs the global maps even if nothing changed. */
  private forceDataplane = true;
  private hostErrors: string[] | undefined;
  private dataplaneErrors: string[] | undefined;
  private dataplaneWarnings: string[] = [];
  private expiryTimer: NodeJS.Timeout | undefined;
  private countersTimer: NodeJS.Timeout | undefined;
  private countersWriting: Promise<void> = Promise.resolve();
  private lastCounters: string | undefined;
  private readonly bgp: BgpManager;
  /** Kernel notifications (undefined: not open yet, or unavailable). */
  private kernelWatch: KernelWatch | undefined;
  /** Drift is the kernel watch's (the periodic pass re-checks accounts every accountResyncMs); false: every resync. */
  private watching: boolean;
  private kernelWatchSettled!: () => void;
  private readonly kernelWatchOpened = new Promise<void>((resolve) => (this.kernelWatchSettled = resolve));
  /** Veth ends to look at once a burst of notifications has settled (checkLinks). */
  private readonly pendingLinkChecks = new Map<string, LinkCheck>();
  private linkCheckTimer: NodeJS.Timeout | undefined;
  /** When the periodic pass last scheduled the host and BGP keys and a full data-plane diff (with the kernel watch). */
  private sharedChecked: number | undefined;
  /** When each account's last pass started (the periodic checks pick the longest unchecked). */
  private readonly lastPass = new Map<string, number>();
  /** Kernel names → account ids, per replica version and host link generation (drift-watch.ts's lookups). */
  private names: { version: number; hostVeth: Map<string, string>; netns: Map<string, string>; nsid?: Map<number, string> } | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.watching = opts.watchKernel ?? true;
    if (!this.watching) this.kernelWatchSettled();
    this.scheduler = new Scheduler({
      worker: (key) => this.reconcileKey(key),
      concurrency: opts.concurrency ?? 4,
      onResult: (key, err) => {
        if (err) this.log(`reconcile ${key} failed: ${errorText(err)}`);
        // What BGP announces depends on every other key's outcome (an account failing here is withdrawn).
        if (key !== BGP_KEY && this.bgp.outcomeChanged(key, this.status)) this.scheduler.schedule(BGP_KEY);
        this.scheduleStatus();
      },
    });
    this.bgp = new BgpManager({
      ...opts.bgp,
      node: opts.node,
      dataDir: opts.dataDir,
      log: (m) => this.log(m),
      onStatus: () => {
        this.status.bgp = this.bgp.snapshot();
        this.scheduleStatus();
      },
    });
    this.status = {
      node_id: opts.node.nodeId,
      host_netns: opts.node.hostNetns,
      store: initialStoreStatus(opts.store.kind),
      replica_revision: null,
      applied_revision: null,
      host: { state: 'pending' },
      accounts: {},
      last_reconcile_at: null,
      heartbeat_ms: opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      updated_at: new Date().toISOString(),
    };
    this.publisher = new StatusPublisher({
      store: opts.store,
      nodeId: opts.node.nodeId,
      dataDir: opts.dataDir,
      heartbeatMs: this.status.heartbeat_ms,
      status: this.status,
      refresh: () => this.refreshApplied(),
      log: this.log,
    });
  }

  /** Starts following the store. Resolves once the first complete state (store sync or replica) is being applied. */
  async start(): Promise<void> {
    this.replica = await Replica.open(`${this.opts.dataDir}/replica`, keys.desiredPrefix);
    this.openDataplane();
    if (this.replica.revision !== undefined) {
      // A replica that completed a list before is a complete (if possibly old) state: serve it right away, so a
      // restart while the store is down keeps the data plane exactly as it was.
      this.complete = true;
      this.log(`booting from the local replica at revision ${this.replica.revision}`);
      this.scheduleAll();
    }
    this.following = followIntoReplica(this.opts.store, this.replica, {
      onEvent: (event) => this.onEvent(event),
      onError: (err, context) => {
        this.setReachable(false, `${context}: ${errorText(err)}`);
        this.log(`${context}: ${errorText(err)}`);
      },
    });
    if (this.watching) void this.openKernelWatchWhenSettled();
    const resyncMs = this.opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.resyncTimer = setInterval(() => this.resync(), resyncMs);
    this.resyncTimer.unref();
    this.publisher.start();
    const countersMs = this.opts.countersMs ?? 10_000;
    this.countersTimer = setInterval(() => this.publishCounters(), countersMs);
    this.countersTimer.unref();
  }

  /**
   * Starts listening to the kernel once the first complete state has been applied (its passes read everything).
   * Not before: while a socket listens to every namespace, each notification in any of them costs the kernel a
   * linear search of the host's namespace ids (peernet2id; ~35 µs a route change at 1000 customers), and a cold
   * start makes dozens per customer. Drift in between is the periodic check's (accountResyncMs).
   */
  private async openKernelWatchWhenSettled(): Promise<void> {
    while (!this.complete && !this.stopped) await new Promise((r) => setTimeout(r, 50).unref());
    await this.scheduler.idle();
    if (!this.stopped) await this.openKernelWatch();
    this.kernelWatchSettled();
  }

  /** Resolves once the kernel watch has been opened (or has failed to open). */
  kernelWatchReady(): Promise<void> {
    return this.kernelWatchOpened;
  }

  /** Starts listening to the kernel (drift-watch.ts); a failure only means drift is found by the periodic checks. */
  private async openKernelWatch(): Promise<void> {
    try {
      this.kernelWatch = await KernelWatch.open({
        netns: this.opts.node.hostNetns,
        onChanges: (changes) => this.onKernelChanges(changes),
        onOverflow: () => {
          this.log('kernel notifications were lost (receive buffer full): checking everything');
          dropHostSnapshot(this.opts.node);
          this.forceDataplane = true;
          this.scheduleAll();
        },
      });
      if (this.stopped) {
        this.kernelWatch.close(); // stopped while it opened
        this.kernelWatch = undefined;
      }
    } catch (err) {
      this.watching = false;
      this.log(`kernel notifications unavailable (${errorText(err)}): every account is checked every resync period`);
    }
  }

  /**
   * Reconciles what a batch of kernel notifications may have touched (drift-watch.ts decides). It runs from the
   * event loop's poll phase: a throw would end the process, so a failure here only means checking everything.
   */
  private onKernelChanges(changes: readonly KernelChange[]): void {
    if (!this.complete || this.stopped || !this.kernelWatch) return;
    try {
      this.handleKernelChanges(changes);
    } catch (err) {
      this.log(`kernel notifications: ${errorText(err)}: checking everything`);
      this.scheduleAll();
    }
  }

  private handleKernelChanges(changes: readonly KernelChange[]): void {
    // A host link came or went: which namespace id belongs to which account may have changed.
    if (this.names && changes.some((c) => c.kind === 'link' && c.nsid === null)) delete this.names.nsid;
    const keys = driftKeys(changes, this.driftContext());
    if (keys.hostRoutes) dropHostSnapshot(this.opts.node);
    const { docs } = this.accounts();
    const touched: string[] = [];
    for (const id of keys.accounts) {
      if (!docs.has(id) && !this.status.accounts[id]) continue;
      touched.push(docs.get(id)?.doc.name ?? id);
      this.scheduler.schedule(id);
    }
    if (keys.host) this.scheduler.schedule(HOST_KEY);
    if (keys.dataplane) {
      this.forceDataplane = true;
      this.scheduler.schedule(DATAPLANE_KEY);
    }
    if (keys.bgp) this.scheduler.schedule(BGP_KEY);
    const what = [...touched, ...(keys.host ? ['host'] : []), ...(keys.dataplane ? ['dataplane'] : [])];
    if (what.length > 0) this.log(`kernel changed under us: checking ${what.join(', ')} (${keys.seen.join('; ')})`);
    for (const c of keys.linkChecks) this.queueLinkCheck(c);
  }

  /** Judges a veth end once LINK_SETTLE_MS have passed (checkLinks), with whatever else is queued by then. */
  private queueLinkCheck(c: LinkCheck): void {
    this.pendingLinkChecks.set(`${c.account}|${c.nsid}|${c.ifindex}`, c);
    if (this.linkCheckTimer) return;
    this.linkCheckTimer = setTimeout(() => this.checkLinks(), LINK_SETTLE_MS);
    this.linkCheckTimer.unref();
  }

  /**
   * Account veth ends the kernel reported changed without saying by whom (drift-watch.ts): reconciled only if, as
   * last seen, one is not as desired (down, another MAC, MTU or alias) — our own creation of a veth, which brings
   * it up a moment later, is not drift.
   */
  private checkLinks(): void {
    this.linkCheckTimer = undefined;
    const checks = [...this.pendingLinkChecks.values()];
    this.pendingLinkChecks.clear();
    const watch = this.kernelWatch;
    if (!watch || this.stopped) return;
    const { docs } = this.accounts();
    const wrong = new Set<string>();
    for (const c of checks) {
      // A pass about to start looks at the link anyway; one running may have read it before the change (or be the
      // very pass that made it, bringing it up a moment later): judge it once that pass is over.
      const state = this.scheduler.state(c.account);
      if (state === 'queued') continue;
      if (state === 'running') {
        this.queueLinkCheck(c);
        continue;
      }
      const entry = docs.get(c.account);
      const link = watch.link(c.nsid, c.ifindex);
      if (!entry || !link) continue; // gone: its deletion is a change of its own
      const v = this.desiredOf(c.account, entry).veth;
      // In the customer namespace: lo must be up, edge0 as desired; a link of someone else's is not ours to judge.
      const veth = c.nsid === null || link.name === CUSTOMER_VETH;
      if (!veth && link.name !== 'lo') continue;
      const mac = c.nsid === null ? v.mac : v.peerMac;
      if (!link.up || (veth && (link.mac !== mac || link.mtu !== (v.mtu ?? 1500) || link.alias !== v.alias))) wrong.add(c.account);
    }
    for (const id of wrong) {
      this.log(`kernel changed under us: checking ${docs.get(id)?.doc.name ?? id} (its veth is not as desired)`);
      this.scheduler.schedule(id);
    }
  }

  private driftContext(): DriftContext {
    const watch = this.kernelWatch!;
    const names = this.kernelNames();
    return {
      uplink: this.opts.node.uplink,
      table: this.opts.node.table,
      accountOfHostVeth: (name) => names.hostVeth.get(name),
      accountOfNetns: (name) => names.netns.get(name),
      accountOfNsid: (nsid) => {
        if (!names.nsid) {
          // The host side of each account's veth names the namespace id of its peer, the customer namespace.
          names.nsid = new Map();
          for (const l of watch.hostLinks()) {
            const id = l.linkNetnsId === undefined ? undefined : names.hostVeth.get(l.name);
            if (id !== undefined) names.nsid.set(l.linkNetnsId!, id);
          }
        }
        return names.nsid.get(nsid);
      },
      hostLink: (ifindex) => watch.hostLink(ifindex),
    };
  }

  /** Host veth and namespace names of every account the replica or the status holds (deleted ones too). */
  private kernelNames(): NonNullable<Agent['names']> {
    if (this.names?.version === this.replicaVersion) return this.names;
    const hostVeth = new Map<string, string>();
    const netns = new Map<string, string>();
    for (const id of [...Object.keys(this.status.accounts), ...this.accounts().docs.keys()]) {
      hostVeth.set(hostVethName(id), id);
      netns.set(customerNetns(this.opts.node, id), id);
    }
    this.names = { version: this.replicaVersion, hostVeth, netns };
    return this.names;
  }

  /**
   * The periodic pass. Without kernel notifications: every key, the data plane's maps diffed in full. With them:
   * the data plane every period (XDP attached or detached goes unnotified), everything else at the accounts'
   * period — the host and BGP keys and a full diff of the data plane's maps once per period, and the accounts
   * whose last pass is older than it, at most their share of one resync period, longest unchecked first, so a
   * thousand accounts made in one go are not all re-checked in one burst a minute later.
   */
  private resync(): void {
    if (!this.watching) {
      this.forceDataplane = true;
      return this.scheduleAll();
    }
    if (!this.complete || this.stopped) return;
    const periodMs = this.opts.accountResyncMs ?? DEFAULT_ACCOUNT_RESYNC_MS;
    const resyncMs = this.opts.resyncMs ?? DEFAULT_RESYNC_MS;
    const now = performance.now();
    const dueAt = (last: number | undefined) => now - (last ?? -Infinity) >= periodMs - resyncMs / 2;
    if (dueAt(this.sharedChecked)) {
      this.sharedChecked = now;
      this.forceDataplane = true;
      this.scheduler.schedule(HOST_KEY);
      this.scheduler.schedule(BGP_KEY);
    }
    this.scheduler.schedule(DATAPLANE_KEY);
    const ids = [...new Set([...this.accounts().docs.keys(), ...Object.keys(this.status.accounts)])];
    const due = ids.filter((id) => dueAt(this.lastPass.get(id)));
    due.sort((a, b) => (this.lastPass.get(a) ?? -Infinity) - (this.lastPass.get(b) ?? -Infinity));
    const share = Math.ceil((ids.length * resyncMs) / periodMs);
    // Accounts more than a period overdue are taken whatever the share: the checks must never fall behind.
    const overdue = due.filter((id) => now - (this.lastPass.get(id) ?? -Infinity) >= periodMs + resyncMs);
    for (const id of due.slice(0, Math.max(share, overdue.length))) this.scheduler.schedule(id);
  }

  /**
   * Loads the data plane, or reopens what an earlier run pinned (programs, maps and attachments stay as they are:
   * a restart is invisible to traffic). A failure is reported in the status and retried by the data-plane pass.
   */
  private openDataplane(): void {
    try {
      this.dataplane ??= new DataplaneManager({ node: this.opts.node, dataDir: this.opts.dataDir, ...this.opts.bpf });
      const changes: string[] = [];
      this.dataplane.open(changes);
      for (const c of changes) this.log(`dataplane: ${c}`);
      this.dataplaneInitError = undefined;
    } catch (err) {
      this.dataplaneInitError = errorText(err);
      this.log(`dataplane: ${this.dataplaneInitError}`);
    }
  }

  /** The data plane, opened (throws why it is not). */
  private requireDataplane(): DataplaneManager {
    if (!this.dataplane?.loaded) this.openDataplane();
    if (!this.dataplane?.loaded) throw new Error(this.dataplaneInitError ?? 'data plane not loaded');
    return this.dataplane;
  }

  /** Resolves when the store's first sync has been received. */
  get firstSync(): Promise<number> {
    return this.following?.firstSync ?? Promise.reject(new Error('agent not started'));
  }

  /** Resolves when no reconcile is queued or running. */
  idle(): Promise<void> {
    return this.scheduler.idle();
  }

  snapshotStatus(): NodeStatus {
    this.refreshApplied();
    return structuredClone(this.status);
  }

  /**
   * Stops the agent. BGP first: `bgp: 'withdraw'` (default, a graceful stop) withdraws every announcement and
   * stops BIRD before anything else; 'leave' keeps BIRD announcing for the next agent to adopt (like a crash).
   */
  async stop(opts: { bgp?: 'withdraw' | 'leave' } = {}): Promise<void> {
    if (this.stopped) return;
    await this.bgp.stop(opts.bgp ?? 'withdraw');
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.kernelWatch?.close();
    if (this.linkCheckTimer) clearTimeout(this.linkCheckTimer);
    if (this.countersTimer) clearInterval(this.countersTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.following?.close();
    await this.scheduler.stop();
    // A graceful stop ends the liveness lease now (the node shows stale at once); 'leave' lets it expire, as a crash.
    await this.publisher.stop(opts.bgp === 'leave' ? 'release' : 'revoke');
    await this.countersWriting;
    // File descriptors only: pins and attachments stay, traffic keeps flowing.
    this.dataplane?.close();
    await this.replica?.close();
  }

  private setReachable(reachable: boolean, err?: unknown): void {
    this.publisher.setReachable(reachable, err);
  }

  private onEvent(event: WatchEvent): void {
    this.setReachable(true);
    this.replicaVersion++;
    if (event.type === 'synced') {
      const wasComplete = this.complete;
      this.complete = true;
      // First complete state (or a re-list after a reset): everything may have changed, including deletions.
      if (!wasComplete || event.revision !== this.status.replica_revision) this.scheduleAll();
      this.status.replica_revision = event.revision;
      return;
    }
    if (event.type === 'reset' || this.replica.listing) return; // the list completes with `synced`
    const key = event.type === 'put' ? event.kv.key : event.key;
    this.status.replica_revision = event.type === 'put' ? event.kv.modRevision : event.modRevision;
    const accountId = accountIdOfKey(key);
    if (accountId) {
      this.scheduler.schedule(accountId);
      this.scheduler.schedule(HOST_KEY);
      this.scheduler.schedule(DATAPLANE_KEY);
      // A prefix no longer advertised (or an account deleted) is withdrawn at once, before any kernel work.
      this.scheduler.schedule(BGP_KEY);
    } else if (key === keys.settings) {
      this.scheduleAll();
    } else if (key === keys.nodeDrain(this.opts.node.nodeId) || key === keys.nodeConfig(this.opts.node.nodeId)) {
      this.scheduler.schedule(BGP_KEY);
    } else if (key.startsWith(keys.mitigationsPrefix)) {
      this.scheduler.schedule(DATAPLANE_KEY);
    }
  }

  /**
   * Every account the replica holds, decoded (a document that fails to decode is reported, not applied), and
   * which account's kernel names clash with another's. Recomputed only when the replica changed: each account's
   * reconcile reads it, so per-call decoding would cost O(accounts²) per pass.
   */
  private accounts(): AccountsView {
    if (this.view && this.view.version === this.replicaVersion) return this.view;
    const docs = new Map<string, { doc: AccountDocument; revision: number }>();
    const broken = new Map<string, string>();
    const byShortId = new Map<string, string>();
    const clashes = new Map<string, string>();
    for (const kv of this.replica.snapshot()) {
      const id = accountIdOfKey(kv.key);
      if (!id) continue;
      const cached = this.view?.docs.get(id);
      if (cached && cached.revision === kv.modRevision) docs.set(id, cached);
      else {
        try {
          docs.set(id, { doc: decodeAccountDocument(kv.value), revision: kv.modRevision });
        } catch (err) {
          broken.set(id, errorText(err));
          continue;
        }
      }
      // Keys come sorted: the first id with a short id keeps it, later ones report the clash.
      const first = byShortId.get(accountShortId(id));
      if (first) clashes.set(id, first);
      else byShortId.set(accountShortId(id), id);
    }
    this.view = { version: this.replicaVersion, docs, broken, clashes };
    return this.view;
  }

  /** The ids of the accounts the replica holds, read afresh on every use. */
  private liveAccountIds(): ReadonlySet<string> {
    const current = () => new Set(this.accounts().docs.keys());
    return new Proxy(new Set<string>(), {
      get(_target, prop) {
        const set = current();
        const value: unknown = Reflect.get(set, prop, set);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(set) : value;
      },
    });
  }

  private scheduleAll(): void {
    if (!this.complete || this.stopped) return;
    this.scheduler.schedule(DATAPLANE_KEY);
    this.scheduler.schedule(HOST_KEY);
    this.scheduler.schedule(BGP_KEY);
    for (const id of this.accounts().docs.keys()) this.scheduler.schedule(id);
    // Accounts with status but no document any more: their removal is reconciled too.
    for (const id of Object.keys(this.status.accounts)) this.scheduler.schedule(id);
  }

  private async reconcileKey(key: string): Promise<void> {
    const { node } = this.opts;
    if (key === DATAPLANE_KEY) return this.reconcileDataplane();
    if (key === BGP_KEY) return this.reconcileBgp();
    if (key === HOST_KEY) {
      const { docs } = this.accounts();
      const accounts = [...docs.values()].map((d) => d.doc);
      const result = await reconcileHost(node, hostDesired(node, accounts), {
        // Prune only from a complete state, and against the accounts as they are when the prune runs (a live
        // view): an account created while this pass was busy must not lose the namespace its own pass just made.
        ...(this.complete ? { accountIds: this.liveAccountIds() } : {}),
      });
      for (const c of result.changes) this.log(`host: ${c}`);
      // Our own rules and routes changed: the fast path's shortcuts depend on them (our own writes are no drift for
      // the kernel watch, so nothing else would re-check them before the next period).
      if (result.changes.length > 0) this.scheduler.schedule(DATAPLANE_KEY);
      this.hostErrors = result.errors;
      this.updateHostStatus();
      this.stamp();
      if (result.errors.length) throw new Error(result.errors.join('; '));
      return;
    }
    const { docs, broken } = this.accounts();
    const entry = docs.get(key);
    if (!entry) {
      if (broken.has(key)) {
        this.status.accounts[key] = { name: '', state: 'error', error: `cannot read the account document: ${broken.get(key)}` };
        return;
      }
      if (!this.complete) return;
      // Deleted: remove everything it had here — its data-plane entries first (decap stops delivering to it),
      // then its namespace and veth.
      const changes: string[] = [];
      this.dataplane?.removeAccount(key, changes);
      changes.push(...(await removeCustomer(node, customerNetns(node, key), hostVethName(key))));
      for (const c of changes) this.log(`${key}: ${c}`);
      delete this.status.accounts[key];
      this.desiredCache.delete(key);
      this.slowChecked.delete(key);
      this.lastPass.delete(key);
      this.scheduler.forget(key);
      this.stamp();
      return;
    }
    const clash = this.accounts().clashes.get(key);
    if (clash) {
      this.status.accounts[key] = { name: entry.doc.name, state: 'error', error: `its kernel names clash with account ${clash}` };
      return;
    }
    // A pass that throws (e.g. its namespace cannot be entered) is an error of this account like any other: its
    // status must say so, or BGP would keep announcing an account this node cannot serve.
    const lastSlow = this.slowChecked.get(key);
    const checkSlow = lastSlow === undefined || performance.now() - lastSlow >= (this.opts.slowCheckMs ?? SLOW_CHECK_PERIODS * (this.opts.resyncMs ?? DEFAULT_RESYNC_MS));
    const started = performance.now();
    this.lastPass.set(key, started);
    const result = await reconcileCustomer(node, this.desiredOf(key, entry), {
      checkSlow,
      dataplane: (d, changes) => this.applyAccountDataplane(d.accountId, d.netns, d.veth.name, changes),
    }).catch((err: unknown) => ({ changes: [] as string[], errors: [errorText(err)] }));
    for (const c of result.changes) this.log(`${entry.doc.name}: ${c}`);
    const now = new Date().toISOString();
    const previous = this.status.accounts[key];
    this.status.accounts[key] = result.errors.length
      ? { name: entry.doc.name, state: 'error', error: result.errors.join('; '), reconciled_at: now, ...(previous?.applied_revision !== undefined ? { applied_revision: previous.applied_revision } : {}) }
      : { name: entry.doc.name, state: 'ok', applied_revision: entry.revision, reconciled_at: now };
    // A pass that failed checks everything again next time.
    if (result.errors.length) this.slowChecked.delete(key);
    else if (checkSlow) this.slowChecked.set(key, started);
    this.stamp();
    if (result.errors.length) throw new Error(result.errors.join('; '));
  }

  /** An account's desired kernel objects (pure), computed once per revision: every resync asks for all of them. */
  private desiredOf(id: string, entry: { doc: AccountDocument; revision: number }): CustomerDesired {
    const cached = this.desiredCache.get(id);
    if (cached?.revision === entry.revision) return cached.desired;
    const desired = customerDesired(this.opts.node, entry.doc);
    this.desiredCache.set(id, { revision: entry.revision, desired });
    return desired;
  }

  /**
   * The data-plane plan of the replica as it is now (pure, desired/dataplane.ts), after giving numbers to accounts
   * and active rules that lack one. Cached until the replica, the numbers or the set of active rules change.
   */
  private dataplanePlan(dp: DataplaneManager): DataplanePlan & { mitigationProblems: string[] } {
    const view = this.accounts();
    const accounts = [...view.docs.values()].filter((d) => !view.clashes.has(d.doc.id)).map((d) => d.doc);
    // Decoded once per replica version: every account pass asks for the plan, and a decode walks the whole replica.
    if (this.mitigationsCache?.version !== this.replicaVersion)
      this.mitigationsCache = { version: this.replicaVersion, ...decodeMitigations(this.replica.snapshot()) };
    const { mitigations, problems: mitigationProblems } = this.mitigationsCache;
    const nowMs = Date.now();
    const active = activeMitigations(mitigations, nowMs).map((m) => m.id);
    const cacheKey = () => `${this.replicaVersion}|${dp.numbers.version}|${active.join(',')}`;
    if (this.planCache?.key === cacheKey()) return { ...this.planCache.plan, mitigationProblems };
    const plan = dp.desiredPlan({
      node: this.opts.node,
      accounts,
      settings: decodeSettings(this.replica.get(keys.settings)?.value),
      mitigations,
      activeRuleIds: active,
      nowMs,
      sampleEvery: this.opts.sampleEvery ?? 0,
    });
    this.planCache = { key: cacheKey(), plan };
    return { ...plan, mitigationProblems };
  }

  /**
   * An account's part of the data plane (synchronous: see reconcile/dataplane.ts). Its warnings (keys another
   * account holds) are the data-plane pass's to report: they are not errors of the account.
   */
  private applyAccountDataplane(accountId: string, netns: string, hostVeth: string, changes: string[]): string[] {
    const dp = this.requireDataplane();
    const plan = this.dataplanePlan(dp);
    // The shared part first (XDP on the uplink, anycast endpoints…): an account is not ready without it. Usually
    // a no-op, but even then it queries the uplink's XDP, and libbpf's query dumps every link of the host netns —
    // one per customer (4 ms per account pass at 200 customers, O(customers²) for a cold start). So account
    // passes check it once per GLOBAL_CHECK_MS for the same global plan; the data-plane pass and a changed plan
    // always check, and drift (XDP detached by hand) is still repaired well within a resync period.
    const now = performance.now();
    const g = this.globalChecked;
    if (g?.global !== plan.global || now - g.at > GLOBAL_CHECK_MS) {
      this.globalChecked = undefined;
      dp.syncGlobal(plan.global, { prune: false }, changes);
      this.globalChecked = { global: plan.global, at: now };
    }
    const a = plan.accounts.get(accountId);
    // Deleted while its pass ran: the pass that follows removes it.
    if (a) dp.applyAccount(a, netns, hostVeth, changes);
    return [];
  }

  /**
   * The data plane's shared state: XDP, global maps; from a complete state also pruning and freeing numbers.
   * Errors (not loaded, XDP not attached…) mean this node cannot filter or decapsulate: the host is in error.
   * Warnings (a rule without room, a key two accounts want, an unreadable rule) are reported, never errors: the
   * node as a whole, and each account's forward path, still work.
   */
  private async reconcileDataplane(): Promise<void> {
    const changes: string[] = [];
    const errors: string[] = [];
    let warnings: string[] = this.dataplaneWarnings;
    try {
      const dp = this.requireDataplane();
      const plan = this.dataplanePlan(dp);
      const force = this.forceDataplane;
      this.forceDataplane = false;
      dp.syncGlobal(plan.global, { force, prune: this.complete }, changes);
      if (this.complete) dp.pruneAccounts(plan, changes);
      const names = this.accounts().docs;
      warnings = [
        ...plan.global.warnings,
        ...plan.mitigationProblems.map((p) => `mitigation ${p}`),
        ...[...plan.accounts.values()].flatMap((a) => a.warnings.map((w) => `account ${names.get(a.accountId)?.doc.name ?? a.accountId}: ${w}`)),
      ];
      this.armExpiry(plan.global.nextExpiryMs);
      // The fast path's shortcuts against the host's rules and routes as they are now (dataplane-fib.ts).
      await dp.syncHostRouting(changes);
      await dp.ensureGro(changes);
    } catch (err) {
      errors.push(errorText(err));
    }
    for (const c of changes) this.log(`dataplane: ${c}`);
    if (warnings.join('\n') !== this.dataplaneWarnings.join('\n')) for (const w of warnings) this.log(`dataplane: warning: ${w}`);
    this.dataplaneWarnings = warnings;
    this.dataplaneErrors = errors;
    this.updateHostStatus();
    this.stamp();
    if (errors.length) throw new Error(errors.join('; '));
  }

  /** BGP: the desired announcements from the replica and this node's reconcile results (bgp/manager.ts). */
  private async reconcileBgp(): Promise<void> {
    const { docs } = this.accounts();
    const nodeId = this.opts.node.nodeId;
    await this.bgp.apply({
      complete: this.complete,
      settings: () => decodeSettings(this.replica.get(keys.settings)?.value),
      nodeConfig: () => decodeNodeConfig(this.replica.get(keys.nodeConfig(nodeId))?.value),
      drained: this.replica.get(keys.nodeDrain(nodeId)) !== undefined,
      docs,
      states: this.status.accounts,
      hostState: this.status.host.state,
    });
  }

  /** Re-plans when the next mitigation rule expires (the program ignores it from then on; this removes it). */
  private armExpiry(nextMs: number | null): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (nextMs === null || this.stopped) return;
    const delay = Math.min(2 ** 31 - 1, Math.max(0, nextMs - Date.now()) + 20);
    this.expiryTimer = setTimeout(() => this.scheduler.schedule(DATAPLANE_KEY), delay);
    this.expiryTimer.unref();
  }

  /** `host` in the status covers the host netns objects and the data plane together; `dataplane` the details. */
  private updateHostStatus(): void {
    const dpErrors = this.dataplaneErrors;
    const described = this.dataplane?.describe();
    this.status.dataplane = {
      state: dpErrors === undefined ? 'pending' : dpErrors.length ? 'error' : 'ok',
      ...(dpErrors?.length ? { error: dpErrors.join('; ') } : {}),
      ...(this.dataplaneWarnings.length ? { warnings: this.dataplaneWarnings } : {}),
      ...(described ?? {}),
      accounts: this.dataplane?.numbers.accounts.size ?? 0,
    };
    const errors = [...(this.hostErrors ?? []), ...(dpErrors ?? []).map((e) => `dataplane: ${e}`)];
    if (errors.length) this.status.host = { state: 'error', error: errors.join('; ') };
    else if (this.hostErrors === undefined || dpErrors === undefined) this.status.host = { state: 'pending' };
    else this.status.host = { state: 'ok' };
  }

  private stamp(): void {
    this.status.last_reconcile_at = new Date().toISOString();
    // The applied revision is derived when the status is read (refreshApplied): checking every account at each of
    // 1000 customers' passes made a cold start O(customers²).
    this.appliedStale = true;
  }

  /** Brings status.applied_revision up to date (before the status is published or snapshotted). */
  private refreshApplied(): void {
    if (!this.appliedStale) return;
    this.appliedStale = false;
    // Applied means every account in the replica reconciled at its CURRENT revision and every deleted one removed:
    // an ok from an earlier pass must not vouch for a change whose pass is still queued or in flight.
    const { docs } = this.accounts();
    const current =
      Object.keys(this.status.accounts).every((id) => docs.has(id)) &&
      [...docs].every(([id, e]) => this.status.accounts[id]?.state === 'ok' && this.status.accounts[id]?.applied_revision === e.revision);
    const allOk = this.status.host.state === 'ok' && current;
    if (allOk && this.status.replica_revision !== null) this.status.applied_revision = this.status.replica_revision;
  }

  /**
   * Publishes the data plane's counters (totals since each account got its number here) when they changed. A
   * failure only means the store is unreachable: the next period tries again.
   */
  private publishCounters(): void {
    const dp = this.dataplane;
    if (!dp?.loaded || this.stopped) return;
    this.countersWriting = this.countersWriting.then(async () => {
      let body: string;
      try {
        const c = dp.counters();
        body = JSON.stringify(c);
        if (body === this.lastCounters) return;
        const doc: NodeCounters = { node_id: this.opts.node.nodeId, updated_at: new Date().toISOString(), ...c };
        await this.opts.store.txn([], [{ type: 'put', key: keys.nodeCounters(this.opts.node.nodeId), value: JSON.stringify(doc) }]);
        this.lastCounters = body;
      } catch {
        // Unreachable store or a closed data plane: nothing to do until the next period.
      }
    });
  }

  /** Publishes the counters now (tests, and the last word before stopping is not needed: they are totals). */
  async flushCounters(): Promise<void> {
    this.publishCounters();
    await this.countersWriting;
  }

  /** Publishes the status (debounced; the latest wins): status-publisher.ts. */
  private scheduleStatus(): void {
    if (!this.stopped) this.publisher.schedule();
  }

  /** Publishes the status now (locally and to the store) and waits for the store write. */
  flushStatus(): Promise<void> {
    return this.publisher.flush();
  }
}
