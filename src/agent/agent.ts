/**
 * The edge agent: follows the desired state in the store into a local replica, and keeps the kernel of its host
 * netns equal to it, continuously.
 *
 *   store ──listAndWatch(desired/)──► replica (persisted; serves when the store is gone)
 *         ──► scheduler: one key per account + "host" ──► desired (pure) ──► reconcile ──► kernel
 *         ──► status (per account ok/error, applied revision) ──► store nodes/<id>/status
 *
 * - Changes reconcile only the accounts they touch; every key is also re-run every `resyncMs` (drift repair).
 * - Pruning (accounts deleted, objects we own but no longer want) happens only once the replica holds a complete
 *   state: after the store's initial sync, or from a replica that completed one before (offline boot).
 * - Shutdown never touches the kernel: traffic keeps flowing while the agent restarts.
 */
import { decodeAccountDocument } from '../model/account.js';
import { accountIdOfKey, keys } from '../model/keys.js';
import type { AccountDocument } from '../model/schemas.js';
import type { NodeStatus } from '../model/node-status.js';
import { Replica, followIntoReplica, type Following } from '../store/replica.js';
import type { Store, WatchEvent } from '../store/store.js';
import { customerDesired } from './desired/customer.js';
import { hostDesired } from './desired/host.js';
import { accountShortId, customerNetns, hostVethName, type NodeConfig } from './desired/node.js';
import { reconcileCustomer, removeCustomer } from './reconcile/customer.js';
import { reconcileHost } from './reconcile/host.js';
import { Scheduler } from './reconcile/scheduler.js';
import { errorText } from './reconcile/engine.js';

export const HOST_KEY = 'host';

interface AccountsView {
  version: number;
  docs: Map<string, { doc: AccountDocument; revision: number }>;
  broken: Map<string, string>;
  /** account id → the account whose short id it shares (and which keeps the kernel names). */
  clashes: Map<string, string>;
}

export interface AgentOptions {
  node: NodeConfig;
  store: Store;
  /** The agent's own directory (replica). */
  dataDir: string;
  /** Full resync period (drift repair); default 5000 ms. */
  resyncMs?: number;
  /** How many accounts reconcile at once (kernel work spawns processes); default 4. */
  concurrency?: number;
  log?: (msg: string) => void;
}

export class Agent {
  private replica!: Replica;
  private following: Following | undefined;
  private readonly scheduler: Scheduler;
  private complete = false;
  private storeReachable = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private statusWriting: Promise<void> = Promise.resolve();
  private readonly status: NodeStatus;
  private stopped = false;
  private readonly log: (msg: string) => void;
  /** Bumped on every replica change; keys the decoded view. */
  private replicaVersion = 0;
  private view: AccountsView | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.scheduler = new Scheduler({
      worker: (key) => this.reconcileKey(key),
      concurrency: opts.concurrency ?? 4,
      onResult: (key, err) => {
        if (err) this.log(`reconcile ${key} failed: ${errorText(err)}`);
        this.scheduleStatus();
      },
    });
    this.status = {
      node_id: opts.node.nodeId,
      host_netns: opts.node.hostNetns,
      store: { kind: opts.store.kind, reachable: false },
      replica_revision: null,
      applied_revision: null,
      host: { state: 'pending' },
      accounts: {},
      last_reconcile_at: null,
      updated_at: new Date().toISOString(),
    };
  }

  /** Starts following the store. Resolves once the first complete state (store sync or replica) is being applied. */
  async start(): Promise<void> {
    this.replica = await Replica.open(`${this.opts.dataDir}/replica`, keys.desiredPrefix);
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
        this.setReachable(false);
        this.log(`${context}: ${errorText(err)}`);
      },
    });
    const resyncMs = this.opts.resyncMs ?? 5000;
    this.resyncTimer = setInterval(() => this.scheduleAll(), resyncMs);
    this.resyncTimer.unref();
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
    return structuredClone(this.status);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.following?.close();
    await this.scheduler.stop();
    if (this.statusTimer) clearTimeout(this.statusTimer);
    await this.statusWriting;
    await this.replica?.close();
  }

  private setReachable(reachable: boolean): void {
    if (this.storeReachable === reachable) return;
    this.storeReachable = reachable;
    this.status.store.reachable = reachable;
    this.scheduleStatus();
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
    } else if (key === keys.settings) {
      this.scheduleAll();
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

  private scheduleAll(): void {
    if (!this.complete || this.stopped) return;
    this.scheduler.schedule(HOST_KEY);
    for (const id of this.accounts().docs.keys()) this.scheduler.schedule(id);
    // Accounts with status but no document any more: their removal is reconciled too.
    for (const id of Object.keys(this.status.accounts)) this.scheduler.schedule(id);
  }

  private async reconcileKey(key: string): Promise<void> {
    const { node } = this.opts;
    if (key === HOST_KEY) {
      const { docs } = this.accounts();
      const accounts = [...docs.values()].map((d) => d.doc);
      const result = await reconcileHost(node, hostDesired(node, accounts), {
        // Prune only from a complete state.
        ...(this.complete ? { accountIds: new Set(docs.keys()) } : {}),
      });
      for (const c of result.changes) this.log(`host: ${c}`);
      this.status.host = result.errors.length ? { state: 'error', error: result.errors.join('; ') } : { state: 'ok' };
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
      // Deleted: remove everything it had here.
      const changes = await removeCustomer(node, customerNetns(node, key), hostVethName(key));
      for (const c of changes) this.log(`${key}: ${c}`);
      delete this.status.accounts[key];
      this.scheduler.forget(key);
      this.stamp();
      return;
    }
    const clash = this.accounts().clashes.get(key);
    if (clash) {
      this.status.accounts[key] = { name: entry.doc.name, state: 'error', error: `its kernel names clash with account ${clash}` };
      return;
    }
    const result = await reconcileCustomer(node, customerDesired(node, entry.doc));
    for (const c of result.changes) this.log(`${entry.doc.name}: ${c}`);
    const now = new Date().toISOString();
    const previous = this.status.accounts[key];
    this.status.accounts[key] = result.errors.length
      ? { name: entry.doc.name, state: 'error', error: result.errors.join('; '), reconciled_at: now, ...(previous?.applied_revision !== undefined ? { applied_revision: previous.applied_revision } : {}) }
      : { name: entry.doc.name, state: 'ok', applied_revision: entry.revision, reconciled_at: now };
    this.stamp();
    if (result.errors.length) throw new Error(result.errors.join('; '));
  }

  private stamp(): void {
    this.status.last_reconcile_at = new Date().toISOString();
    const accounts = Object.values(this.status.accounts);
    const allOk = this.status.host.state === 'ok' && accounts.every((a) => a.state === 'ok');
    if (allOk && this.status.replica_revision !== null) this.status.applied_revision = this.status.replica_revision;
  }

  /** Publishes the status (debounced; the latest wins). Failures only mean the store is unreachable. */
  private scheduleStatus(): void {
    if (this.statusTimer || this.stopped) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.statusWriting = this.statusWriting.then(() => this.writeStatus());
    }, 100);
    this.statusTimer.unref();
  }

  private async writeStatus(): Promise<void> {
    this.status.updated_at = new Date().toISOString();
    try {
      await this.opts.store.txn([], [{ type: 'put', key: keys.nodeStatus(this.opts.node.nodeId), value: JSON.stringify(this.status) }]);
    } catch (err) {
      this.setReachable(false);
    }
  }
}
