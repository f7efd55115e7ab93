/**
 * A separate writer process for the LMDB cross-process tests (spawned by test/unit/store-lmdb.test.ts).
 *
 *   lmdb-writer <dir> <prefix> <burst> <paced> <intervalMs>
 *
 * Makes `burst` writes back to back (puts over 37 keys, every 10th a delete), then `paced` puts `intervalMs`
 * apart whose values carry the monotonic clock (process.hrtime, shared by all processes of a machine) taken just
 * before the commit, so the watching process can measure commit-to-delivery latency. Prints one JSON line:
 * { first, last } — the revisions of its first and last write.
 */
import { openLmdbStore } from '../../src/store/lmdb.js';

const [dir, prefix, burstArg, pacedArg, intervalArg] = process.argv.slice(2);
if (!dir || !prefix) throw new Error('usage: lmdb-writer <dir> <prefix> <burst> <paced> <intervalMs>');
const burst = Number(burstArg ?? 500);
const paced = Number(pacedArg ?? 0);
const intervalMs = Number(intervalArg ?? 10);

const store = await openLmdbStore(dir, { create: false });
let first = 0;
let last = 0;
for (let i = 0; i < burst; i++) {
  const key = `${prefix}k${i % 37}`;
  const r = await store.txn([], i % 10 === 9 ? [{ type: 'delete', key: `${prefix}k${(i * 7) % 37}` }] : [{ type: 'put', key, value: JSON.stringify({ i }) }]);
  if (!first) first = r.revision;
  last = r.revision;
}
for (let i = 0; i < paced; i++) {
  await new Promise((r) => setTimeout(r, intervalMs));
  const t = process.hrtime.bigint().toString();
  const r = await store.txn([], [{ type: 'put', key: `${prefix}paced`, value: JSON.stringify({ i, t }) }]);
  if (!first) first = r.revision;
  last = r.revision;
}
await store.close();
process.stdout.write(JSON.stringify({ first, last }) + '\n');
