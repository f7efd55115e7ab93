/**
 * Input checks shared by every Store backend, so that LMDB and etcd accept and reject exactly the same
 * transactions (a caller tested against one must not be surprised by the other).
 */
import type { Compare, Op } from './store.js';

/** Raised for a malformed transaction; the message names the field and the reason. */
export class StoreInputError extends Error {
  override name = 'StoreInputError';
}

/** LMDB's key limit is ~1978 bytes; keep well under it (and under etcd's request limits). */
export const MAX_KEY_BYTES = 1024;

/**
 * Keys are UTF-8 strings without control characters: LMDB's ordered-binary key encoding gives C0 characters a
 * special meaning, and no key in src/model/keys.ts needs them.
 */
export function checkKey(key: unknown, field: string): asserts key is string {
  if (typeof key !== 'string') throw new StoreInputError(`${field}: must be a string, got ${typeof key}`);
  if (key.length === 0) throw new StoreInputError(`${field}: must not be empty`);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new StoreInputError(`${field}: longer than ${MAX_KEY_BYTES} bytes`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new StoreInputError(`${field}: contains a control character`);
}

/** A prefix may be empty (everything); otherwise the same rules as a key. */
export function checkPrefix(prefix: unknown, field: string): asserts prefix is string {
  if (prefix === '') return;
  checkKey(prefix, field);
}

/**
 * Validates a transaction. Like etcd (ErrDuplicateKey), a transaction may not touch the same key twice — two
 * writes of one key, or a put/delete inside a range the same transaction deletes — because the outcome would
 * depend on op order in one backend and be rejected by the other.
 */
export function checkTxn(compares: Compare[], ops: Op[]): void {
  if (!Array.isArray(compares)) throw new StoreInputError('compares: must be an array');
  if (!Array.isArray(ops)) throw new StoreInputError('ops: must be an array');
  compares.forEach((c, i) => {
    checkKey(c?.key, `compares[${i}].key`);
    if ('modRevision' in c) {
      if (!Number.isSafeInteger(c.modRevision) || c.modRevision < 0) {
        throw new StoreInputError(`compares[${i}].modRevision: must be an integer >= 0`);
      }
    } else if ('value' in c) {
      if (typeof c.value !== 'string') throw new StoreInputError(`compares[${i}].value: must be a string`);
    } else {
      throw new StoreInputError(`compares[${i}]: needs modRevision or value`);
    }
  });
  const written = new Set<string>();
  const deletedPrefixes: string[] = [];
  ops.forEach((op, i) => {
    switch (op?.type) {
      case 'put':
        checkKey(op.key, `ops[${i}].key`);
        if (typeof op.value !== 'string') throw new StoreInputError(`ops[${i}].value: must be a string`);
        if (op.lease !== undefined) checkLeaseId(op.lease, `ops[${i}].lease`);
        break;
      case 'delete':
        checkKey(op.key, `ops[${i}].key`);
        break;
      case 'deletePrefix':
        checkPrefix(op.prefix, `ops[${i}].prefix`);
        break;
      default:
        throw new StoreInputError(`ops[${i}].type: must be put, delete or deletePrefix`);
    }
  });
  ops.forEach((op, i) => {
    if (op.type === 'deletePrefix') {
      for (const k of written) {
        if (k.startsWith(op.prefix)) throw duplicate(i, k);
      }
      for (const p of deletedPrefixes) {
        if (p.startsWith(op.prefix) || op.prefix.startsWith(p)) throw duplicate(i, op.prefix);
      }
      deletedPrefixes.push(op.prefix);
    } else {
      if (written.has(op.key) || deletedPrefixes.some((p) => op.key.startsWith(p))) throw duplicate(i, op.key);
      written.add(op.key);
    }
  });
}

/** Lease ids are etcd's: a positive int64, as decimal text (LMDB hands out the same shape). */
export function checkLeaseId(id: unknown, field: string): asserts id is string {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,18}$/.test(id)) throw new StoreInputError(`${field}: must be a lease id (decimal text), got ${JSON.stringify(id)}`);
}

/** A lease TTL: at least 1 ms, at most a day (a liveness lease longer than that is a mistake). */
export function checkLeaseTtl(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1 || ttlMs > 86_400_000) {
    throw new StoreInputError(`ttlMs: must be a number of milliseconds from 1 to 86400000, got ${String(ttlMs)}`);
  }
}

function duplicate(index: number, key: string): StoreInputError {
  return new StoreInputError(`ops[${index}]: touches ${JSON.stringify(key)}, which an earlier op of the same txn already touches`);
}

/**
 * The etcd range end for a prefix: the prefix with its last byte incremented (dropping trailing 0xff bytes);
 * the empty prefix means "every key" (etcd: key "\0", range_end "\0").
 */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
