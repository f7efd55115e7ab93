/**
 * How an agent reports itself: its status document, its liveness, and whether it can reach the store.
 *
 *  - Status: keys.nodeStatus(id), written on every change (debounced) and at least every heartbeat_ms.
 *  - Liveness: keys.nodeAlive(id), put under a store lease of three heartbeats that the store renews from this
 *    process. When the agent dies, hangs or loses the store, the lease expires and the store deletes the key;
 *    the status document stays, so readers see the node as stale rather than gone (src/model/node-status.ts).
 *  - Store reachability, judged from what the agent sees (watch errors, failed writes, a lost lease): kept in the
 *    status's `store` field with the time it last changed, logged once per transition. The published status can
 *    only ever say "reachable" — so the agent also writes the document it would publish, every heartbeat and on
 *    every change, to `<data-dir>/local-status.json` (atomically: temp file + rename). That file is a contract
 *    (the lab's outage tests read it): keep its name and fields.
 */
import fs from 'node:fs';
import path from 'node:path';
import { keys } from '../model/keys.js';
import { LOCAL_STATUS_FILE, livenessTtlMs, type NodeStatus, type NodeStoreStatus } from '../model/node-status.js';
import { LeaseNotFoundError, type Lease, type Op, type Store } from '../store/store.js';
import { errorText } from './reconcile/engine.js';

export interface StatusPublisherOptions {
  store: Store;
  nodeId: string;
  dataDir: string;
  heartbeatMs: number;
  /** The agent's live status document (its `store` field is this publisher's). */
  status: NodeStatus;
  /** Brings the status's derived fields up to date; called before each write of it. */
  refresh?: () => void;
  log: (msg: string) => void;
}

/** The store field of an agent that has not reached the store yet. */
export function initialStoreStatus(kind: string, now = new Date()): NodeStoreStatus {
  return { kind, reachable: false, since: now.toISOString(), error: 'not reached yet' };
}

export class StatusPublisher {
  private heartbeat: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private inFlight = false;
  private again = false;
  private lease: Lease | undefined;
  /** The lease under which the liveness key was last written. */
  private aliveUnder: string | undefined;
  private reachedOnce = false;
  /** An outage is logged once, when it starts. */
  private downLogged = false;
  private localError: string | undefined;
  private stopped = false;
  readonly localFile: string;

  constructor(private readonly o: StatusPublisherOptions) {
    this.localFile = path.join(o.dataDir, LOCAL_STATUS_FILE);
  }

  start(): void {
    this.heartbeat = setInterval(() => this.schedule(), this.o.heartbeatMs);
    this.heartbeat.unref();
    this.schedule();
  }

  /** Publishes soon (debounced: the latest state wins): the local file at once, then the store. */
  schedule(): void {
    if (this.debounce || this.stopped) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.o.status.updated_at = new Date().toISOString();
      this.writeLocal();
      this.publish();
    }, 100);
    this.debounce.unref();
  }

  /**
   * Records whether the store answered. A transition is logged once and published (locally at once); while
   * unreachable, a new error text replaces the old one without a log line.
   */
  setReachable(reachable: boolean, err?: unknown, at = new Date()): void {
    const current = this.o.status.store;
    const error = reachable ? undefined : errorText(err ?? 'unknown error');
    if (current.reachable === reachable) {
      if (!reachable && current.error !== error) {
        // Never reached since start-up: the first failure is the news (unreachable since the agent started).
        if (!this.reachedOnce && !this.downLogged) this.o.log(`store ${current.kind}: unreachable: ${error} (serving the local replica; the data plane stays as it is)`);
        this.downLogged = true;
        current.error = error!;
        this.schedule();
      }
      return;
    }
    const now = at;
    const wasFor = Math.round((now.getTime() - Date.parse(current.since)) / 100) / 10;
    this.o.status.store = reachable
      ? { kind: current.kind, reachable: true, since: now.toISOString() }
      : { kind: current.kind, reachable: false, since: now.toISOString(), error: error! };
    // The first contact is no news (an agent's log stays quiet when all is well): only outages and recoveries.
    if (reachable) {
      if (this.reachedOnce) this.o.log(`store ${current.kind}: reachable again (unreachable for ${wasFor} s)`);
    } else this.o.log(`store ${current.kind}: unreachable: ${error} (serving the local replica; the data plane stays as it is)`);
    this.reachedOnce ||= reachable;
    this.downLogged = !reachable;
    // The local file is the only place an outage shows: it changes now, the store write follows (debounced).
    this.writeLocal();
    this.schedule();
  }

  /** Publishes now and waits for the store write; the local file then reflects its outcome (tests, benchmarks). */
  async flush(): Promise<void> {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    this.o.status.updated_at = new Date().toISOString();
    this.publish();
    await this.writing;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    this.writeLocal();
  }

  /**
   * Stops publishing. `revoke` (a graceful stop): the liveness lease ends now, so the node shows as stale at once;
   * `release` (a crash-like stop): the lease is left to expire, as if the process had died.
   */
  async stop(lease: 'revoke' | 'release'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.debounce) clearTimeout(this.debounce);
    await this.writing;
    const l = this.lease;
    this.lease = undefined;
    if (!l) return;
    if (lease === 'release') return l.release();
    await l.revoke().catch((err: unknown) => this.o.log(`liveness lease ${l.id}: revoke failed (it expires after ${l.ttlMs} ms): ${errorText(err)}`));
  }

  /** One store write at a time; a request arriving meanwhile makes one more write after it (never a backlog). */
  private publish(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.writing = (async () => {
      try {
        do {
          this.again = false;
          await this.writeStore();
        } while (this.again && !this.stopped);
      } finally {
        this.inFlight = false;
      }
    })();
  }

  private async writeStore(): Promise<void> {
    const { store, nodeId } = this.o;
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.liveLease();
        // What is published can only be read when the store answers: it says reachable, from when it did.
        this.o.refresh?.();
        const s = this.o.status.store;
        const at = new Date();
        const published: NodeStatus = { ...this.o.status, store: s.reachable ? s : { kind: s.kind, reachable: true, since: at.toISOString() } };
        const ops: Op[] = [{ type: 'put', key: keys.nodeStatus(nodeId), value: JSON.stringify(published) }];
        if (this.aliveUnder !== lease.id) {
          ops.push({ type: 'put', key: keys.nodeAlive(nodeId), value: JSON.stringify({ node_id: nodeId, lease_ttl_ms: lease.ttlMs, since: published.updated_at }), lease: lease.id });
        }
        await store.txn([], ops);
        this.aliveUnder = lease.id;
        // The same `since` as just published: the local file and the store then say exactly the same.
        this.setReachable(true, undefined, at);
        return;
      } catch (err) {
        if (err instanceof LeaseNotFoundError && attempt === 1) {
          // The store expired our lease before the client learnt it: take a new one and write again.
          this.dropLease();
          continue;
        }
        this.setReachable(false, err);
        return;
      }
    }
  }

  /** The liveness lease, granted when there is none (first write, or the last one was lost). */
  private async liveLease(): Promise<Lease> {
    if (this.lease && !this.lease.ended) return this.lease;
    const lease = await this.o.store.grantLease(livenessTtlMs(this.o.heartbeatMs));
    if (this.stopped) {
      await lease.revoke().catch(() => undefined);
      throw new Error('status publisher stopped');
    }
    lease.onLost((reason) => {
      if (this.lease !== lease) return;
      this.o.log(`liveness lease ${lease.id} lost (${errorText(reason)}); taking a new one at the next write`);
      this.dropLease();
      this.schedule();
    });
    this.lease = lease;
    return lease;
  }

  private dropLease(): void {
    this.lease?.release();
    this.lease = undefined;
    this.aliveUnder = undefined;
  }

  private writeLocal(): void {
    const tmp = `${this.localFile}.${process.pid}.tmp`;
    try {
      fs.mkdirSync(this.o.dataDir, { recursive: true });
      this.o.refresh?.();
      fs.writeFileSync(tmp, `${JSON.stringify(this.o.status, null, 2)}\n`);
      // rename() is atomic: a reader sees the old document or the new one, never a partial write.
      fs.renameSync(tmp, this.localFile);
      this.localError = undefined;
    } catch (err) {
      const text = errorText(err);
      if (text !== this.localError) this.o.log(`cannot write ${this.localFile}: ${text}`);
      this.localError = text;
    }
  }
}
