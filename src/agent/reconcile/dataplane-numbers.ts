/**
 * The small integers this node gives accounts (their data-plane number, 1..1023; 0 = "no account") and mitigation
 * rules (their slot: token bucket and statistics index, 0..4095), kept in the agent's data directory.
 *
 * Why persisted, not derived: a number is part of many map values (ot_prefixes, ot_gre_peers, ot_tunnels) and keys
 * (ot_delivery, the counters), so it must not change while an account lives — an agent restart that renumbered
 * would rewrite every entry (decap would drop in between: prefix says n', delivery still n) and mix counters. A
 * hash of the id cannot be collision-free in 1023 values (birthday bound: ~50% at 38 accounts); assigning the
 * lowest free number and remembering it can. The file is written (fsync, atomic rename) BEFORE a number is used in
 * any map, so a crash never leaves a number in the kernel that the file does not know.
 *
 * If the file is lost while the pins survive, the agent adopts what the maps say (adoptAccountNumbers in
 * reconcile/dataplane.ts) before assigning anything new.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

export class NumberPool {
  private readonly byId = new Map<string, number>();
  private readonly used = new Set<number>();

  constructor(
    readonly name: string,
    readonly min: number,
    readonly max: number,
  ) {}

  get(id: string): number | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The id holding `n`, if any. */
  owner(n: number): string | undefined {
    for (const [id, v] of this.byId) if (v === n) return id;
    return undefined;
  }

  isFree(n: number): boolean {
    return n >= this.min && n <= this.max && !this.used.has(n);
  }

  /** Records `id` → `n` (loading, adopting); refuses a number out of range or taken by another id. */
  set(id: string, n: number): void {
    if (!Number.isInteger(n) || n < this.min || n > this.max) throw new Error(`${this.name} ${n} of ${id} is outside ${this.min}..${this.max}`);
    const current = this.byId.get(id);
    if (current === n) return;
    if (this.used.has(n)) throw new Error(`${this.name} ${n} is already taken by ${this.owner(n)}`);
    if (current !== undefined) this.used.delete(current);
    this.byId.set(id, n);
    this.used.add(n);
  }

  /** The lowest free number for `id` (its own if it has one). Throws when the pool is full. */
  assign(id: string): number {
    const current = this.byId.get(id);
    if (current !== undefined) return current;
    for (let n = this.min; n <= this.max; n++) {
      if (!this.used.has(n)) {
        this.set(id, n);
        return n;
      }
    }
    throw new Error(`no free ${this.name} left (${this.max - this.min + 1} in use)`);
  }

  release(id: string): number | undefined {
    const n = this.byId.get(id);
    if (n === undefined) return undefined;
    this.byId.delete(id);
    this.used.delete(n);
    return n;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  entries(): [string, number][] {
    return [...this.byId.entries()].sort((a, b) => a[1] - b[1]);
  }

  get size(): number {
    return this.byId.size;
  }
}

interface NumbersFile {
  version: 1;
  node: string;
  accounts: Record<string, number>;
  rule_slots: Record<string, number>;
}

export class DataplaneNumbers {
  readonly accounts = new NumberPool('account number', 1, 1023);
  readonly slots = new NumberPool('rule slot', 0, 4095);
  /** Bumped on every change: keys caches of what depends on the numbers. */
  version = 0;
  /** True when the file did not exist: numbers may have to be adopted from the maps. */
  readonly fresh: boolean;

  private constructor(
    readonly path: string,
    readonly node: string,
    file: NumbersFile | undefined,
  ) {
    this.fresh = file === undefined;
    for (const [id, n] of Object.entries(file?.accounts ?? {})) this.accounts.set(id, n);
    for (const [id, n] of Object.entries(file?.rule_slots ?? {})) this.slots.set(id, n);
  }

  /** Reads `path` (absent = empty). A file of another node or an unreadable one is an error, never silently reset. */
  static open(path: string, node: string): DataplaneNumbers {
    if (!existsSync(path)) return new DataplaneNumbers(path, node, undefined);
    let file: NumbersFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as NumbersFile;
    } catch (e) {
      throw new Error(`${path}: not readable JSON (${(e as Error).message}); move it away to renumber from the maps`);
    }
    if (file.version !== 1 || typeof file.accounts !== 'object' || typeof file.rule_slots !== 'object')
      throw new Error(`${path}: not a data-plane numbers file of version 1`);
    if (file.node !== node) throw new Error(`${path}: belongs to node ${file.node}, not ${node}`);
    return new DataplaneNumbers(path, node, file);
  }

  /** Writes the file durably: temp file, fsync, rename (a reader sees the old or the new file, never half). */
  save(): void {
    const file: NumbersFile = {
      version: 1,
      node: this.node,
      accounts: Object.fromEntries(this.accounts.entries()),
      rule_slots: Object.fromEntries(this.slots.entries()),
    };
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, JSON.stringify(file, null, 1) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.version++;
  }
}
