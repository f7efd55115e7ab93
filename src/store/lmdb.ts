/**
 * The embedded Store: one LMDB environment in a directory, shared by the processes of one machine (the API
 * writes; agents watch and report status).
 *
 * Layout (named databases of one environment, so a transaction spans all of them):
 *  - `kv`:   key → { v: value, c: createRevision, m: modRevision, ver: version }
 *  - `log`:  revision → the events of that revision (the change log watches resume from)
 *  - `meta`: `revision` (the store revision; 1 when empty, like etcd) and `compacted` (every log entry at or
 *            below it is gone)
 *
 *  - `lease`: lease id → { ttl, exp: expiry (wall-clock ms), keys attached }; `meta` also holds `leaseSeq` (the
 *            last id handed out) and `leaseNext` (the earliest expiry of any lease)
 *
 * Leases across processes: the granting process renews its lease (exp = now + ttl) every ttl/3 in a small write
 * transaction (no revision, like etcd's keepalive). Expiry is enforced by EVERY process that has the store open:
 * each read and each txn first checks `leaseNext` and, when a lease is past its expiry, deletes its keys in a
 * write transaction of its own (one revision, logged like any delete, so every watcher in every process gets the
 * delete events); and each open store arms a timer at `leaseNext` (re-read on every read; watches read on every
 * wake-up and poll) so watchers see the deletion without anybody else reading. The write lock serialises a renewal and a reap: whichever commits first
 * wins, and a renewal that finds its lease expired or gone reports it lost. Expiry is judged on the machine's
 * wall clock, which every process of one store shares.
 *
 * Every write is one synchronous LMDB write transaction: compares, writes, the log entry, the revision bump and
 * log compaction commit together or not at all, and LMDB's write lock serialises writers across processes. A
 * commit is followed by a wake-up through the notify file (see lmdb-notify.ts).
 *
 * Snapshot freshness: lmdb-js reuses one read transaction for a whole event turn, so a read in the same turn as
 * another process's commit can see the older snapshot. Every read here starts with `resetReadTxn()` and does all
 * its reads synchronously, so one operation reads one fresh, consistent snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import {
  LeaseNotFoundError,
  StoreUnavailableError,
  type Compare,
  type Lease,
  type KeyValue,
  type ListResult,
  type Op,
  type Store,
  type TxnResult,
  type Watch,
  type WatchEvent,
  type WatchHandler,
  type WatchOptions,
} from './store.js';
import { checkKey, checkLeaseTtl, checkPrefix, checkTxn, StoreInputError } from './txn-validation.js';
import { ChangeNotifier } from './lmdb-notify.js';
import { defaultErrorReporter, deliver, type StoreErrorReporter } from './watch-delivery.js';

export interface LmdbStoreOptions {
  /** Keep at least this many revisions of change history for watches to resume from (default 10000). */
  historyRevisions?: number;
  /** Safety-net poll for changes, in case a file notification is missed (default 1000 ms). */
  pollIntervalMs?: number;
  /** Create the store if DIR holds none (default true). With false, a missing store is StoreUnavailableError. */
  create?: boolean;
  /** Where to report errors nobody can catch (watch handler failures); default console.error. */
  onError?: StoreErrorReporter;
  /** At most this many revisions are read from the log per catch-up step (default 1000); bounds memory. */
  catchUpBatchRevisions?: number;
}

export interface LmdbStore extends Store {
  readonly kind: 'lmdb';
  readonly dir: string;
  /**
   * Forgets change history before `revision` (log entries < revision), like etcd's compact: a watch resuming
   * from a revision below `revision - 1` then gets a reset. History is also trimmed automatically to the last
   * `historyRevisions` revisions on every commit.
   */
  compact(revision: number): Promise<void>;
}

export const DEFAULT_HISTORY_REVISIONS = 10_000;
const DATA_FILE = 'data.mdb';

interface Rec {
  v: string;
  c: number;
  m: number;
  ver: number;
  /** The lease the key is attached to. */
  l?: string;
}

interface LeaseRec {
  ttl: number;
  /** Expiry, wall-clock ms. */
  exp: number;
  /** Keys put with this lease (a key re-put without it, or deleted, is skipped when the lease ends). */
  keys: string[];
}

type LogEvent = { t: 'p'; k: string; r: Rec; p?: Rec } | { t: 'd'; k: string; p: Rec };

/** Opens (or creates) the LMDB store in `dir`. */
export async function openLmdbStore(dir: string, opts: LmdbStoreOptions = {}): Promise<LmdbStore> {
  if (typeof dir !== 'string' || dir.length === 0) throw new StoreInputError('lmdb dir: must be a non-empty path');
  const historyRevisions = opts.historyRevisions ?? DEFAULT_HISTORY_REVISIONS;
  if (!Number.isSafeInteger(historyRevisions) || historyRevisions < 1) {
    throw new StoreInputError('historyRevisions: must be an integer >= 1');
  }
  const pollIntervalMs = opts.pollIntervalMs ?? 1000;
  if (!(pollIntervalMs > 0)) throw new StoreInputError('pollIntervalMs: must be > 0');
  const abs = path.resolve(dir);
  if (opts.create === false && !fs.existsSync(path.join(abs, DATA_FILE))) {
    throw new StoreUnavailableError(`no LMDB store in ${abs} (${DATA_FILE} missing)`);
  }
  let env: RootDatabase;
  try {
    fs.mkdirSync(abs, { recursive: true });
    // overlappingSync off (lmdb-js turns it on by default on Linux): with it, every commit's flush and close()
    // run lmdb-js's mdb_env_sync, which loops until the lock file's last txnid equals the newest meta page's.
    // A process SIGKILLed between writing a meta page and updating that txnid (it holds the write lock then; the
    // next writer's robust-mutex recovery repairs it, but mdb_env_sync never takes the write lock) leaves them
    // unequal, and a process that only syncs or closes then spins at 100% CPU forever: seen in the agent-crash
    // test (api.close() after SIGKILLing agents sharing this environment), 14 of 40 kill-then-close rounds here.
    // Plain LMDB commits (fdatasync inside the write lock) have no such loop; same commit latency uncontended
    // (both flush before the commit returns), longer write-lock holds under cross-process write contention.
    // The flag is per process: every process that opens the environment needs it off.
    env = open({ path: abs, maxDbs: 5, overlappingSync: false });
  } catch (err) {
    throw new StoreUnavailableError(`cannot open the LMDB store in ${abs}: ${(err as Error).message}`);
  }
  return new LmdbStoreImpl(abs, env, {
    historyRevisions,
    pollIntervalMs,
    report: opts.onError ?? defaultErrorReporter,
    batch: opts.catchUpBatchRevisions ?? 1000,
  });
}

type ReadStep =
  | { kind: 'list'; reset: boolean; revision: number; items: KeyValue[] }
  | { kind: 'events'; through: number; head: number; events: WatchEvent[] };

class LmdbStoreImpl implements LmdbStore {
  readonly kind = 'lmdb' as const;
  private readonly kv: Database<Rec, string>;
  private readonly log: Database<LogEvent[], number>;
  private readonly meta: Database<number, string>;
  private readonly leases: Database<LeaseRec, string>;
  private readonly notifier: ChangeNotifier;
  private readonly watches = new Set<LmdbWatch>();
  /** Leases granted by this process (renewed here, revoked on close). */
  private readonly granted = new Set<LmdbLease>();
  private reaperTimer: NodeJS.Timeout | undefined;
  private reaperAt = Infinity;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly env: RootDatabase,
    private readonly cfg: { historyRevisions: number; pollIntervalMs: number; report: StoreErrorReporter; batch: number },
  ) {
    this.kv = env.openDB<Rec, string>({ name: 'kv' });
    this.log = env.openDB<LogEvent[], number>({ name: 'log' });
    this.meta = env.openDB<number, string>({ name: 'meta' });
    this.leases = env.openDB<LeaseRec, string>({ name: 'lease' });
    this.notifier = new ChangeNotifier(dir, cfg.pollIntervalMs, cfg.report);
    this.armReaper();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key, 'key');
    this.fresh();
    const rec = this.kv.get(key);
    return rec ? toKv(key, rec) : undefined;
  }

  async list(prefix: string): Promise<ListResult> {
    checkPrefix(prefix, 'prefix');
    this.fresh();
    return { revision: this.readRevision(), items: this.readPrefix(prefix) };
  }

  async revision(): Promise<number> {
    this.fresh();
    return this.readRevision();
  }

  async txn(compares: Compare[], ops: Op[]): Promise<TxnResult> {
    checkTxn(compares, ops);
    this.open();
    this.reapExpired();
    let changed = false;
    let missingLease: string | undefined;
    // Synchronous on purpose: a read-compare-write cycle of a caller (the API's CAS retries) then never interleaves
    // with another's commit in this process. lmdb-js's asynchronous transactions avoid blocking the event loop for
    // the flush, but 20 concurrent API writers then exhausted their retries (measured: 12 of 20 got 409).
    const result = this.env.transactionSync((): TxnResult => {
      const rev = this.readRevision();
      for (const c of compares) {
        const rec = this.kv.get(c.key);
        const holds = 'modRevision' in c ? (rec?.m ?? 0) === c.modRevision : rec !== undefined && rec.v === c.value;
        if (!holds) return { succeeded: false, revision: rev };
      }
      // Leases are checked before anything is written, so a missing one leaves nothing half-written.
      const now = Date.now();
      for (const op of ops) {
        if (op.type !== 'put' || op.lease === undefined) continue;
        const lease = this.leases.get(op.lease);
        if (!lease || lease.exp <= now) {
          missingLease = op.lease;
          return { succeeded: false, revision: rev };
        }
      }
      const next = rev + 1;
      const events: LogEvent[] = [];
      const del = (key: string, prev: Rec): void => {
        this.kv.removeSync(key);
        events.push({ t: 'd', k: key, p: prev });
      };
      for (const op of ops) {
        if (op.type === 'put') {
          const prev = this.kv.get(op.key);
          const rec: Rec = { v: op.value, c: prev?.c ?? next, m: next, ver: (prev?.ver ?? 0) + 1 };
          if (op.lease !== undefined) {
            const lease = this.leases.get(op.lease)!;
            rec.l = op.lease;
            if (!lease.keys.includes(op.key)) this.leases.putSync(op.lease, { ...lease, keys: [...lease.keys, op.key] });
          }
          if (prev?.l !== undefined && prev.l !== rec.l) this.detach(prev.l, op.key);
          this.kv.putSync(op.key, rec);
          events.push(prev ? { t: 'p', k: op.key, r: rec, p: prev } : { t: 'p', k: op.key, r: rec });
        } else if (op.type === 'delete') {
          const prev = this.kv.get(op.key);
          if (prev) del(op.key, prev);
        } else {
          // Collect first: removing entries while a cursor walks them is not safe.
          for (const { key, value } of this.rangeEntries(op.prefix)) del(key, value);
        }
      }
      // Like etcd: a transaction that changed nothing does not make a revision.
      if (events.length === 0) return { succeeded: true, revision: rev };
      this.log.putSync(next, events);
      this.meta.putSync('revision', next);
      this.compactBelow(next - this.cfg.historyRevisions + 1);
      changed = true;
      return { succeeded: true, revision: next };
    });
    if (missingLease !== undefined) throw new LeaseNotFoundError(`ops: lease ${missingLease} not found (expired or revoked)`);
    if (changed) this.notifier.signal(result.revision);
    return result;
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    checkLeaseTtl(ttlMs);
    this.open();
    const ttl = Math.ceil(ttlMs);
    const id = this.env.transactionSync(() => {
      const seq = (this.meta.get('leaseSeq') ?? 0) + 1;
      this.meta.putSync('leaseSeq', seq);
      const id = String(seq);
      this.leases.putSync(id, { ttl, exp: Date.now() + ttl, keys: [] });
      this.updateLeaseNext();
      return id;
    });
    const lease = new LmdbLease(this, id, ttl);
    this.granted.add(lease);
    this.armReaper();
    return lease;
  }

  /**
   * @internal Renews a lease (exp = now + ttl). False when it is gone: expired (then reaped here at once),
   * revoked, or never granted.
   */
  renewLease(id: string): boolean {
    this.open();
    const renewed = this.env.transactionSync(() => {
      const rec = this.leases.get(id);
      if (!rec || rec.exp <= Date.now()) return false;
      this.leases.putSync(id, { ...rec, exp: Date.now() + rec.ttl });
      this.updateLeaseNext();
      return true;
    });
    if (!renewed) this.reapExpired();
    return renewed;
  }

  /** @internal Ends a lease and deletes its keys (one revision, if any key was attached). */
  revokeLease(id: string): void {
    this.open();
    this.endLeases((lid) => lid === id);
  }

  /** @internal */
  forgetLease(lease: LmdbLease): void {
    this.granted.delete(lease);
  }

  async compact(revision: number): Promise<void> {
    if (!Number.isSafeInteger(revision) || revision < 1) throw new StoreInputError('revision: must be an integer >= 1');
    this.open();
    const current = this.env.transactionSync(() => {
      const head = this.readRevision();
      if (revision > head) throw new StoreInputError(`revision: ${revision} is beyond the current revision ${head}`);
      this.compactBelow(revision);
      return head;
    });
    // Watchers behind the compaction point must learn it (they will reset).
    this.notifier.signal(current);
  }

  async listAndWatch(prefix: string, handler: WatchHandler, options: WatchOptions = {}): Promise<Watch> {
    checkPrefix(prefix, 'prefix');
    if (typeof handler !== 'function') throw new StoreInputError('handler: must be a function');
    const from = options.fromRevision;
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 0)) {
      throw new StoreInputError('fromRevision: must be an integer >= 0');
    }
    this.open();
    this.reapExpired();
    const w = new LmdbWatch(this, prefix, handler, from, this.cfg.report);
    this.watches.add(w);
    w.start(this.notifier);
    return w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const lease of [...this.granted]) {
      try {
        await lease.revoke();
      } catch (err) {
        this.cfg.report(err, `revoking lease ${lease.id} on close failed; its keys expire after ${lease.ttlMs} ms`);
      }
    }
    this.closed = true;
    for (const w of [...this.watches]) await w.close();
    if (this.reaperTimer) clearTimeout(this.reaperTimer);
    this.notifier.close();
    await this.env.close();
  }

  /** @internal used by LmdbWatch */
  forget(w: LmdbWatch): void {
    this.watches.delete(w);
  }

  /**
   * @internal One consistent read for a watch: the events after `after` (at most `batch` revisions), or a full
   * list when `after` is undefined (first sync) or the history it needs is gone (reset).
   */
  readStep(prefix: string, after: number | undefined): ReadStep {
    this.fresh();
    const head = this.readRevision();
    const compacted = this.meta.get('compacted') ?? 0;
    // A start revision beyond the head means the store was replaced or restored from an older backup: what
    // the watcher holds belongs to another history, so it must start over.
    if (after === undefined || after < compacted || after > head) {
      return { kind: 'list', reset: after !== undefined, revision: head, items: this.readPrefix(prefix) };
    }
    const through = Math.min(head, after + this.cfg.batch);
    const events: WatchEvent[] = [];
    if (through > after) {
      for (const { key: rev, value } of this.log.getRange({ start: after + 1, end: through + 1 })) {
        for (const e of value) {
          if (!e.k.startsWith(prefix)) continue;
          events.push(
            e.t === 'p'
              ? e.p
                ? { type: 'put', kv: toKv(e.k, e.r), prevKv: toKv(e.k, e.p) }
                : { type: 'put', kv: toKv(e.k, e.r) }
              : { type: 'delete', key: e.k, modRevision: rev, prevKv: toKv(e.k, e.p) },
          );
        }
      }
    }
    return { kind: 'events', through, head, events };
  }

  /**
   * Deletes the keys of every lease past its expiry, in a write transaction of its own (one revision, logged, so
   * watchers everywhere get the deletes). Cheap when nothing expired: one read of `leaseNext`.
   */
  private reapExpired(): void {
    this.env.resetReadTxn();
    const next = this.meta.get('leaseNext');
    if (next !== undefined && next <= Date.now()) {
      const now = Date.now();
      this.endLeases((_id, rec) => rec.exp <= now);
    }
    this.armReaper();
  }

  /** Removes the leases `doomed` picks and their keys; commits a revision only if a key was deleted. */
  private endLeases(doomed: (id: string, rec: LeaseRec) => boolean): void {
    const revision = this.env.transactionSync((): number | undefined => {
      const rev = this.readRevision();
      const events: LogEvent[] = [];
      for (const { key: id, value: rec } of [...this.leases.getRange({})]) {
        if (!doomed(id, rec)) continue;
        for (const key of rec.keys) {
          const prev = this.kv.get(key);
          if (prev?.l !== id) continue;
          this.kv.removeSync(key);
          events.push({ t: 'd', k: key, p: prev });
        }
        this.leases.removeSync(id);
      }
      this.updateLeaseNext();
      if (events.length === 0) return undefined;
      const next = rev + 1;
      this.log.putSync(next, events);
      this.meta.putSync('revision', next);
      this.compactBelow(next - this.cfg.historyRevisions + 1);
      return next;
    });
    if (revision !== undefined) this.notifier.signal(revision);
  }

  /** Drops `key` from a lease's key list (inside a write transaction). */
  private detach(leaseId: string, key: string): void {
    const rec = this.leases.get(leaseId);
    if (rec?.keys.includes(key)) this.leases.putSync(leaseId, { ...rec, keys: rec.keys.filter((k) => k !== key) });
  }

  /** Recomputes `leaseNext` (inside a write transaction); leases are few (one per agent), so a scan is fine. */
  private updateLeaseNext(): void {
    let next = Infinity;
    for (const { value } of this.leases.getRange({})) next = Math.min(next, value.exp);
    if (next === Infinity) this.meta.removeSync('leaseNext');
    else this.meta.putSync('leaseNext', next);
  }

  /**
   * Arms the timer that reaps at the earliest lease expiry (any process's lease), so watchers learn of an expiry
   * even when nobody reads. Re-armed on every read — every watch wake-up reads, and watches wake on each commit
   * and at least every pollIntervalMs, so a lease granted by another process is noticed within that.
   */
  private armReaper(): void {
    if (this.closed) return;
    const next = this.meta.get('leaseNext');
    if (next === undefined) return;
    if (this.reaperTimer && this.reaperAt <= next) return;
    if (this.reaperTimer) clearTimeout(this.reaperTimer);
    this.reaperAt = next;
    this.reaperTimer = setTimeout(() => {
      this.reaperTimer = undefined;
      this.reaperAt = Infinity;
      if (this.closed) return;
      try {
        this.reapExpired();
      } catch (err) {
        this.cfg.report(err, 'reaping expired leases failed');
      }
    }, Math.min(2 ** 31 - 1, Math.max(0, next - Date.now()) + 2));
    this.reaperTimer.unref();
  }

  private compactBelow(revision: number): void {
    const compacted = this.meta.get('compacted') ?? 0;
    const upTo = revision - 1;
    if (upTo <= compacted) return;
    const doomed = [...this.log.getKeys({ start: compacted + 1, end: upTo + 1 })];
    for (const r of doomed) this.log.removeSync(r);
    this.meta.putSync('compacted', upTo);
  }

  private readRevision(): number {
    return this.meta.get('revision') ?? 1;
  }

  private readPrefix(prefix: string): KeyValue[] {
    return this.rangeEntries(prefix).map(({ key, value }) => toKv(key, value));
  }

  private rangeEntries(prefix: string): { key: string; value: Rec }[] {
    const out: { key: string; value: Rec }[] = [];
    // Keys sharing a prefix are contiguous in LMDB's byte order: start there and stop at the first other key.
    for (const entry of this.kv.getRange(prefix === '' ? {} : { start: prefix })) {
      if (!entry.key.startsWith(prefix)) break;
      out.push(entry);
    }
    return out;
  }

  private fresh(): void {
    this.open();
    this.reapExpired();
    this.env.resetReadTxn();
  }

  private open(): void {
    if (this.closed) throw new StoreUnavailableError(`the LMDB store in ${this.dir} is closed`);
  }
}

/**
 * One listAndWatch: a loop that, whenever woken, reads everything after the last delivered revision from the
 * change log and delivers it. Only revisions above `delivered` are read, so a wake-up can never deliver an event
 * twice, and since the list and its revision come from one snapshot, nothing falls between list and changes.
 */
class LmdbWatch implements Watch {
  /** Everything up to this revision has been handed to the handler; undefined before the first list. */
  private delivered: number | undefined;
  private syncPending = true;
  private running = false;
  private wakeAgain = false;
  private closed = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: LmdbStoreImpl,
    private readonly prefix: string,
    private readonly handler: WatchHandler,
    fromRevision: number | undefined,
    private readonly report: StoreErrorReporter,
  ) {
    this.delivered = fromRevision;
  }

  start(notifier: ChangeNotifier): void {
    // Subscribe before the first read: a commit after that read then always produces a wake-up.
    this.unsubscribe = notifier.subscribe(() => this.wake());
    // First delivery on a later turn, so listAndWatch has resolved (and the caller holds the Watch) before the
    // handler runs.
    setImmediate(() => this.wake());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.store.forget(this);
  }

  private wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
    });
  }

  private async run(): Promise<void> {
    do {
      this.wakeAgain = false;
      try {
        await this.catchUp();
      } catch (err) {
        if (this.closed) return;
        // A read failed (e.g. disk error): report and let the next wake-up (at worst the poll) retry.
        this.report(err, `LMDB watch on ${JSON.stringify(this.prefix)} failed to read`);
        return;
      }
    } while (this.wakeAgain && !this.closed);
  }

  private async catchUp(): Promise<void> {
    while (!this.closed) {
      const step = this.store.readStep(this.prefix, this.delivered);
      if (step.kind === 'list') {
        if (step.reset) await this.emit({ type: 'reset', revision: step.revision });
        for (const kv of step.items) await this.emit({ type: 'put', kv });
        await this.emit({ type: 'synced', revision: step.revision });
        this.delivered = step.revision;
        this.syncPending = false;
        continue;
      }
      for (const e of step.events) await this.emit(e);
      if (this.closed) return;
      this.delivered = step.through;
      if (step.through < step.head) continue;
      if (this.syncPending) {
        this.syncPending = false;
        await this.emit({ type: 'synced', revision: step.head });
      }
      return;
    }
  }

  private async emit(event: WatchEvent): Promise<void> {
    if (this.closed) return;
    await deliver(this.handler, event, this.report);
  }
}

/** A lease of this process: renewed every ttl/3 until revoked, released, lost or the store closes. */
class LmdbLease implements Lease {
  private timer: NodeJS.Timeout | undefined;
  private listeners: ((reason: Error) => void)[] = [];
  ended = false;

  constructor(
    private readonly store: LmdbStoreImpl,
    readonly id: string,
    readonly ttlMs: number,
  ) {
    // Like etcd's clients: renew at a third of the TTL, so two renewals may fail before the lease expires.
    this.timer = setInterval(() => this.renew(), Math.max(1, Math.floor(ttlMs / 3)));
    // A lease never keeps a process alive on its own: a process with nothing else to do should let it expire.
    this.timer.unref();
  }

  onLost(listener: (reason: Error) => void): void {
    this.listeners.push(listener);
  }

  async revoke(): Promise<void> {
    if (this.ended) return;
    this.stop();
    this.store.revokeLease(this.id);
  }

  release(): void {
    this.stop();
  }

  private renew(): void {
    if (this.ended) return;
    let ok: boolean;
    try {
      ok = this.store.renewLease(this.id);
    } catch {
      // The store is closed or unreadable: the lease runs out by itself, and the next renewal tells.
      return;
    }
    if (ok) return;
    this.stop();
    const reason = new LeaseNotFoundError(`lease ${this.id} expired: not renewed within ${this.ttlMs} ms`);
    for (const l of this.listeners) l(reason);
  }

  private stop(): void {
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.store.forgetLease(this);
  }
}

function toKv(key: string, r: Rec): KeyValue {
  const kv: KeyValue = { key, value: r.v, createRevision: r.c, modRevision: r.m, version: r.ver };
  if (r.l !== undefined) kv.lease = r.l;
  return kv;
}
