/**
 * Cross-process change notification for the LMDB store.
 *
 * LMDB itself never tells a reader that another process committed. Writers therefore overwrite a small file
 * (`DIR/notify`, the new revision as text) right after each commit, and watchers follow that file with fs.watch
 * (inotify on Linux): a write there wakes every watching process within a millisecond or so. inotify can miss
 * events in rare cases (the file replaced, the watch failing), so a slow poll also wakes watchers; they compare
 * the store revision with what they delivered, so a spurious or duplicated wake-up costs one cheap read.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { StoreErrorReporter } from './watch-delivery.js';

export const NOTIFY_FILE = 'notify';

export class ChangeNotifier {
  private readonly file: string;
  private watcher: fs.FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<() => void>();
  private closed = false;

  constructor(
    dir: string,
    private readonly pollIntervalMs: number,
    private readonly report: StoreErrorReporter,
  ) {
    this.file = path.join(dir, NOTIFY_FILE);
  }

  /** Tells every watcher (in any process) that a commit happened. Called by writers after each commit. */
  signal(revision: number): void {
    if (this.closed) return;
    try {
      // Opened per signal (a few µs) rather than kept open: if the file is ever removed and re-created, a
      // kept descriptor would go on writing to the dead inode that nobody watches.
      // Fixed width so the file never needs truncating: one pwrite, one inotify IN_MODIFY.
      const text = Buffer.from(String(revision).padStart(20, '0') + '\n');
      const fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      try {
        fs.writeSync(fd, text, 0, text.length, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      this.report(err, `cannot write ${this.file}; other processes will see this commit at their next poll`);
    }
    // Watchers in this process need not wait for inotify.
    this.wakeAll();
  }

  /** Calls `onWake` (possibly spuriously) whenever the store may have changed. Returns the unsubscribe function. */
  subscribe(onWake: () => void): () => void {
    this.subscribers.add(onWake);
    this.start();
    return () => {
      this.subscribers.delete(onWake);
      if (this.subscribers.size === 0) this.stop();
    };
  }

  close(): void {
    this.closed = true;
    this.subscribers.clear();
    this.stop();
  }

  private wakeAll(): void {
    for (const s of [...this.subscribers]) s();
  }

  private start(): void {
    if (this.closed) return;
    this.startWatcher();
    if (!this.poller) {
      this.poller = setInterval(() => {
        // The poll also repairs a watcher that failed (e.g. the file was removed and re-created).
        if (!this.watcher) this.startWatcher();
        this.wakeAll();
      }, this.pollIntervalMs);
      // The fs watcher keeps the process alive while someone watches; the poll alone never should.
      this.poller.unref();
    }
  }

  private startWatcher(): void {
    if (this.watcher || this.closed) return;
    try {
      if (!fs.existsSync(this.file)) fs.closeSync(fs.openSync(this.file, 'a'));
      const w = fs.watch(this.file, { persistent: true }, (eventType) => {
        // 'rename': the file was removed or replaced, so this inotify watch now follows a dead inode. Watch
        // the new file (writers re-create it) and wake up in case a commit happened in between.
        if (eventType === 'rename') {
          w.close();
          if (this.watcher === w) this.watcher = undefined;
          this.startWatcher();
        }
        this.wakeAll();
      });
      w.on('error', (err) => {
        this.report(err, `watching ${this.file} failed; falling back to polling until it can be watched again`);
        w.close();
        if (this.watcher === w) this.watcher = undefined;
      });
      this.watcher = w;
    } catch (err) {
      this.report(err, `cannot watch ${this.file}; polling every ${this.pollIntervalMs} ms instead`);
    }
  }

  private stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }
}
