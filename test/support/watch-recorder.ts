/**
 * Test helpers for watches: record every event of a listAndWatch, wait for a condition on them, and fold them
 * into the state they describe (what an agent's replica would hold).
 */
import type { KeyValue, Store, Watch, WatchEvent, WatchOptions } from '../../src/store/store.js';

export interface Recorder {
  readonly events: WatchEvent[];
  readonly watch: Watch;
  /** Resolves once `pred(events)` holds; rejects after `timeoutMs` (a hang guard, not a timing assertion). */
  until(pred: (events: WatchEvent[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Resolves once a `synced` event has been seen `count` times in all. */
  synced(count?: number): Promise<void>;
  close(): Promise<void>;
}

export async function record(
  store: Store,
  prefix: string,
  options?: WatchOptions,
  onEvent?: (e: WatchEvent) => void | Promise<void>,
): Promise<Recorder> {
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  const watch = await store.listAndWatch(
    prefix,
    async (e) => {
      events.push(e);
      if (onEvent) await onEvent(e);
      for (const w of [...waiters]) w();
    },
    options,
  );
  const until = (pred: (events: WatchEvent[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      if (pred(events)) return resolve();
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${events.length} events: ${summary(events)}`));
      }, timeoutMs);
      const check = (): void => {
        if (!pred(events)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  return {
    events,
    watch,
    until,
    synced: (count = 1) => until((ev) => ev.filter((e) => e.type === 'synced').length >= count, `${count} synced event(s)`),
    close: () => watch.close(),
  };
}

export function summary(events: WatchEvent[]): string {
  const s = events.map(describe).join(', ');
  return s.length > 600 ? s.slice(0, 600) + '…' : s;
}

export function describe(e: WatchEvent): string {
  switch (e.type) {
    case 'put':
      return `put ${e.kv.key}@${e.kv.modRevision}`;
    case 'delete':
      return `delete ${e.key}@${e.modRevision}`;
    default:
      return `${e.type}@${e.revision}`;
  }
}

/** Folds events into the key → KeyValue state they describe (reset forgets everything). */
export function fold(events: WatchEvent[], initial?: Map<string, KeyValue>): Map<string, KeyValue> {
  const state = new Map(initial);
  for (const e of events) {
    if (e.type === 'reset') state.clear();
    else if (e.type === 'put') state.set(e.kv.key, e.kv);
    else if (e.type === 'delete') state.delete(e.key);
  }
  return state;
}

export function asMap(items: KeyValue[]): Map<string, KeyValue> {
  return new Map(items.map((kv) => [kv.key, kv]));
}

/** The revision a change event happened at. */
export function revOf(e: WatchEvent): number | undefined {
  return e.type === 'put' ? e.kv.modRevision : e.type === 'delete' ? e.modRevision : undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
