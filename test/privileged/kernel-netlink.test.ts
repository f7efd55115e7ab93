// In-process rtnetlink checked against iproute2 as an independent codec: what we write in-process, `ip -N -j -d`
// reads back with every field; what `ip` writes, our dumps read back as the same canonical objects. A wrong
// attribute type, byte order, multipath layout or table encoding fails here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { addressReplaceOp, listAddresses } from '../../src/kernel/addresses.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { KernelError } from '../../src/kernel/exec.js';
import { ensureVeth, getLink, linkSetOp, listLinks, macFromKey, ownerAlias, readActiveFeatures, readLinkFeatures, setLinkFeatures } from '../../src/kernel/links.js';
import { openNetlinkSockets, releaseAllNetns, releaseNetns } from '../../src/kernel/netlink/socket.js';
import { listNeighbours, neighbourReplaceOp } from '../../src/kernel/neighbours.js';
import { deleteNetnsIfPresent } from '../../src/kernel/netns.js';
import { listRoutes, normalizeRoute, routeReplaceOp, RT_PROTO_OPENTRANSIT, sameRoute, type RouteSpec } from '../../src/kernel/routes.js';
import { listAllRules, normalizeRule, ruleAddOp, sameRule, type RuleSpec } from '../../src/kernel/rules.js';
import { netnsHarness } from '../support/netns.js';

const exec = promisify(execFile);
const h = netnsHarness();
let host = '';
let cust = '';
const hostMac = macFromKey('nl-test/h');
const custMac = macFromKey('nl-test/c');

/** iproute2's own reading (numeric: no name files involved). */
async function ipj(ns: string, ...args: string[]): Promise<any[]> {
  const { stdout } = await exec('ip', ['-N', '-j', '-d', '-n', ns, ...args]);
  return stdout.trim() ? JSON.parse(stdout) : [];
}
async function ip(ns: string, ...args: string[]): Promise<void> {
  await exec('ip', ['-n', ns, ...args]);
}

before(async () => {
  host = await h.create('host');
  cust = await h.create('cust');
  await runIpOps(host, [linkSetOp({ name: 'lo', up: true })]);
  await runIpOps(cust, [linkSetOp({ name: 'lo', up: true })]);
  await ensureVeth({ ns: host, name: 'h0', mac: hostMac, peerNs: cust, peerName: 'c0', peerMac: custMac, mtu: 1400, alias: ownerAlias('nltest') });
});
after(async () => {
  releaseAllNetns();
  await h.cleanup();
});

test('veth written in-process: iproute2 sees a pair across namespaces with MAC, MTU, alias, up', async () => {
  const [a] = await ipj(host, 'link', 'show', 'dev', 'h0');
  const [b] = await ipj(cust, 'link', 'show', 'dev', 'c0');
  assert.equal(a.linkinfo.info_kind, 'veth');
  assert.equal(b.linkinfo.info_kind, 'veth');
  assert.equal(a.address, hostMac);
  assert.equal(b.address, custMac);
  assert.equal(a.mtu, 1400);
  assert.equal(b.mtu, 1400);
  assert.equal(a.ifalias, 'opentransit:nltest');
  assert.equal(b.ifalias, 'opentransit:nltest');
  assert.ok(a.flags.includes('UP') && b.flags.includes('UP'));
  assert.equal(a.link_index, b.ifindex);
  assert.equal(b.link_index, a.ifindex);
});

test('addresses, routes, neighbours, rules written in-process read back by iproute2 field by field', async () => {
  await runIpOps(cust, [
    addressReplaceOp({ dev: 'c0', cidr: '10.251.0.1/31' }),
    addressReplaceOp({ dev: 'c0', cidr: '2001:db8:51::1/64' }),
    addressReplaceOp({ dev: 'lo', cidr: '203.0.113.7/32', label: 'lo:ot' }),
    neighbourReplaceOp({ dev: 'c0', address: '10.251.0.3', lladdr: '02:aa:00:00:00:03' }),
    neighbourReplaceOp({ dev: 'c0', address: 'fe80::3', lladdr: '02:aa:00:00:00:04' }),
    routeReplaceOp({ dst: '203.0.113.0/24', table: 1000, metric: 10, mtu: 1476, nexthops: [{ via: '10.251.0.3', dev: 'c0', onlink: true, weight: 3 }, { via: '10.251.0.5', dev: 'c0', onlink: true, weight: 1 }] }),
    routeReplaceOp({ dst: '2001:db8:77::/48', nexthops: [{ via: 'fe80::3', dev: 'c0' }] }),
    routeReplaceOp({ dst: 'default', table: 70000, type: 'unreachable' }),
    routeReplaceOp({ dst: 'default', family: 6, table: 70000, type: 'unreachable' }),
    ruleAddOp({ priority: 900, fwmark: 0x10, fwmask: 0xff, table: 70000 }),
    ruleAddOp({ priority: 901, fwmark: 0x20, table: 1000, family: 6 }),
  ]);
  const addrs = (await ipj(cust, 'address', 'show')).flatMap((l: any) => l.addr_info.map((a: any) => `${l.ifname} ${a.local}/${a.prefixlen}${a.label && a.label !== l.ifname ? ` ${a.label}` : ''}`));
  for (const want of ['c0 10.251.0.1/31', 'c0 2001:db8:51::1/64', 'lo 203.0.113.7/32 lo:ot']) assert.ok(addrs.includes(want), `${want} in ${addrs}`);

  const neigh = await ipj(cust, 'neigh', 'show', 'dev', 'c0');
  const n4 = neigh.find((n: any) => n.dst === '10.251.0.3');
  const n6 = neigh.find((n: any) => n.dst === 'fe80::3');
  assert.deepEqual([n4?.lladdr, n4?.state, n4?.protocol], ['02:aa:00:00:00:03', ['PERMANENT'], '247']);
  assert.deepEqual([n6?.lladdr, n6?.state, n6?.protocol], ['02:aa:00:00:00:04', ['PERMANENT'], '247']);

  const [mp] = await ipj(cust, 'route', 'show', 'table', '1000');
  assert.equal(mp.dst, '203.0.113.0/24');
  assert.equal(mp.metric, 10);
  assert.equal(mp.protocol, '247');
  assert.deepEqual(mp.metrics, [{ mtu: 1476 }]);
  assert.deepEqual(mp.nexthops.map((n: any) => [n.gateway, n.dev, n.weight, n.flags]), [['10.251.0.3', 'c0', 3, ['onlink']], ['10.251.0.5', 'c0', 1, ['onlink']]]);
  const [v6] = await ipj(cust, '-6', 'route', 'show', '2001:db8:77::/48');
  assert.deepEqual([v6.gateway, v6.dev, v6.protocol, v6.metric], ['fe80::3', 'c0', '247', 1024]);
  const [un4] = await ipj(cust, 'route', 'show', 'table', '70000');
  const [un6] = await ipj(cust, '-6', 'route', 'show', 'table', '70000');
  assert.deepEqual([un4.type, un4.dst, un4.protocol], ['7', 'default', '247']);
  assert.deepEqual([un6.type, un6.dst, un6.protocol], ['7', 'default', '247']);

  const r4 = (await ipj(cust, 'rule', 'show')).find((r: any) => r.priority === 900);
  const r6 = (await ipj(cust, '-6', 'rule', 'show')).find((r: any) => r.priority === 901);
  assert.deepEqual([r4?.fwmark, r4?.fwmask, r4?.table, r4?.protocol], ['0x10', '0xff', '70000', '247']);
  assert.deepEqual([r6?.fwmark, r6?.fwmask, r6?.table, r6?.protocol], ['0x20', undefined, '1000', '247']);
});

test('objects written by iproute2 read back in-process as the same canonical objects', async () => {
  await ip(host, 'address', 'add', '10.252.0.0/31', 'dev', 'h0');
  await ip(host, 'route', 'add', '198.51.100.0/24', 'table', '300', 'metric', '7', 'proto', '247', 'mtu', '1476',
    'nexthop', 'via', '10.252.0.1', 'dev', 'h0', 'onlink', 'weight', '2', 'nexthop', 'via', '10.252.0.9', 'dev', 'h0', 'onlink', 'weight', '5');
  await ip(host, 'route', 'add', 'unreachable', 'default', 'table', '70001', 'proto', '247');
  await ip(host, '-6', 'route', 'add', '2001:db8:99::/48', 'via', 'fe80::9', 'dev', 'h0', 'proto', '247', 'metric', '5');
  await ip(host, 'neigh', 'replace', '10.252.0.1', 'lladdr', '02:bb:00:00:00:01', 'dev', 'h0', 'nud', 'permanent', 'proto', '247');
  await ip(host, 'rule', 'add', 'priority', '800', 'from', '203.0.113.0/24', 'fwmark', '0x30/0xf0', 'lookup', '300', 'proto', '247');
  await ip(host, '-6', 'rule', 'add', 'priority', '801', 'fwmark', '0x31', 'unreachable', 'proto', '247');

  const routes = await listRoutes(host, { protocol: RT_PROTO_OPENTRANSIT });
  const expect: RouteSpec[] = [
    { dst: '198.51.100.0/24', table: 300, metric: 7, mtu: 1476, nexthops: [{ via: '10.252.0.1', dev: 'h0', onlink: true, weight: 2 }, { via: '10.252.0.9', dev: 'h0', onlink: true, weight: 5 }] },
    { dst: 'default', table: 70001, type: 'unreachable' },
    { dst: '2001:db8:99::/48', metric: 5, nexthops: [{ via: 'fe80::9', dev: 'h0' }] },
  ];
  for (const spec of expect) {
    const want = normalizeRoute(spec);
    assert.ok(routes.some((r) => sameRoute(want, r)), `${JSON.stringify(want)} in ${JSON.stringify(routes)}`);
  }
  const neigh = await listNeighbours(host, { protocol: RT_PROTO_OPENTRANSIT });
  assert.deepEqual(neigh.map((n) => [n.dev, n.address, n.lladdr, n.permanent]), [['h0', '10.252.0.1', '02:bb:00:00:00:01', true]]);
  const rules = (await listAllRules(host)).filter((r) => r.protocol === RT_PROTO_OPENTRANSIT);
  const wantRules: RuleSpec[] = [
    { priority: 800, from: '203.0.113.0/24', fwmark: 0x30, fwmask: 0xf0, table: 300 },
    { priority: 801, fwmark: 0x31, action: 'unreachable', family: 6 },
  ];
  for (const spec of wantRules) assert.ok(rules.some((r) => sameRule(normalizeRule(spec), r)), `${JSON.stringify(spec)} in ${JSON.stringify(rules)}`);
  assert.ok((await listAddresses(host, { dev: 'h0' })).some((a) => a.cidr === '10.252.0.0/31' && a.family === 4));
  const links = await listLinks(host);
  const h0 = links.find((l) => l.name === 'h0');
  assert.equal(h0?.owner, 'nltest');
  assert.equal((await getLink(host, 'nosuch0')), undefined);
});

test('GRO set in-process (ethtool netlink) is what `ethtool -k` reports, off and on; other features untouched', async () => {
  const before = await readLinkFeatures(cust, 'c0');
  await setLinkFeatures(cust, 'c0', { gro: false });
  assert.equal((await readLinkFeatures(cust, 'c0')).gro, false);
  await setLinkFeatures(cust, 'c0', { gro: true });
  const after = await readLinkFeatures(cust, 'c0');
  assert.equal(after.gro, true);
  assert.deepEqual({ ...after, gro: before.gro }, before);
});

/** ethtool's legacy names for flags that stand for one kernel feature (its off_flag_def). */
const LEGACY_SINGLE: Record<string, string> = {
  'rx-checksumming': 'rx-checksum',
  'generic-segmentation-offload': 'tx-generic-segmentation',
  'generic-receive-offload': 'rx-gro',
  'large-receive-offload': 'rx-lro',
  'rx-vlan-offload': 'rx-vlan-hw-parse',
  'tx-vlan-offload': 'tx-vlan-hw-insert',
  'ntuple-filters': 'rx-ntuple-filter',
  'receive-hashing': 'rx-hashing',
};

test('features read in-process (ethtool netlink) are what `ethtool --json -k` reports, GRO set by ethtool off and on', async () => {
  const longNames = { gro: 'generic-receive-offload', gso: 'generic-segmentation-offload', tso: 'tcp-segmentation-offload', rx: 'rx-checksumming', tx: 'tx-checksumming', 'rx-gro-list': 'rx-gro-list', 'rx-udp-gro-forwarding': 'rx-udp-gro-forwarding' };
  const ethtool = async () => {
    const { stdout } = await exec('ip', ['netns', 'exec', cust, 'ethtool', '--json', '-k', 'c0']);
    return (JSON.parse(stdout) as Record<string, { active?: boolean; fixed?: boolean | null }>[])[0]!;
  };
  try {
    for (const gro of ['off', 'on', 'off', 'on']) {
      await exec('ip', ['netns', 'exec', cust, 'ethtool', '-K', 'c0', 'gro', gro]);
      const doc = await ethtool();
      const mine = await readLinkFeatures(cust, 'c0');
      assert.equal(mine.gro, gro === 'on');
      assert.deepEqual(mine, Object.fromEntries(Object.entries(longNames).map(([k, long]) => [k, doc[long]?.active === true])));
      // Every kernel feature agrees. ethtool prints a feature alone under its legacy name when it is that flag's only
      // feature; a flag of several features is a group line without `fixed` (ethtool's, not a kernel feature).
      const theirs = Object.entries(doc)
        .filter(([, v]) => typeof v === 'object' && v !== null && typeof v.fixed === 'boolean' && v.active === true)
        .map(([name]) => LEGACY_SINGLE[name] ?? name)
        .sort();
      assert.deepEqual([...(await readActiveFeatures(cust, 'c0'))].sort(), theirs);
    }
  } finally {
    await exec('ip', ['netns', 'exec', cust, 'ethtool', '-K', 'c0', 'gro', 'on']);
  }
  await assert.rejects(readLinkFeatures(cust, 'nosuch0'), (e: KernelError) => e.code === 'ENOENT' && /No such device/.test(e.kernelMessage));
});

test('a socket is per namespace: a namespace re-created under the same name gets a new one; release closes it', async () => {
  const tmp = await h.create('tmp');
  await runIpOps(tmp, [linkSetOp({ name: 'lo', up: true })]);
  assert.ok(openNetlinkSockets().includes(tmp));
  releaseNetns(tmp);
  assert.ok(!openNetlinkSockets().includes(tmp));
  await runIpOps(tmp, [addressReplaceOp({ dev: 'lo', cidr: '192.0.2.9/32' })]);
  // Deleted and re-created behind the cache's back: the cached socket must not talk to the old namespace.
  await deleteNetnsIfPresent(tmp);
  await h.create('tmp');
  assert.deepEqual((await listAddresses(tmp, { dev: 'lo', family: 4 })).map((a) => a.cidr), []);
  releaseNetns(tmp);
});

test('an IPv6 address added with nodad is usable at once as a route source; without it, DAD marks it tentative', async () => {
  // h0 is up with accept_dad at its default (1): DAD would keep a plain address tentative for a second or so.
  await runIpOps(host, [
    addressReplaceOp({ dev: 'h0', cidr: '2001:db8:77::1/64', nodad: true }),
    addressReplaceOp({ dev: 'h0', cidr: '2001:db8:78::1/64' }),
  ]);
  const flagsOf = async (local: string) =>
    ((await ipj(host, 'address', 'show', 'dev', 'h0')).flatMap((l) => l.addr_info ?? []).find((a: { local: string }) => a.local === local) as { tentative?: boolean; nodad?: boolean } | undefined);
  const nodad = await flagsOf('2001:db8:77::1');
  assert.ok(nodad, 'the nodad address is missing');
  assert.equal(nodad.tentative, undefined, 'a nodad address must not be tentative');
  assert.equal(nodad.nodad, true, 'iproute2 must see the nodad flag');
  // DAD takes a retransmit timer (1 s by default): checked right after the add, the plain address is still tentative.
  assert.equal((await flagsOf('2001:db8:78::1'))?.tentative, true, 'without nodad the address should start tentative');
  // The same batch can name it as a route's source right away (this failed with EINVAL on a tentative address).
  await runIpOps(host, [routeReplaceOp({ dst: '2001:db8:99::/48', nexthops: [{ via: '2001:db8:77::2', dev: 'h0' }], src: '2001:db8:77::1' })]);
  assert.throws(() => addressReplaceOp({ dev: 'h0', cidr: '192.0.2.1/32', nodad: true }), /nodad/);
});
