/**
 * A keyed work queue for reconcilers: each key (an account id, "host", …) is reconciled by one worker call at a
 * time; changes that arrive while a key is running coalesce into one more run after it; failures retry with
 * exponential backoff; every key is re-run periodically (drift repair: someone deleted a route by hand).
 */

export interface SchedulerOptions {
  /** Reconciles one key; throwing means "failed, retry with backoff". */
  worker: (key: string) => Promise<void>;
  /** How many keys may be reconciled at once (kernel work is mostly in the kernel's own time: keep this small). */
  concurrency?: number;
  /** First retry delay after a failure; doubles per consecutive failure up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called after every run of a key, with the error if it failed. */
  onResult?: (key: string, error: unknown | undefined, attempt: number) => void;
}

interface KeyState {
  running: boolean;
  /** Another run is wanted after the current one (or as soon as a slot frees up). */
  dirty: boolean;
  failures: number;
  retryTimer?: NodeJS.Timeout;
}

export class Scheduler {
  private readonly states = new Map<string, KeyState>();
  private readonly queue: string[] = [];
  private running = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: SchedulerOptions) {
    this.concurrency = options.concurrency ?? 2;
    this.baseBackoffMs = options.baseBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  /** Asks for `key` to be reconciled soon. A pending backoff is cut short: new input deserves a fresh try. */
  schedule(key: string): void {
    if (this.stopped) return;
    let s = this.states.get(key);
    if (!s) {
      s = { running: false, dirty: false, failures: 0 };
      this.states.set(key, s);
    }
    if (s.retryTimer) {
      clearTimeout(s.retryTimer);
      s.retryTimer = undefined;
    }
    if (s.dirty) return; // already queued or will re-run after the current run
    s.dirty = true;
    if (!s.running) this.enqueue(key);
  }

  /** Forgets a key (e.g. the account was deleted and its removal reconciled). */
  forget(key: string): void {
    const s = this.states.get(key);
    if (s?.retryTimer) clearTimeout(s.retryTimer);
    if (s && !s.running) this.states.delete(key);
  }

  /** Whether a run of `key` is queued (not started yet) or running now. */
  state(key: string): 'queued' | 'running' | undefined {
    const s = this.states.get(key);
    if (s?.running) return 'running';
    return s?.dirty ? 'queued' : undefined;
  }

  /** Consecutive failures of a key so far (0 when its last run succeeded). */
  failures(key: string): number {
    return this.states.get(key)?.failures ?? 0;
  }

  /** Resolves when nothing is queued or running (retries waiting on a timer do not count). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops scheduling; resolves when the runs in flight have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    for (const s of this.states.values()) if (s.retryTimer) clearTimeout(s.retryTimer);
    await this.idle();
  }

  private enqueue(key: string): void {
    this.queue.push(key);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      const s = this.states.get(key);
      if (!s || s.running || !s.dirty) continue;
      s.dirty = false;
      s.running = true;
      this.running++;
      void this.run(key, s);
    }
    if (this.running === 0 && this.queue.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(key: string, s: KeyState): Promise<void> {
    let error: unknown;
    try {
      await this.options.worker(key);
    } catch (err) {
      error = err ?? new Error('reconcile failed');
    }
    s.running = false;
    this.running--;
    s.failures = error === undefined ? 0 : s.failures + 1;
    this.options.onResult?.(key, error, s.failures);
    if (!this.stopped) {
      if (s.dirty) {
        this.queue.push(key); // changed while running: run again with the newest input
      } else if (error !== undefined) {
        const delay = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** Math.min(s.failures - 1, 20));
        // ±20% jitter so many failing keys do not retry in lockstep.
        const jittered = delay * (0.8 + Math.random() * 0.4);
        s.retryTimer = setTimeout(() => {
          s.retryTimer = undefined;
          this.schedule(key);
        }, jittered);
        s.retryTimer.unref();
      }
    }
    this.pump();
  }
}
