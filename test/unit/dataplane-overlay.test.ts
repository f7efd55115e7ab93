/**
 * OverlayMap (agent/reconcile/dataplane-effects.ts): the map a plan reads and "writes" — the pinned map plus the
 * writes recorded so far, or an empty map (zeros for an array) on a node where nothing is loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAPS, type LpmKey } from '../../src/kernel/bpf/abi.generated.js';
import { cidrOfLpmKey, lpmKey } from '../../src/kernel/bpf/dataplane.js';
import { OverlayMap, type MapAccess } from '../../src/agent/reconcile/dataplane-effects.js';

/** A map held in memory, standing for a pinned one (what the overlay reads through). */
function memoryMap<K, V>(spec: OverlayMap<K, V>['spec'], entries: [K, V][]): MapAccess<K, V> {
  const m = new Map(entries.map(([k, v]) => [spec.key.encode(k).toString('hex'), [k, v] as [K, V]]));
  const fail = () => {
    throw new Error('the base map must never be written');
  };
  return {
    spec,
    get: (k) => m.get(spec.key.encode(k).toString('hex'))?.[1],
    getPerCpu: () => undefined,
    set: fail,
    setMany: fail,
    delete: fail,
    entries: () => [...m.values()],
  };
}

test('without a pinned map: empty, and what the plan writes reads back', () => {
  const o = new OverlayMap(MAPS.ot_prefixes, undefined);
  assert.equal(o.get(lpmKey('203.0.113.0/24')), undefined);
  assert.deepEqual(o.entries(), []);
  o.set(lpmKey('203.0.113.0/24'), 1);
  assert.equal(o.get(lpmKey('203.0.113.0/24')), 1);
  assert.deepEqual(o.entries().map(([k, v]) => [cidrOfLpmKey(k), v]), [['203.0.113.0/24', 1]]);
  assert.equal(o.delete(lpmKey('203.0.113.0/24')), true);
  assert.equal(o.delete(lpmKey('203.0.113.0/24')), false);
  assert.deepEqual(o.entries(), []);
});

test('an array map without a pinned map reads zeros, as a fresh load makes it', () => {
  const o = new OverlayMap(MAPS.ot_bl4_slash16, undefined);
  assert.equal(o.get(7), 0);
  o.setMany([[7, 3]]);
  assert.equal(o.get(7), 3);
});

test('over a pinned map: reads through, writes and deletes stay in the overlay', () => {
  const base = memoryMap<LpmKey, number>(MAPS.ot_prefixes, [
    [lpmKey('203.0.113.0/24'), 1],
    [lpmKey('198.51.100.0/24'), 2],
  ]);
  const o = new OverlayMap(MAPS.ot_prefixes, base);
  assert.equal(o.get(lpmKey('198.51.100.0/24')), 2);
  o.set(lpmKey('198.51.100.0/24'), 5);
  assert.equal(o.delete(lpmKey('203.0.113.0/24')), true);
  o.set(lpmKey('198.18.0.0/24'), 3);
  const seen = Object.fromEntries(o.entries().map(([k, v]) => [cidrOfLpmKey(k), v]));
  assert.deepEqual(seen, { '198.51.100.0/24': 5, '198.18.0.0/24': 3 });
  assert.equal(base.get(lpmKey('198.51.100.0/24')), 2, 'the pinned map is untouched');
});
