/**
 * The generic reconcile engine: desired objects vs what the kernel actually has, for one kind of object in one scope
 * (e.g. "routes in table opentransit of host netns X", "nft table of customer netns Y").
 *
 * Rules it enforces (DESIGN.md §3):
 *  - idempotent: an object that is already right is left alone (never delete-and-recreate: a restart must not
 *    drop a packet); a wrong or missing one is applied with replace semantics;
 *  - prune touches only what the ops module lists as ours, and only when the caller says the desired set is
 *    complete (after the initial sync of the store, never from an interrupted dump);
 *  - adds and replacements go before removals, so traffic moving from an old object to a new one always has a path;
 *  - one object's failure does not stop the others: every object gets its own status.
 */

export interface KindOps<D, A> {
  /** Name of the kind, for status and logs ("route", "nft-table"…). */
  readonly kind: string;
  /** Identity of a desired object; `actualKey` must return the same string for its kernel twin. */
  desiredKey(d: D): string;
  actualKey(a: A): string;
  /** Lists the objects of this kind that we own in the scope, as the kernel has them now. */
  list(): Promise<A[]>;
  /** True when the kernel object already is what we want (then nothing is written). */
  matches(d: D, a: A): boolean;
  /** Creates or replaces the object so it becomes `d` (`actual` is the current twin, if any). */
  apply(d: D, actual: A | undefined): Promise<void>;
  /** Deletes an object we own that is no longer desired. Deleting a missing object is success. */
  remove(a: A): Promise<void>;
}

export interface ObjectFailure {
  kind: string;
  key: string;
  action: 'apply' | 'remove';
  error: string;
}

export interface ReconcileResult {
  kind: string;
  /** Keys written because they were missing or differed. */
  applied: string[];
  /** Keys of owned objects deleted because they are no longer desired. */
  removed: string[];
  /** Keys already right. */
  unchanged: number;
  failures: ObjectFailure[];
}

export interface ReconcileOptions {
  /** Delete owned objects that are not desired. Only true once the desired set is known to be complete. */
  prune: boolean;
  /** Compute the plan without touching the kernel (`opentransit plan`). */
  dryRun?: boolean;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface ObjectDiff<D, A> {
  /** Desired objects the kernel lacks or holds differently (`actual` is the current twin, if any). */
  apply: { desired: D; key: string; actual: A | undefined }[];
  /** Owned kernel objects nobody desires (prune candidates). */
  remove: { actual: A; key: string }[];
  unchanged: number;
}

/** The pure diff behind every reconcile: what to write and what to prune, by key. */
export function diffObjects<D, A>(
  desired: readonly D[],
  actual: readonly A[],
  desiredKey: (d: D) => string,
  actualKey: (a: A) => string,
  matches: (d: D, a: A) => boolean,
  kind = 'object',
): ObjectDiff<D, A> {
  const byKey = new Map<string, A>();
  for (const a of actual) byKey.set(actualKey(a), a);
  const diff: ObjectDiff<D, A> = { apply: [], remove: [], unchanged: 0 };
  const wanted = new Set<string>();
  for (const d of desired) {
    const key = desiredKey(d);
    if (wanted.has(key)) throw new Error(`${kind}: two desired objects share the key ${key}`);
    wanted.add(key);
    const current = byKey.get(key);
    if (current !== undefined && matches(d, current)) diff.unchanged++;
    else diff.apply.push({ desired: d, key, actual: current });
  }
  for (const [key, a] of byKey) if (!wanted.has(key)) diff.remove.push({ actual: a, key });
  return diff;
}

/** Reconciles one kind in one scope. Never throws for an object's failure; `list()` failing does throw. */
export async function reconcileKind<D, A>(
  ops: KindOps<D, A>,
  desired: readonly D[],
  options: ReconcileOptions,
): Promise<ReconcileResult> {
  const diff = diffObjects(desired, await ops.list(), (d) => ops.desiredKey(d), (a) => ops.actualKey(a), (d, a) => ops.matches(d, a), ops.kind);
  const result: ReconcileResult = { kind: ops.kind, applied: [], removed: [], unchanged: diff.unchanged, failures: [] };
  for (const { desired: d, key, actual } of diff.apply) {
    result.applied.push(key);
    if (options.dryRun) continue;
    try {
      await ops.apply(d, actual);
    } catch (err) {
      result.failures.push({ kind: ops.kind, key, action: 'apply', error: errorText(err) });
    }
  }
  if (!options.prune) return result;
  // Removals last: whatever replaces an old object is in place before the old one goes.
  for (const { actual: a, key } of diff.remove) {
    result.removed.push(key);
    if (options.dryRun) continue;
    try {
      await ops.remove(a);
    } catch (err) {
      result.failures.push({ kind: ops.kind, key, action: 'remove', error: errorText(err) });
    }
  }
  return result;
}

/** True when a result wrote nothing and failed nothing. */
export function isNoop(r: ReconcileResult): boolean {
  return r.applied.length === 0 && r.removed.length === 0 && r.failures.length === 0;
}
