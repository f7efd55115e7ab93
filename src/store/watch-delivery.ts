/**
 * One-at-a-time delivery of watch events to a handler, shared by the store backends.
 *
 * The Store contract says a watch handler's promise is awaited before the next event and that a throwing handler
 * never makes the store skip an event: the error is reported and delivery goes on.
 */
import type { WatchEvent, WatchHandler } from './store.js';

/** Where a store reports errors it cannot throw to anyone (handler failures, background reconnects). */
export type StoreErrorReporter = (err: unknown, context: string) => void;

export const defaultErrorReporter: StoreErrorReporter = (err, context) => {
  console.error(`opentransit store: ${context}:`, err);
};

/** Calls the handler and awaits it; a throw or rejection is reported, never propagated. */
export async function deliver(handler: WatchHandler, event: WatchEvent, report: StoreErrorReporter): Promise<void> {
  try {
    await handler(event);
  } catch (err) {
    report(err, `watch handler failed on a ${event.type} event`);
  }
}

/**
 * Runs async tasks strictly one after another, in submission order. Used where events arrive from a callback
 * (etcd's stream) faster than the handler consumes them: each arrival becomes a task, so order is kept and the
 * handler never runs twice at once.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(private readonly report: StoreErrorReporter) {}

  push(task: () => Promise<void>): void {
    this.pending++;
    this.tail = this.tail.then(task).then(
      () => {
        this.pending--;
      },
      (err: unknown) => {
        this.pending--;
        this.report(err, 'watch task failed');
      },
    );
  }

  /** Resolves when every task pushed so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }

  get size(): number {
    return this.pending;
  }
}
