/**
 * One round of the LMDB "writer SIGKILLed, then close" regression (spawned by test/unit/store-lmdb-kill.test.ts).
 *
 *   lmdb-kill-close <dir> <extraDelayMs>
 *
 * Creates the store in `dir` and writes once (so this process's close has writes to flush, as the API's has),
 * starts lmdb-writer (a second process writing back to back), waits until the writer's commits show up, lets it
 * run `extraDelayMs` more, SIGKILLs it, then closes its own store without writing again and prints "closed".
 * With lmdb-js's overlappingSync, a kill between the writer's meta-page write and its txnid update left close()
 * spinning in mdb_env_sync forever, so the caller bounds how long this process may take.
 */
import { openLmdbStore } from '../../src/store/lmdb.js';
import { spawnSupportScript } from './node-script.js';

const [dir, delayArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: lmdb-kill-close <dir> <extraDelayMs>');
const store = await openLmdbStore(dir);
const mine = (await store.txn([], [{ type: 'put', key: '/closer', value: 'x' }])).revision;
const writer = spawnSupportScript('lmdb-writer', [dir, '/w/', '100000000', '0', '0']);
writer.stdout?.resume();
const gone = new Promise((r) => writer.once('exit', r));
// The writer's commits, read from our side (reads never take the write lock, so they repair nothing).
while ((await store.revision()) < mine + 20) {
  if (writer.exitCode !== null) throw new Error(`lmdb-writer exited early (${writer.exitCode})`);
  await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, Number(delayArg ?? 0)));
writer.kill('SIGKILL');
await gone;
await store.close();
process.stdout.write('closed\n');
