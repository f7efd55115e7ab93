/** Which reconcile keys kernel notifications call for (agent/drift-watch.ts): pure, no kernel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driftKeys, type DriftContext } from '../../src/agent/drift-watch.js';
import type { KernelChange } from '../../src/kernel/netlink/watch.js';
import type { Link } from '../../src/kernel/links.js';
import { RT_PROTO_OPENTRANSIT } from '../../src/kernel/routes.js';

const link = (ifindex: number, name: string): Link => ({ ifindex, name, mac: '', mtu: 1500, up: true, operstate: 'UP' });
const hostLinks = new Map([[2, link(2, 'up0')], [7, link(7, 'otacme')], [8, link(8, 'otbeta')]]);
const ctx: DriftContext = {
  uplink: 'up0',
  table: 1000,
  accountOfHostVeth: (n) => ({ otacme: 'acme', otbeta: 'beta' })[n],
  accountOfNetns: (n) => ({ 'ot-acme': 'acme' })[n],
  accountOfNsid: (id) => ({ 3: 'acme', 4: 'beta' })[id],
  hostLink: (i) => hostLinks.get(i),
};
const c = (o: Partial<KernelChange> & Pick<KernelChange, 'kind'>): KernelChange => ({ nsid: null, deleted: false, own: false, byKernel: false, ...o });
const keys = (...changes: KernelChange[]) => {
  const k = driftKeys(changes, ctx);
  return { accounts: [...k.accounts].sort(), host: k.host, dataplane: k.dataplane, bgp: k.bgp, hostRoutes: k.hostRoutes, linkChecks: k.linkChecks };
};
const none = { accounts: [], host: false, dataplane: false, bgp: false, hostRoutes: false, linkChecks: [] };

test('our own writes and changes to nothing of ours call for nothing', () => {
  assert.deepEqual(keys(c({ kind: 'route', nsid: 3, protocol: RT_PROTO_OPENTRANSIT, own: true, deleted: true })), none);
  assert.deepEqual(keys(c({ kind: 'nft', nsid: 3, own: true })), none);
  // BIRD's routes, the kernel's own routes and addresses, ARP, a tc filter added, an unknown namespace.
  assert.deepEqual(keys(c({ kind: 'route', protocol: 12, table: 254 })), none);
  assert.deepEqual(keys(c({ kind: 'route', nsid: 3, protocol: 2, byKernel: true })), none);
  assert.deepEqual(keys(c({ kind: 'address', nsid: 3, byKernel: true })), none);
  assert.deepEqual(keys(c({ kind: 'neighbour', nsid: 3, byKernel: true, deleted: true })), none);
  assert.deepEqual(keys(c({ kind: 'tc', nsid: 3, ifindex: 2 })), none);
  assert.deepEqual(keys(c({ kind: 'route', nsid: 99, protocol: RT_PROTO_OPENTRANSIT, deleted: true })), none);
  assert.deepEqual(keys(c({ kind: 'rule', nsid: 3 })), none);
  assert.deepEqual(keys(c({ kind: 'netns', name: 'ot-acme', deleted: false })), none);
});

test('drift in a customer namespace reconciles that account', () => {
  for (const change of [
    c({ kind: 'route', nsid: 3, protocol: RT_PROTO_OPENTRANSIT, deleted: true }),
    c({ kind: 'nft', nsid: 3 }),
    c({ kind: 'address', nsid: 3, deleted: true }),
    c({ kind: 'neighbour', nsid: 3, deleted: true }),
    c({ kind: 'tc', nsid: 3, ifindex: 2, deleted: true }),
    c({ kind: 'link', nsid: 3, ifindex: 2, deleted: true }),
    c({ kind: 'netns', name: 'ot-acme', deleted: true }),
  ])
    assert.deepEqual(keys(change).accounts, ['acme'], JSON.stringify(change));
});

test('a link change without a sender is a link check, not a pass', () => {
  assert.deepEqual(keys(c({ kind: 'link', nsid: 4, ifindex: 2, byKernel: true })).linkChecks, [{ account: 'beta', nsid: 4, ifindex: 2 }]);
  assert.deepEqual(keys(c({ kind: 'link', ifindex: 7, byKernel: true, link: link(7, 'otacme') })), { ...none, linkChecks: [{ account: 'acme', nsid: null, ifindex: 7 }] });
  assert.deepEqual(keys(c({ kind: 'link', ifindex: 7, deleted: true, byKernel: true, link: link(7, 'otacme') })).accounts, ['acme']);
});

test('the host namespace: veths and customer-table routes by device, rules and nft to host, the uplink to the data plane', () => {
  assert.deepEqual(keys(c({ kind: 'route', table: 1000, protocol: RT_PROTO_OPENTRANSIT, oifs: [7, 8], deleted: true })), {
    ...none, accounts: ['acme', 'beta'], hostRoutes: true,
  });
  // The unreachable default of the customer table points nowhere: the host's.
  assert.deepEqual(keys(c({ kind: 'route', table: 1000, protocol: RT_PROTO_OPENTRANSIT, oifs: [], deleted: true })), { ...none, host: true, bgp: true, hostRoutes: true });
  assert.deepEqual(keys(c({ kind: 'address', ifindex: 7, deleted: true })), { ...none, accounts: ['acme'], hostRoutes: true });
  assert.deepEqual(keys(c({ kind: 'address', ifindex: 1, deleted: true })), { ...none, host: true, bgp: true, dataplane: true, hostRoutes: true });
  assert.deepEqual(keys(c({ kind: 'rule', deleted: true })), { ...none, host: true, dataplane: true });
  assert.deepEqual(keys(c({ kind: 'nft' })), { ...none, host: true });
  assert.deepEqual(keys(c({ kind: 'tc', ifindex: 2, deleted: true })), { ...none, dataplane: true });
  assert.deepEqual(keys(c({ kind: 'link', ifindex: 2, link: link(2, 'up0'), byKernel: true })), { ...none, dataplane: true });
});
