/**
 * The fleet Store on etcd v3 (the `etcd3` client). The Store contract is shaped after etcd, so this is mostly
 * a translation: etcd's revision is our revision, txn compares map to etcd compares (etcd also reports a value
 * compare on a missing key as false, and mod revision 0 for a missing key).
 *
 * listAndWatch:
 *  - full list: a (paged) range pinned at revision R, `synced` R, then a watch from R+1 — no gap, no overlap;
 *  - resume from F: the keys changed since F come from ranges at the current revision R filtered by
 *    mod_revision > F, deletions from comparing the keys at F with the keys at R; then `synced` R and a watch
 *    from R+1. Changes made while away are therefore collapsed to one event per key (a deletion is reported at
 *    R, its true revision being unknown). A range at a compacted F fails → `reset`, full list, `synced`;
 *  - the watch survives disconnects: the etcd3 client reconnects with backoff, and on each disconnect the
 *    watcher's start revision is set to one past the last revision received, so nothing is skipped (the client
 *    alone would resume from the revision of the last response header, which can be ahead of what it
 *    delivered); anything at or below that revision is dropped as a duplicate;
 *  - a watch canceled by etcd (its start revision was compacted while disconnected) → `reset`, a full list at
 *    the current revision, `synced`, and a new watch from there.
 *
 * Leases are etcd's own (whole seconds, at least 1 s): the etcd3 client renews them on a keepalive stream every
 * TTL/3 and reports them lost when etcd says they expired (or after two TTLs without a renewal reaching etcd).
 */
import { Etcd3, EtcdLeaseInvalidError, GRPCDeadlineExceededError, isRecoverableError, Range, type IOptions, type IKeyValue, type IWatchResponse, type Lease as EtcdClientLease, type Watcher } from 'etcd3';
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
import { checkKey, checkLeaseTtl, checkPrefix, checkTxn, prefixRangeEnd, StoreInputError } from './txn-validation.js';
import { parseEndpoint } from './endpoints.js';
import { defaultErrorReporter, deliver, SerialQueue, type StoreErrorReporter } from './watch-delivery.js';

export interface EtcdStoreOptions {
  /** Fail openEtcdStore with StoreUnavailableError when no endpoint answers (default true). An agent that must
   * boot without the store passes false: calls then fail (or watches retry) until etcd is reachable. */
  requireConnection?: boolean;
  /** Deadline of each unary call (default 5000 ms); past it the call fails with StoreUnavailableError. */
  callTimeoutMs?: number;
  /** Keys per range page (default 1000). */
  pageSize?: number;
  /** Backoff of watch re-connections: from minMs doubling to maxMs (default 100 → 2000). */
  watchBackoffMinMs?: number;
  watchBackoffMaxMs?: number;
  /** Where to report errors nobody can catch (handler failures, re-list failures); default console.error. */
  onError?: StoreErrorReporter;
}

export interface EtcdStore extends Store {
  readonly kind: 'etcd';
  readonly endpoints: string[];
  /** Compacts etcd's history up to `revision` (etcd Compact, physical); already compacted is not an error. */
  compact(revision: number): Promise<void>;
}

/** Opens a Store on the etcd cluster at `endpoints` ("host:port" or "http(s)://host:port"). */
export async function openEtcdStore(endpoints: string[], opts: EtcdStoreOptions = {}): Promise<EtcdStore> {
  const hosts = normalizeEndpoints(endpoints);
  const callTimeoutMs = opts.callTimeoutMs ?? 5000;
  if (!(callTimeoutMs > 0)) throw new StoreInputError('callTimeoutMs: must be > 0');
  const pageSize = opts.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new StoreInputError('pageSize: must be an integer >= 1');
  const store = new EtcdStoreImpl(hosts, {
    callTimeoutMs,
    pageSize,
    backoffMin: opts.watchBackoffMinMs ?? 100,
    backoffMax: opts.watchBackoffMaxMs ?? 2000,
    report: opts.onError ?? defaultErrorReporter,
  });
  if (opts.requireConnection !== false) {
    try {
      await store.revision();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}

export function normalizeEndpoints(endpoints: string[]): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) throw new StoreInputError('etcd endpoints: need at least one');
  return endpoints.map((e, i) => parseEndpoint(e, `etcd endpoints[${i}]`));
}

type FaultHandling = Required<NonNullable<IOptions['faultHandling']>>;

interface Cfg {
  callTimeoutMs: number;
  pageSize: number;
  backoffMin: number;
  backoffMax: number;
  report: StoreErrorReporter;
}

interface RangeOut {
  revision: number;
  kvs: IKeyValue[];
}

class EtcdStoreImpl implements EtcdStore {
  readonly kind = 'etcd' as const;
  readonly client: Etcd3;
  private readonly watches = new Set<EtcdWatch>();
  private readonly granted = new Set<EtcdLease>();
  private closed = false;

  constructor(
    readonly endpoints: string[],
    readonly cfg: Cfg,
  ) {
    this.client = new Etcd3({
      hosts: endpoints,
      dialTimeout: cfg.callTimeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + cfg.callTimeoutMs }),
      grpcOptions: {
        // gRPC's default reconnect backoff grows to 120 s; an etcd back after a restart should be used at once.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.max_receive_message_length': 256 * 1024 * 1024,
      },
      faultHandling: {
        // No circuit breaker: the default one refuses every call for 5 s after 3 failures, even once etcd is back.
        host: () => passThroughPolicy as unknown as ReturnType<FaultHandling['host']>,
        // Retries are ours (see call()): the client's default would also re-send a txn after an ambiguous
        // failure, applying a compare-and-swap twice or reporting its own success as a conflict.
        global: passThroughPolicy as unknown as FaultHandling['global'],
        watchBackoff: new CappedBackoff(cfg.backoffMin, cfg.backoffMax) as unknown as FaultHandling['watchBackoff'],
      },
    });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key, 'key');
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv ? toKv(kv) : undefined;
  }

  async list(prefix: string): Promise<ListResult> {
    checkPrefix(prefix, 'prefix');
    const r = await this.rangePrefix(prefix);
    return { revision: r.revision, items: r.kvs.map(toKv) };
  }

  async revision(): Promise<number> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from([0]), count_only: true }));
    return Number(res.header.revision);
  }

  async txn(compares: Compare[], ops: Op[]): Promise<TxnResult> {
    checkTxn(compares, ops);
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: compares.map((c) =>
          'modRevision' in c
            ? { key: Buffer.from(c.key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: c.modRevision }
            : { key: Buffer.from(c.key), target: 'Value' as const, result: 'Equal' as const, value: Buffer.from(c.value) },
        ),
        success: ops.map((op) => {
          if (op.type === 'put')
            return { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), ...(op.lease !== undefined ? { lease: op.lease } : {}) } };
          if (op.type === 'delete') return { request_delete_range: { key: Buffer.from(op.key) } };
          const [key, range_end] = prefixBounds(op.prefix);
          return { request_delete_range: { key, range_end } };
        }),
        failure: [],
      }),
      true,
    ).catch((err: unknown) => {
      if (err instanceof EtcdLeaseInvalidError) throw new LeaseNotFoundError(`ops: ${err.message}`, { cause: err });
      throw err;
    });
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    checkLeaseTtl(ttlMs);
    this.open();
    const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    let clientLease: EtcdClientLease | undefined;
    const id = await this.call(async () => {
      // The client grants in its constructor; a failed grant cannot be retried on the same object.
      clientLease = this.client.lease(ttlSeconds);
      return clientLease.grant();
    }, true);
    const lease = new EtcdLease(this, clientLease!, String(id), ttlSeconds * 1000);
    this.granted.add(lease);
    return lease;
  }

  /** @internal */
  forgetLease(lease: EtcdLease): void {
    this.granted.delete(lease);
  }

  async compact(revision: number): Promise<void> {
    if (!Number.isSafeInteger(revision) || revision < 1) throw new StoreInputError('revision: must be an integer >= 1');
    try {
      await this.call(() => this.client.kv.compact({ revision, physical: true }));
    } catch (err) {
      if (!/required revision has been compacted/.test((err as Error).message)) throw err;
    }
  }

  async listAndWatch(prefix: string, handler: WatchHandler, options: WatchOptions = {}): Promise<Watch> {
    checkPrefix(prefix, 'prefix');
    if (typeof handler !== 'function') throw new StoreInputError('handler: must be a function');
    const from = options.fromRevision;
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 0)) {
      throw new StoreInputError('fromRevision: must be an integer >= 0');
    }
    this.open();
    const initial = from === undefined ? await this.fullList(prefix, false) : await this.changesSince(prefix, from);
    const w = new EtcdWatch(this, prefix, handler);
    this.watches.add(w);
    w.start(initial.events, initial.revision);
    return w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Revoked first (the keys go now, not a TTL later), but never waiting long on an etcd that is gone.
    await Promise.all(
      [...this.granted].map((l) =>
        Promise.race([l.revoke().catch(() => undefined), new Promise((r) => setTimeout(r, Math.min(1000, this.cfg.callTimeoutMs)).unref())]),
      ),
    );
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.close()));
    this.client.close();
  }

  /** @internal */
  forget(w: EtcdWatch): void {
    this.watches.delete(w);
  }

  /** @internal The full list as puts, then synced (after `reset` if `reset`). */
  async fullList(prefix: string, reset: boolean): Promise<{ revision: number; events: WatchEvent[] }> {
    const r = await this.rangePrefix(prefix);
    const events: WatchEvent[] = reset ? [{ type: 'reset', revision: r.revision }] : [];
    for (const kv of r.kvs) events.push({ type: 'put', kv: toKv(kv) });
    events.push({ type: 'synced', revision: r.revision });
    return { revision: r.revision, events };
  }

  /** The changes under `prefix` since revision `from`, collapsed to one event per key, then synced. */
  private async changesSince(prefix: string, from: number): Promise<{ revision: number; events: WatchEvent[] }> {
    const changed = await this.rangePrefix(prefix, { minModRevision: from + 1 });
    const head = changed.revision;
    // Beyond the head: the watcher's history is not this store's (replaced, or restored from a backup).
    if (from > head) return this.fullList(prefix, true);
    if (from === head) return { revision: head, events: [{ type: 'synced', revision: head }] };
    let before: RangeOut;
    try {
      // Revision 0 would mean "latest" to etcd; before revision 1 nothing existed.
      before = from === 0 ? { revision: head, kvs: [] } : await this.rangePrefix(prefix, { revision: from, keysOnly: true });
    } catch (err) {
      if (isCompacted(err)) return this.fullList(prefix, true);
      throw err;
    }
    const now = await this.rangePrefix(prefix, { revision: head, keysOnly: true });
    const present = new Set(now.kvs.map((kv) => kv.key.toString('utf8')));
    const puts: WatchEvent[] = changed.kvs
      .map(toKv)
      .sort((a, b) => a.modRevision - b.modRevision)
      .map((kv) => ({ type: 'put', kv }));
    const deletes: WatchEvent[] = before.kvs
      .map((kv) => kv.key.toString('utf8'))
      .filter((k) => !present.has(k))
      .map((key) => ({ type: 'delete', key, modRevision: head }));
    return { revision: head, events: [...puts, ...deletes, { type: 'synced', revision: head }] };
  }

  /** All keys under a prefix, paging, every page pinned at the revision of the first. */
  private async rangePrefix(
    prefix: string,
    o: { revision?: number; keysOnly?: boolean; minModRevision?: number } = {},
  ): Promise<RangeOut> {
    const [start, end] = prefixBounds(prefix);
    let key = start;
    let revision = o.revision;
    const kvs: IKeyValue[] = [];
    for (;;) {
      const res = await this.call(() =>
        this.client.kv.range({
          key,
          range_end: end,
          limit: this.cfg.pageSize,
          revision: revision ?? 0,
          keys_only: o.keysOnly ?? false,
          min_mod_revision: o.minModRevision ?? 0,
        }),
      );
      revision ??= Number(res.header.revision);
      kvs.push(...res.kvs);
      const last = res.kvs.at(-1);
      if (!res.more || !last) break;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { revision: revision!, kvs };
  }

  /**
   * Runs an etcd call, retrying connection failures (each attempt goes to a randomly chosen endpoint) and turning
   * "cannot reach etcd" into StoreUnavailableError. A write (`mutation`) is retried only when the request
   * provably never left this process; otherwise it may have been applied, and re-sending it could apply it twice.
   */
  async call<T>(fn: () => Promise<T>, mutation = false): Promise<T> {
    const attempts = 2 * this.endpoints.length + 1;
    for (let attempt = 1; ; attempt++) {
      this.open();
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof Error) || !(isRecoverableError(err) || err instanceof GRPCDeadlineExceededError)) throw err;
        const unsent = NOT_SENT.test(err.message);
        if (mutation && !unsent) {
          throw new StoreUnavailableError(
            `etcd at ${this.endpoints.join(',')} failed during a write, which may or may not have been applied: ${err.message}`,
            { cause: err },
          );
        }
        if (attempt >= attempts) {
          throw new StoreUnavailableError(`etcd at ${this.endpoints.join(',')} is unreachable: ${err.message}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  }

  private open(): void {
    if (this.closed) throw new StoreUnavailableError('the etcd store is closed');
  }
}

/**
 * One listAndWatch on etcd. Responses arrive on the client's stream whenever etcd sends them; each becomes a
 * task on a serial queue so the handler sees events one at a time, in order. `received` is the highest revision
 * queued: it is where a reconnect resumes from and what duplicates are measured against.
 */
class EtcdWatch implements Watch {
  private readonly queue: SerialQueue;
  private received = 0;
  private watcher: Watcher | undefined;
  /** Bumped whenever the current etcd watcher is abandoned: late callbacks of an old one are ignored. */
  private generation = 0;
  private closed = false;

  constructor(
    private readonly store: EtcdStoreImpl,
    private readonly prefix: string,
    private readonly handler: WatchHandler,
  ) {
    this.queue = new SerialQueue(store.cfg.report);
  }

  start(initial: WatchEvent[], revision: number): void {
    this.received = revision;
    // First delivery on a later turn, so listAndWatch has resolved before the handler runs.
    this.queue.push(() => new Promise((r) => setImmediate(r)));
    this.enqueue(initial);
    this.attach(revision + 1);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.store.forget(this);
    const w = this.watcher;
    this.watcher = undefined;
    // cancel() waits for etcd's confirmation; do not hang on a dead connection.
    if (w) await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  private enqueue(events: WatchEvent[]): void {
    if (events.length === 0) return;
    this.queue.push(async () => {
      for (const e of events) {
        if (this.closed) return;
        await deliver(this.handler, e, this.store.cfg.report);
      }
    });
  }

  private attach(startRevision: number): void {
    if (this.closed) return;
    const gen = ++this.generation;
    const [start, end] = prefixBounds(this.prefix);
    const w = this.store.client
      .watch()
      .inRange(new Range(start, end))
      .withPreviousKV()
      .startRevision(String(startRevision))
      .watcher();
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => {
      if (gen === this.generation) this.onResponse(res);
    });
    w.on('disconnected', () => {
      // The client re-creates the watch from request.start_revision when it reconnects.
      if (gen === this.generation) w.request.start_revision = String(this.received + 1);
    });
    w.on('error', (err: unknown) => {
      if (gen !== this.generation || this.closed) return;
      // etcd canceled the watch — in practice because its start revision was compacted while we were away.
      // (etcd has already dropped the watcher, and so has the client's watch manager: nothing to cancel.)
      this.generation++;
      this.watcher = undefined;
      this.store.cfg.report(err, `etcd watch on ${JSON.stringify(this.prefix)} canceled; re-listing`);
      this.queue.push(() => this.relist());
    });
  }

  private onResponse(res: IWatchResponse): void {
    if (this.closed) return;
    if (res.events.length === 0) {
      // A progress notification: etcd has sent this watcher every event up to the header revision.
      if (!res.created && res.header?.revision) this.received = Math.max(this.received, Number(res.header.revision));
      return;
    }
    const fresh = res.events.filter((e) => Number(e.kv.mod_revision) > this.received);
    if (fresh.length === 0) return;
    this.received = Math.max(...fresh.map((e) => Number(e.kv.mod_revision)));
    this.enqueue(
      fresh.map((e): WatchEvent => {
        const prevKv = e.prev_kv ? toKv(e.prev_kv) : undefined;
        if (e.type === 'Put') return prevKv ? { type: 'put', kv: toKv(e.kv), prevKv } : { type: 'put', kv: toKv(e.kv) };
        const del: WatchEvent = { type: 'delete', key: e.kv.key.toString('utf8'), modRevision: Number(e.kv.mod_revision) };
        return prevKv ? { ...del, prevKv } : del;
      }),
    );
  }

  /** Runs on the queue: reset + full list + synced, then a new watch; retried until it works or we close. */
  private async relist(): Promise<void> {
    let delay = this.store.cfg.backoffMin;
    while (!this.closed) {
      try {
        const r = await this.store.fullList(this.prefix, true);
        if (this.closed) return;
        this.received = r.revision;
        for (const e of r.events) {
          if (this.closed) return;
          await deliver(this.handler, e, this.store.cfg.report);
        }
        this.attach(r.revision + 1);
        return;
      } catch (err) {
        if (this.closed) return;
        this.store.cfg.report(err, `re-listing ${JSON.stringify(this.prefix)} failed (retrying in ${delay} ms)`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.store.cfg.backoffMax, delay * 2);
      }
    }
  }
}

/** A lease granted through the etcd3 client, which renews it. */
class EtcdLease implements Lease {
  ended = false;

  constructor(
    private readonly store: EtcdStoreImpl,
    private readonly inner: EtcdClientLease,
    readonly id: string,
    readonly ttlMs: number,
  ) {
    inner.on('lost', () => {
      this.ended = true;
      this.store.forgetLease(this);
    });
  }

  onLost(listener: (reason: Error) => void): void {
    this.inner.on('lost', (err: Error) => listener(new LeaseNotFoundError(`lease ${this.id} lost: ${err.message}`, { cause: err })));
  }

  async revoke(): Promise<void> {
    if (this.ended) return;
    this.end();
    try {
      await this.store.call(() => this.inner.revoke(), true);
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
    }
  }

  release(): void {
    if (this.ended) return;
    this.end();
    this.inner.release();
  }

  private end(): void {
    this.ended = true;
    // revoke()/release() close the client's lease first: it emits no 'lost' after that.
    this.inner.removeAllListeners('lost');
    this.store.forgetLease(this);
  }
}

function isCompacted(err: unknown): boolean {
  return err instanceof Error && /required revision has been compacted/.test(err.message);
}

function prefixBounds(prefix: string): [Buffer, Buffer] {
  // The empty prefix is the whole keyspace: etcd spells that key "\0", range_end "\0".
  if (prefix === '') return [Buffer.from([0]), Buffer.from([0])];
  const start = Buffer.from(prefix);
  return [start, prefixRangeEnd(start)];
}

function toKv(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
  };
  if (kv.lease && kv.lease !== '0') out.lease = String(kv.lease);
  return out;
}

/** A cockatiel-compatible policy (etcd3 only calls execute) that just runs the call. */
const passThroughPolicy = {
  execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
    return Promise.resolve().then(() => fn({ signal: new AbortController().signal }));
  },
};

/**
 * gRPC failures that happen before a request is written to any connection: no connection could be established,
 * or the deadline passed while still waiting for one. Only these are safe to retry for writes.
 */
const NOT_SENT = /No connection established|Waiting for LB pick/;

/** The watch re-connection backoff (cockatiel's IBackoff shape, as the etcd3 watch manager uses it). */
class CappedBackoff {
  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    readonly duration = 0,
  ) {}
  next(): CappedBackoff {
    return new CappedBackoff(this.minMs, this.maxMs, this.duration === 0 ? this.minMs : Math.min(this.maxMs, this.duration * 2));
  }
}
