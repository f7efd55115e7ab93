/**
 * The Store: OpenTransit's one source of truth for desired state.
 *
 * Shaped after etcd's v3 API so that the embedded LMDB implementation (one machine) and the etcd implementation
 * (a fleet) are drop-ins for each other:
 *  - one global, monotonically increasing revision; every committed write bumps it by exactly one, whatever the
 *    number of keys the transaction touched (like etcd);
 *  - every key carries createRevision / modRevision / version (version counts writes since creation);
 *  - transactions are compare-and-swap: all compares hold → all ops apply atomically, else nothing changes;
 *  - listAndWatch delivers a consistent list, then an explicit `synced` event, then every later change in
 *    revision order, exactly once. A watcher that resumes from a revision gets only what came after it; if that
 *    history is gone (compacted) it gets a `reset` and a fresh full list instead.
 *
 * Keys and values are strings (values are JSON text written by src/model); see src/model/keys.ts for the layout.
 *
 * Leases (etcd's, for liveness): `grantLease(ttlMs)` gives a lease the store keeps alive from this process; keys
 * put with `lease: id` are deleted by the store — a `delete` event to every watcher, like any delete — when the
 * lease expires (its holder died, hung, or lost the store for longer than the TTL) or is revoked. `close()`
 * revokes the leases this Store granted.
 */

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is attached to (deleted when the lease ends); absent for a key without one. */
  lease?: string;
}

/** A compare in a transaction. `modRevision: 0` means "the key must not exist". */
export type Compare =
  | { key: string; modRevision: number }
  | { key: string; value: string };

export type Op =
  /** `lease`: attach the key to a live lease (a put without `lease` detaches it). A lease that is gone fails the
   *  whole transaction with LeaseNotFoundError. */
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  /** Deletes every key starting with `prefix` (etcd DeleteRange over a prefix). */
  | { type: 'deletePrefix'; prefix: string };

export interface TxnResult {
  succeeded: boolean;
  /** The store revision after the transaction (unchanged if it failed or changed nothing). */
  revision: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list is consistent at. */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prevKv?: KeyValue }
  | { type: 'delete'; key: string; modRevision: number; prevKv?: KeyValue }
  /** Everything up to `revision` has been delivered; from here on, events are live changes. */
  | { type: 'synced'; revision: number }
  /**
   * The requested start revision is no longer in history (compacted), or the connection was lost for longer than
   * history: forget everything seen under the prefix; a full list (puts) and a new `synced` follow.
   */
  | { type: 'reset'; revision: number };

export interface WatchOptions {
  /**
   * Resume after this revision: deliver only changes with modRevision > fromRevision, then `synced`.
   * Omitted: deliver the full current list as puts, then `synced`, then changes.
   *
   * The changes made before `synced` may be collapsed to the latest per key (etcd does: one put per changed key,
   * deletions reported at the `synced` revision; LMDB replays its log exactly). Applying them in order to the
   * state at fromRevision always gives the state at the `synced` revision. A fromRevision beyond the store's
   * current revision (the store was replaced or restored) is treated like a compacted one: `reset`, full list.
   */
  fromRevision?: number;
}

export interface Watch {
  /** Stops delivering events and releases resources. Safe to call twice. */
  close(): Promise<void>;
}

/** Handler errors are the caller's: the store logs them and keeps delivering (it never skips an event). */
export type WatchHandler = (event: WatchEvent) => void | Promise<void>;

/**
 * A lease granted by this process: the store renews it (keepalive) until it is revoked, released, or lost.
 * Its keys vanish `ttlMs` after the last renewal that reached the store.
 */
export interface Lease {
  /** The store's id of the lease (etcd's int64 lease id as decimal text); pass it as a put's `lease`. */
  readonly id: string;
  /** The TTL the store granted (etcd rounds up to whole seconds and enforces its minimum). */
  readonly ttlMs: number;
  /** True once the lease is gone for good (expired, revoked, released, store closed): grant a new one. */
  readonly ended: boolean;
  /**
   * Called once if the lease is lost — it expired on the store (renewals did not reach it in time) — never after
   * revoke/release. Its keys are, or will shortly be, deleted.
   */
  onLost(listener: (reason: Error) => void): void;
  /** Ends the lease now and deletes its keys (idempotent; an already expired lease is not an error). */
  revoke(): Promise<void>;
  /** Stops renewing without revoking: the keys stay until the TTL runs out (what a crash does). */
  release(): void;
}

export interface Store {
  /** What kind of store this is, for status output ("lmdb" | "etcd"). */
  readonly kind: string;
  get(key: string): Promise<KeyValue | undefined>;
  list(prefix: string): Promise<ListResult>;
  /** The current revision of the whole store. */
  revision(): Promise<number>;
  txn(compares: Compare[], ops: Op[]): Promise<TxnResult>;
  /**
   * Lists then watches a prefix. Events for one watch are delivered one at a time, in revision order; the handler's
   * promise is awaited before the next event is delivered.
   */
  listAndWatch(prefix: string, handler: WatchHandler, options?: WatchOptions): Promise<Watch>;
  /** Grants a lease of (at least) `ttlMs`, renewed from this process until revoked, released or closed. */
  grantLease(ttlMs: number): Promise<Lease>;
  /** Revokes the leases this Store granted (best effort: an unreachable store expires them after their TTL). */
  close(): Promise<void>;
}

/** Thrown by a store when the backend cannot be reached (etcd down, LMDB env missing). */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** A put named a lease the store does not hold (expired, revoked, or never granted). */
export class LeaseNotFoundError extends Error {
  override name = 'LeaseNotFoundError';
}
