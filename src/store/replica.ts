/**
 * The agent's local replica of one store prefix: the latest KeyValues under it and the revision to resume from,
 * kept in memory and persisted in the agent's own data directory, so an agent restarts and keeps reconciling
 * while the store is unreachable, then resumes its watch where it left off instead of re-listing everything.
 *
 * Persistence is an LMDB environment (not a JSON file rewritten via rename): each watch event then costs one
 * small transaction that writes the changed key and the resume revision together — O(change), not O(replica) —
 * and LMDB's commits are atomic (and flushed right after, off the event loop). A full (re-)list is committed as
 * one transaction at `synced`.
 *
 * What "revision" means here: every change up to `revision` is in the replica. The store delivers a revision's
 * events one at a time and the replica cannot see where a revision ends, so after applying an event of revision
 * R it persists R-1 (R itself once `synced` or a later revision arrives). A restart then replays revision R,
 * which is harmless: puts and deletes are idempotent. The cost: after a crash in the middle of a multi-key
 * revision, a replica read offline may hold part of that one revision.
 *
 * During a full list (first sync, or after a `reset`) the new items are staged aside; readers keep the previous
 * complete state until `synced` swaps the new one in, so an agent never reconciles from (and prunes against) a
 * half-received list.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { KeyValue, Store, Watch, WatchEvent } from './store.js';
import { checkPrefix } from './txn-validation.js';
import { defaultErrorReporter, type StoreErrorReporter } from './watch-delivery.js';

export class Replica {
  private readonly items = new Map<string, KeyValue>();
  private staging: Map<string, KeyValue> | undefined;
  private resumeRevision: number | undefined;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly prefix: string,
    private readonly env: RootDatabase,
    private readonly kv: Database<KeyValue, string>,
    private readonly meta: Database<string | number, string>,
  ) {}

  /**
   * Opens (creating if needed) the replica of `prefix` in `dir`. A replica found there for another prefix is
   * useless to this caller and is cleared.
   */
  static async open(dir: string, prefix: string): Promise<Replica> {
    if (typeof dir !== 'string' || dir.length === 0) throw new Error('replica dir: must be a non-empty path');
    checkPrefix(prefix, 'replica prefix');
    const abs = path.resolve(dir);
    fs.mkdirSync(abs, { recursive: true });
    const env = open({ path: abs, maxDbs: 3 });
    const kv = env.openDB<KeyValue, string>({ name: 'kv' });
    const meta = env.openDB<string | number, string>({ name: 'meta' });
    const r = new Replica(abs, prefix, env, kv, meta);
    if (meta.get('prefix') !== prefix) {
      env.transactionSync(() => {
        kv.clearSync();
        meta.clearSync();
        meta.putSync('prefix', prefix);
      });
    }
    const rev = meta.get('revision');
    r.resumeRevision = typeof rev === 'number' ? rev : undefined;
    for (const { key, value } of kv.getRange({})) r.items.set(key, value);
    return r;
  }

  /** Every change up to this revision is in the replica; undefined until a first full list completed. */
  get revision(): number | undefined {
    return this.resumeRevision;
  }

  /** True while a full list (first sync or after a reset) is being received. */
  get listing(): boolean {
    return this.staging !== undefined;
  }

  get size(): number {
    return this.items.size;
  }

  get(key: string): KeyValue | undefined {
    return this.items.get(key);
  }

  /** The replica's KeyValues in key order (a copy). */
  snapshot(): KeyValue[] {
    return [...this.items.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Applies one watch event of a listAndWatch on this replica's prefix, and persists it before returning. */
  async apply(event: WatchEvent): Promise<void> {
    if (this.closed) throw new Error('replica is closed');
    switch (event.type) {
      case 'reset':
        this.staging = new Map();
        return;
      case 'synced':
        await this.commitList(event.revision);
        return;
      case 'put':
        if (!event.kv.key.startsWith(this.prefix)) return;
        if (this.staging) {
          this.staging.set(event.kv.key, event.kv);
          return;
        }
        if (this.resumeRevision === undefined) {
          // No complete list yet and no reset announced: this is the first full list.
          this.staging = new Map([[event.kv.key, event.kv]]);
          return;
        }
        await this.write(event.kv.modRevision, () => this.kv.putSync(event.kv.key, event.kv));
        this.items.set(event.kv.key, event.kv);
        return;
      case 'delete':
        if (!event.key.startsWith(this.prefix)) return;
        if (this.staging) {
          this.staging.delete(event.key);
          return;
        }
        await this.write(event.modRevision, () => this.kv.removeSync(event.key));
        this.items.delete(event.key);
        return;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }

  /**
   * One asynchronous LMDB transaction (the commit happens on lmdb's worker thread, so the agent's event loop is
   * not blocked for it). Not waiting for the disk flush: after a machine crash the replica may resume from an
   * earlier revision, which only replays changes (puts and deletes are idempotent).
   */
  private async write(revision: number, change: () => void): Promise<void> {
    const resume = Math.max(this.resumeRevision ?? 0, revision - 1);
    await this.env.transaction(() => {
      change();
      this.meta.putSync('revision', resume);
    });
    this.resumeRevision = resume;
  }

  private async commitList(revision: number): Promise<void> {
    const staged = this.staging;
    await this.env.transaction(() => {
      if (staged) {
        this.kv.clearSync();
        for (const [k, v] of staged) this.kv.putSync(k, v);
      }
      this.meta.putSync('revision', revision);
    });
    if (staged) {
      this.items.clear();
      for (const [k, v] of [...staged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) this.items.set(k, v);
      this.staging = undefined;
    }
    this.resumeRevision = revision;
  }
}

export interface FollowOptions {
  /** Called after each event has been applied to the replica (e.g. to trigger a reconcile). */
  onEvent?: (event: WatchEvent, replica: Replica) => void | Promise<void>;
  /** Where failures are reported (store unreachable, replica write failed); default console.error. */
  onError?: StoreErrorReporter;
  /** Backoff between attempts to (re-)start the watch: from minMs doubling up to maxMs (default 200 → 5000). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface Following {
  /** Resolves at the first `synced` (the replica then mirrors the store at that revision). */
  readonly firstSync: Promise<number>;
  /** Stops following; the replica stays open (the caller closes it). */
  close(): Promise<void>;
}

/**
 * Keeps `replica` in step with `store`: lists-and-watches the replica's prefix, resuming from the replica's
 * revision when it has one (a `reset` from the store re-lists it), and retries with backoff while the store
 * is unreachable — the replica keeps serving its last state meanwhile. If persisting an event fails, the watch
 * is restarted from the replica's revision so no change is lost.
 */
export function followIntoReplica(store: Store, replica: Replica, opts: FollowOptions = {}): Following {
  const report = opts.onError ?? defaultErrorReporter;
  const minMs = opts.retryMinMs ?? 200;
  const maxMs = opts.retryMaxMs ?? 5000;
  let closed = false;
  let watch: Watch | undefined;
  let wakeRetry: (() => void) | undefined;
  let resolveFirst!: (rev: number) => void;
  const firstSync = new Promise<number>((r) => (resolveFirst = r));

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        wakeRetry = undefined;
        resolve();
      }
      wakeRetry = done;
    });

  // Resolves the wait on the current watch: with an error when the replica failed to apply an event, with
  // undefined when following is closed.
  let endCurrent: ((err: unknown) => void) | undefined;

  const run = async (): Promise<void> => {
    let delay = minMs;
    while (!closed) {
      const ended = new Promise<unknown>((r) => (endCurrent = r));
      let dead = false;
      try {
        const from = replica.revision;
        watch = await store.listAndWatch(
          replica.prefix,
          async (event) => {
            if (dead || closed) return;
            try {
              await replica.apply(event);
            } catch (err) {
              // The replica missed this event: restart from its revision rather than go on with a hole.
              dead = true;
              endCurrent?.(err);
              return;
            }
            if (event.type === 'synced') {
              delay = minMs;
              resolveFirst(event.revision);
            }
            if (opts.onEvent) await opts.onEvent(event, replica);
          },
          from === undefined ? {} : { fromRevision: from },
        );
        const err = closed ? undefined : await ended;
        if (!closed) {
          report(err, `replica ${replica.dir}: applying an event failed; restarting the watch from revision ${replica.revision}`);
        }
      } catch (err) {
        if (!closed) report(err, `replica ${replica.dir}: cannot watch ${JSON.stringify(replica.prefix)} (retrying in ${delay} ms)`);
      }
      dead = true;
      const w = watch;
      watch = undefined;
      await w?.close().catch((e: unknown) => report(e, 'closing a watch'));
      if (closed) break;
      await sleep(delay);
      delay = Math.min(maxMs, delay * 2);
    }
  };
  const running = run();
  return {
    firstSync,
    async close() {
      if (closed) return;
      closed = true;
      wakeRetry?.();
      endCurrent?.(undefined);
      await running;
    },
  };
}
