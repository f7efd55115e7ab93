/**
 * The Store contract (src/store/store.ts) as one test suite, registered once per backend (LMDB, etcd) so both
 * are held to exactly the same behaviour.
 *
 * Revisions are only compared relative to each other, and every test works under its own key prefix, so a
 * backend may share one server between tests (etcd) or give each test a fresh store (LMDB).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseNotFoundError, type Store, type WatchEvent } from '../../src/store/store.js';
import { asMap, describe as describeEvent, fold, record, revOf, sleep } from './watch-recorder.js';

/** A Store with etcd-style history compaction (both backends have it; the contract needs it for resets). */
export interface CompactableStore extends Store {
  /** Forgets change history before `revision`. */
  compact(revision: number): Promise<void>;
}

export interface StoreFixture {
  store: CompactableStore;
  /** A key prefix no other test uses. */
  prefix: string;
  /** Another client of the same store (as another process would open it); the suite closes it. */
  second(): Promise<CompactableStore>;
  /** Releases what open() took (the store itself is closed by the suite). */
  dispose(): Promise<void>;
}

export interface StoreFactory {
  open(): Promise<StoreFixture>;
}

const put = (key: string, value: string) => ({ type: 'put', key, value }) as const;
const del = (key: string) => ({ type: 'delete', key }) as const;

export function registerStoreContract(backend: string, factory: StoreFactory): void {
  async function withStore(fn: (store: CompactableStore, p: string, second: () => Promise<CompactableStore>) => Promise<void>): Promise<void> {
    const fx = await factory.open();
    const others: CompactableStore[] = [];
    try {
      await fn(fx.store, fx.prefix, async () => {
        const o = await fx.second();
        others.push(o);
        return o;
      });
    } finally {
      for (const o of others) await o.close();
      await fx.store.close();
      await fx.dispose();
    }
  }

  describe(`Store contract: ${backend}`, () => {
    test('get returns undefined for a missing key and the value with key metadata after a put', () =>
      withStore(async (s, p) => {
        assert.equal(await s.get(`${p}missing`), undefined);
        const r1 = await s.txn([], [put(`${p}a`, '1')]);
        assert.equal(r1.succeeded, true);
        assert.deepEqual(await s.get(`${p}a`), {
          key: `${p}a`,
          value: '1',
          createRevision: r1.revision,
          modRevision: r1.revision,
          version: 1,
        });
        const r2 = await s.txn([], [put(`${p}a`, '2')]);
        assert.deepEqual(await s.get(`${p}a`), {
          key: `${p}a`,
          value: '2',
          createRevision: r1.revision,
          modRevision: r2.revision,
          version: 2,
        });
        // Delete then re-create starts a new life: new createRevision, version 1.
        const r3 = await s.txn([], [del(`${p}a`)]);
        assert.equal(await s.get(`${p}a`), undefined);
        const r4 = await s.txn([], [put(`${p}a`, '3')]);
        assert.ok(r4.revision > r3.revision);
        const kv = await s.get(`${p}a`);
        assert.equal(kv?.createRevision, r4.revision);
        assert.equal(kv?.version, 1);
      }));

    test('the revision moves by exactly one per committed txn, whatever it touched; not on failure or no-op', () =>
      withStore(async (s, p) => {
        const r0 = await s.revision();
        const r1 = await s.txn([], [put(`${p}a`, '1'), put(`${p}b`, '1'), put(`${p}c`, '1')]);
        assert.deepEqual(r1, { succeeded: true, revision: r0 + 1 });
        assert.equal(await s.revision(), r0 + 1);
        const a = await s.get(`${p}a`);
        const c = await s.get(`${p}c`);
        assert.equal(a?.modRevision, r0 + 1);
        assert.equal(c?.modRevision, r0 + 1);
        const failed = await s.txn([{ key: `${p}a`, modRevision: 0 }], [put(`${p}a`, '2')]);
        assert.deepEqual(failed, { succeeded: false, revision: r0 + 1 });
        const noop = await s.txn([], [del(`${p}nothing-here`)]);
        assert.deepEqual(noop, { succeeded: true, revision: r0 + 1 });
        const empty = await s.txn([], []);
        assert.deepEqual(empty, { succeeded: true, revision: r0 + 1 });
        assert.equal(await s.revision(), r0 + 1);
        const r2 = await s.txn([], [put(`${p}a`, '1')]); // same value still makes a revision (like etcd)
        assert.equal(r2.revision, r0 + 2);
      }));

    test('txn compares: must-not-exist, modRevision, value; all must hold; a failed txn applies nothing', () =>
      withStore(async (s, p) => {
        const k = `${p}doc`;
        const created = await s.txn([{ key: k, modRevision: 0 }], [put(k, 'v1')]);
        assert.equal(created.succeeded, true);
        const again = await s.txn([{ key: k, modRevision: 0 }], [put(k, 'other')]);
        assert.equal(again.succeeded, false);
        assert.equal((await s.get(k))?.value, 'v1');

        const stale = await s.txn([{ key: k, modRevision: created.revision - 1 }], [put(k, 'v2')]);
        assert.equal(stale.succeeded, false);
        const cas = await s.txn([{ key: k, modRevision: created.revision }], [put(k, 'v2')]);
        assert.equal(cas.succeeded, true);

        assert.equal((await s.txn([{ key: k, value: 'v1' }], [put(k, 'v3')])).succeeded, false);
        assert.equal((await s.txn([{ key: k, value: 'v2' }], [put(k, 'v3')])).succeeded, true);
        // A value compare on a missing key never holds.
        assert.equal((await s.txn([{ key: `${p}none`, value: '' }], [put(`${p}x`, '1')])).succeeded, false);
        assert.equal(await s.get(`${p}x`), undefined);

        // Several compares: one false → nothing of the txn happens, not even its other ops.
        const before = await s.revision();
        const mixed = await s.txn(
          [
            { key: k, value: 'v3' },
            { key: `${p}registry`, modRevision: 0 },
            { key: k, modRevision: 1 },
          ],
          [put(`${p}registry`, 'r'), del(k)],
        );
        assert.deepEqual(mixed, { succeeded: false, revision: before });
        assert.equal(await s.get(`${p}registry`), undefined);
        assert.equal((await s.get(k))?.value, 'v3');
        const cur = (await s.get(k))!.modRevision;
        const all = await s.txn(
          [
            { key: k, value: 'v3' },
            { key: `${p}registry`, modRevision: 0 },
            { key: k, modRevision: cur },
          ],
          [put(`${p}registry`, 'r'), del(k)],
        );
        assert.deepEqual(all, { succeeded: true, revision: before + 1 });
        assert.equal(await s.get(k), undefined);
        assert.equal((await s.get(`${p}registry`))?.value, 'r');
      }));

    test('deletePrefix removes only keys under the prefix, in one revision', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}acc/1`, 'a'), put(`${p}acc/2`, 'b'), put(`${p}acc/3`, 'c'), put(`${p}acc`, 'x'), put(`${p}accz`, 'y')]);
        const r = await s.txn([], [{ type: 'deletePrefix', prefix: `${p}acc/` }]);
        assert.equal(r.succeeded, true);
        assert.equal(await s.revision(), r.revision);
        const left = await s.list(p);
        assert.deepEqual(left.items.map((kv) => kv.key), [`${p}acc`, `${p}accz`]);
        const noop = await s.txn([], [{ type: 'deletePrefix', prefix: `${p}acc/` }]);
        assert.equal(noop.revision, r.revision);
      }));

    test('list returns the keys under a prefix in key order, at the revision it is consistent with', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}b`, '2'), put(`${p}a`, '1'), put(`${p}c/d`, '3')]);
        const r = await s.txn([], [put(`${p}a`, '1b')]);
        await s.txn([], [put(`${p.slice(0, -1)}~other`, 'not mine')]);
        const l = await s.list(p);
        assert.deepEqual(l.items.map((kv) => [kv.key, kv.value]), [[`${p}a`, '1b'], [`${p}b`, '2'], [`${p}c/d`, '3']]);
        assert.equal(l.items[0]!.modRevision, r.revision);
        assert.equal(l.revision, await s.revision());
        assert.deepEqual((await s.list(`${p}zz`)).items, []);
      }));

    test('rejects malformed input with an error naming the field', () =>
      withStore(async (s, p) => {
        await assert.rejects(s.txn([], [put(`${p}a`, '1'), put(`${p}a`, '2')]), /ops\[1\].*touches/);
        await assert.rejects(s.txn([], [{ type: 'deletePrefix', prefix: `${p}x/` }, put(`${p}x/1`, '2')]), /ops\[1\]/);
        await assert.rejects(s.txn([], [put('', '1')]), /ops\[0\]\.key: must not be empty/);
        await assert.rejects(s.txn([], [put(`${p}bad\nkey`, '1')]), /control character/);
        await assert.rejects(s.txn([{ key: `${p}a`, modRevision: -1 }], []), /compares\[0\]\.modRevision/);
        await assert.rejects(s.txn([], [{ type: 'nope' } as never]), /ops\[0\]\.type/);
        await assert.rejects(s.get(''), /key: must not be empty/);
        assert.equal(await s.get(`${p}a`), undefined);
      }));

    test('listAndWatch: the list as puts, then synced, then every change in revision order', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}b`, '2'), put(`${p}a`, '1')]);
        const head = await s.revision();
        const rec = await record(s, p);
        await rec.synced();
        assert.deepEqual(rec.events.map(describeEvent), [`put ${p}a@${head}`, `put ${p}b@${head}`, `synced@${head}`]);

        const r1 = await s.txn([], [put(`${p}c`, '3'), put(`${p}a`, '1b')]);
        await s.txn([], [put(`${p.slice(0, -1)}~elsewhere`, 'x')]);
        const r2 = await s.txn([], [del(`${p}b`)]);
        const r3 = await s.txn([], [{ type: 'deletePrefix', prefix: p }]);
        await rec.until((ev) => ev.length >= 8, 'the changes');
        await sleep(50); // room for a wrong extra event to show up
        const live = rec.events.slice(3);
        assert.deepEqual(live.map(describeEvent), [
          `put ${p}c@${r1.revision}`,
          `put ${p}a@${r1.revision}`,
          `delete ${p}b@${r2.revision}`,
          `delete ${p}a@${r3.revision}`,
          `delete ${p}c@${r3.revision}`,
        ]);
        const changedA = live[1] as Extract<WatchEvent, { type: 'put' }>;
        assert.equal(changedA.kv.version, 2);
        assert.equal(changedA.kv.createRevision, head);
        assert.equal(changedA.prevKv?.value, '1');
        const deletedB = live[2] as Extract<WatchEvent, { type: 'delete' }>;
        assert.equal(deletedB.prevKv?.value, '2');
        await rec.close();
      }));

    test('listAndWatch awaits the handler: one event at a time, in order', () =>
      withStore(async (s, p) => {
        let inFlight = 0;
        let maxInFlight = 0;
        const rec = await record(s, p, undefined, async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(2);
          inFlight--;
        });
        for (let i = 0; i < 20; i++) await s.txn([], [put(`${p}k${i % 3}`, String(i))]);
        await rec.until((ev) => ev.length >= 21, '20 changes after synced');
        assert.equal(maxInFlight, 1);
        const revs = rec.events.map(revOf).filter((r): r is number => r !== undefined);
        assert.deepEqual(revs, [...revs].sort((a, b) => a - b));
        await rec.close();
      }));

    test('a throwing handler does not stop or skip delivery', () =>
      withStore(async (s, p) => {
        const errors: unknown[] = [];
        const origError = console.error;
        console.error = (...args: unknown[]) => errors.push(args);
        try {
          const rec = await record(s, p, undefined, (e) => {
            if (e.type === 'put' && e.kv.value === 'boom') throw new Error('handler failure');
          });
          await rec.synced();
          await s.txn([], [put(`${p}a`, 'boom')]);
          await s.txn([], [put(`${p}b`, 'fine')]);
          await rec.until((ev) => ev.length >= 3, 'both changes');
          assert.deepEqual(rec.events.slice(1).map((e) => (e.type === 'put' ? e.kv.value : e.type)), ['boom', 'fine']);
          await rec.close();
        } finally {
          console.error = origError;
        }
      }));

    test('resume from a revision: only later changes, then synced at the head', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}a`, '1'), put(`${p}b`, '1')]);
        const mid = await s.revision();
        const base = asMap((await s.list(p)).items);
        const rc = await s.txn([], [put(`${p}c`, '1')]);
        const rd = await s.txn([], [put(`${p}d`, '1')]);
        await s.txn([], [put(`${p.slice(0, -1)}~elsewhere`, 'x')]);
        const head = await s.revision();
        const rec = await record(s, p, { fromRevision: mid });
        await rec.synced();
        assert.deepEqual(rec.events.map(describeEvent), [`put ${p}c@${rc.revision}`, `put ${p}d@${rd.revision}`, `synced@${head}`]);

        // Overwrites and deletes while away: events may be collapsed, but each is newer than the resume point,
        // in revision order, and applying them to the state at `mid` gives the current state.
        const mid2 = head;
        const state2 = asMap((await s.list(p)).items);
        await s.txn([], [put(`${p}a`, '2')]);
        await s.txn([], [put(`${p}a`, '3'), del(`${p}b`)]);
        await s.txn([], [del(`${p}c`)]);
        await s.txn([], [put(`${p}c`, 'again')]);
        const head2 = await s.revision();
        const rec2 = await record(s, p, { fromRevision: mid2 });
        await rec2.synced();
        const changes = rec2.events.slice(0, -1);
        assert.deepEqual(rec2.events.at(-1), { type: 'synced', revision: head2 });
        for (const e of changes) assert.ok(revOf(e)! > mid2, `${describeEvent(e)} is after ${mid2}`);
        const revs = changes.map(revOf) as number[];
        assert.deepEqual(revs, [...revs].sort((a, b) => a - b));
        assert.deepEqual(fold(changes, state2), asMap((await s.list(p)).items));
        assert.ok(base.size === 2);
        await rec.close();
        await rec2.close();
      }));

    test('resume from the current revision: synced at once, then live changes', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}a`, '1')]);
        const head = await s.revision();
        const rec = await record(s, p, { fromRevision: head });
        await rec.synced();
        assert.deepEqual(rec.events, [{ type: 'synced', revision: head }]);
        const r = await s.txn([], [put(`${p}b`, '1')]);
        await rec.until((ev) => ev.length >= 2, 'the live change');
        assert.equal(describeEvent(rec.events[1]!), `put ${p}b@${r.revision}`);
        await rec.close();
      }));

    test('resume from a compacted revision: reset, the full list, synced', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}a`, '1')]);
        const old = await s.revision();
        for (let i = 0; i < 5; i++) await s.txn([], [put(`${p}k${i}`, String(i))]);
        await s.txn([], [del(`${p}a`)]);
        const head = await s.revision();
        await s.compact(head);
        const rec = await record(s, p, { fromRevision: old });
        await rec.synced();
        assert.deepEqual(rec.events[0], { type: 'reset', revision: head });
        assert.deepEqual(rec.events.at(-1), { type: 'synced', revision: head });
        assert.deepEqual(fold(rec.events), asMap((await s.list(p)).items));
        assert.equal(rec.events.length, 7);
        const r = await s.txn([], [put(`${p}z`, '1')]);
        await rec.until((ev) => ev.length >= 8, 'a live change after the reset');
        assert.equal(describeEvent(rec.events[7]!), `put ${p}z@${r.revision}`);
        await rec.close();
      }));

    test('resume from a revision the store never reached (store replaced): reset and a full list', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}a`, '1')]);
        const head = await s.revision();
        const rec = await record(s, p, { fromRevision: head + 1000 });
        await rec.synced();
        assert.deepEqual(rec.events.map(describeEvent), [`reset@${head}`, `put ${p}a@${head}`, `synced@${head}`]);
        await rec.close();
      }));

    test('list-then-watch under concurrent writes: no gap, no duplicate', () =>
      withStore(async (s, p) => {
        let stop = false;
        let writes = 0;
        const writer = (async () => {
          while (!stop) {
            const i = writes++;
            await s.txn([], i % 7 === 6 ? [del(`${p}k${(i * 3) % 20}`)] : [put(`${p}k${i % 20}`, String(i))]);
            if (i % 10 === 0) await sleep(0);
          }
        })();
        const waitWrites = async (count: number): Promise<void> => {
          while (writes < count) await sleep(1);
        };
        await waitWrites(10);
        const rec = await record(s, p);
        await rec.synced();
        await waitWrites(writes + 20);
        stop = true;
        await writer;
        const head = await s.revision();
        await rec.until((ev) => ev.some((e) => revOf(e) === head) || ev.length > 10_000, `the event at ${head}`);
        await sleep(30);
        const seen = new Set<string>();
        let lastRev = 0;
        let afterSync = false;
        for (const e of rec.events) {
          if (e.type === 'synced') {
            afterSync = true;
            continue;
          }
          const id = `${e.type}:${e.type === 'put' ? e.kv.key : e.type === 'delete' ? e.key : ''}@${revOf(e)}`;
          assert.ok(!seen.has(id), `duplicate ${id}`);
          seen.add(id);
          if (afterSync) {
            assert.ok(revOf(e)! >= lastRev, `out of order: ${id} after ${lastRev}`);
            lastRev = revOf(e)!;
          }
        }
        assert.deepEqual(fold(rec.events), asMap((await s.list(p)).items));
        await rec.close();
      }));

    test('the handler first runs after listAndWatch has resolved, and may close its own watch', () =>
      withStore(async (s, p) => {
        await s.txn([], [put(`${p}a`, '1'), put(`${p}b`, '1')]);
        let watch: Awaited<ReturnType<Store['listAndWatch']>> | undefined;
        const seen: string[] = [];
        let resolvedFirst = true;
        watch = await s.listAndWatch(p, async (e) => {
          if (!watch) resolvedFirst = false;
          seen.push(e.type);
          await watch?.close();
        });
        await sleep(50);
        await s.txn([], [put(`${p}c`, '1')]);
        await sleep(50);
        assert.equal(resolvedFirst, true);
        assert.deepEqual(seen, ['put']);
      }));

    test('close stops delivery and can be called twice', () =>
      withStore(async (s, p) => {
        const rec = await record(s, p);
        await rec.synced();
        await rec.close();
        await rec.close();
        await s.txn([], [put(`${p}a`, '1')]);
        await sleep(50);
        assert.deepEqual(rec.events.map((e) => e.type), ['synced']);
      }));

    // Leases: TTLs here are 1 s (etcd's granularity); waits are hang guards, never timing assertions.
    const deleted = (key: string) => (ev: WatchEvent[]) => ev.some((e) => e.type === 'delete' && e.key === key);

    test('lease: a key put under a lease carries its id; revoke deletes it (a delete event) and keeps other keys', () =>
      withStore(async (s, p) => {
        const lease = await s.grantLease(1000);
        assert.match(lease.id, /^[1-9][0-9]*$/);
        assert.ok(lease.ttlMs >= 1000);
        await s.txn([], [{ type: 'put', key: `${p}alive`, value: 'x', lease: lease.id }, put(`${p}plain`, 'y')]);
        assert.equal((await s.get(`${p}alive`))?.lease, lease.id);
        assert.equal((await s.get(`${p}plain`))?.lease, undefined);
        const rec = await record(s, p);
        await rec.synced();
        await lease.revoke();
        await lease.revoke(); // idempotent
        assert.equal(lease.ended, true);
        await rec.until(deleted(`${p}alive`), 'the delete of the leased key');
        assert.equal(await s.get(`${p}alive`), undefined);
        assert.equal((await s.get(`${p}plain`))?.value, 'y');
        await assert.rejects(s.txn([], [{ type: 'put', key: `${p}alive`, value: 'again', lease: lease.id }]), LeaseNotFoundError);
        assert.equal(await s.get(`${p}alive`), undefined, 'a failed leased put writes nothing');
        await rec.close();
      }));

    test('lease: renewed by its holder, it outlives its TTL many times over', () =>
      withStore(async (s, p) => {
        const lease = await s.grantLease(1000);
        let lost: Error | undefined;
        lease.onLost((e) => (lost = e));
        await s.txn([], [{ type: 'put', key: `${p}alive`, value: 'x', lease: lease.id }]);
        const rec = await record(s, p);
        await rec.synced();
        await sleep(3500);
        assert.equal(lost, undefined);
        assert.equal(lease.ended, false);
        assert.equal((await s.get(`${p}alive`))?.value, 'x');
        assert.equal(deleted(`${p}alive`)(rec.events), false);
        // Still usable: a renewed lease takes new keys.
        await s.txn([], [{ type: 'put', key: `${p}alive2`, value: 'x', lease: lease.id }]);
        await lease.revoke();
        await rec.until((ev) => deleted(`${p}alive`)(ev) && deleted(`${p}alive2`)(ev), 'both leased keys deleted');
        await rec.close();
      }));

    test('lease: not renewed (holder gone), it expires — its keys are deleted and every watcher, in any client, is told', () =>
      withStore(async (s, p, second) => {
        const other = await second();
        const lease = await s.grantLease(1000);
        await s.txn([], [{ type: 'put', key: `${p}alive`, value: 'x', lease: lease.id }]);
        const mine = await record(s, p);
        const theirs = await record(other, p);
        await mine.synced();
        await theirs.synced();
        assert.equal(theirs.events.some((e) => e.type === 'put' && e.kv.key === `${p}alive`), true);
        lease.release(); // what a crash does: no revoke, no more renewals
        await theirs.until(deleted(`${p}alive`), 'the other client sees the expiry', 15_000);
        await mine.until(deleted(`${p}alive`), 'the holder sees the expiry', 15_000);
        assert.equal(await other.get(`${p}alive`), undefined);
        assert.equal(await s.get(`${p}alive`), undefined);
        await assert.rejects(s.txn([], [{ type: 'put', key: `${p}alive`, value: 'x', lease: lease.id }]), LeaseNotFoundError);
        await mine.close();
        await theirs.close();
      }));

    test('lease: a put without the lease detaches the key (it survives the lease); closing the store revokes its leases', () =>
      withStore(async (s, p, second) => {
        const lease = await s.grantLease(1000);
        await s.txn([], [{ type: 'put', key: `${p}a`, value: '1', lease: lease.id }, { type: 'put', key: `${p}b`, value: '1', lease: lease.id }]);
        await s.txn([], [put(`${p}a`, '2')]);
        assert.equal((await s.get(`${p}a`))?.lease, undefined);
        await lease.revoke();
        assert.equal((await s.get(`${p}a`))?.value, '2');
        assert.equal(await s.get(`${p}b`), undefined);

        const holder = await second();
        const held = await holder.grantLease(60_000);
        await holder.txn([], [{ type: 'put', key: `${p}held`, value: '1', lease: held.id }]);
        const rec = await record(s, p);
        await rec.synced();
        await holder.close();
        assert.equal(held.ended, true);
        await rec.until(deleted(`${p}held`), 'the key of a closed store\'s lease deleted (long before its 60 s TTL)');
        await rec.close();
      }));

    test('lease: bad TTLs and lease ids are refused, naming the field', () =>
      withStore(async (s, p) => {
        await assert.rejects(s.grantLease(0), /ttlMs/);
        await assert.rejects(s.grantLease(Number.NaN), /ttlMs/);
        await assert.rejects(s.txn([], [{ type: 'put', key: `${p}a`, value: '1', lease: 'abc' }]), /ops\[0\]\.lease/);
        await assert.rejects(s.txn([], [{ type: 'put', key: `${p}a`, value: '1', lease: '999999999' }]), LeaseNotFoundError);
      }));
  });
}
