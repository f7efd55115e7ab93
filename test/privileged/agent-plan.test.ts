/**
 * `opentransit plan`: what the agent would change, read from the real kernel, changing nothing — namespaces, nft,
 * routes, the eBPF data plane (loads, attachments, map entries) and BGP (BIRD config, announcements).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { CUSTOMER_VETH, customerNetns, NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { formatPlan, planNode, type AgentCliOptions, type PlanResult } from '../../src/agent/main.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { run } from '../../src/kernel/exec.js';
import { ensureVeth, readLinkFeatures } from '../../src/kernel/links.js';
import { inNetns, listNetns } from '../../src/kernel/netns.js';
import { BPFFS, ifIndex, queryXdp, unpin } from '../../src/kernel/bpf/index.js';
import { dataplaneExists, ipv4Be32, openDataplane } from '../../src/kernel/bpf/dataplane.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { keys } from '../../src/model/keys.js';

const harness = netnsHarness();
// The data plane's pins live under a bpffs directory of this run only (removed at the end).
const pinBase = `${BPFFS}/ot-test-plan-${process.pid}`;
const NODE = 'plan';
const ACME = '203.0.113.0/24';
const ENDPOINT = '192.0.2.10/32';
let api: ApiFixture;
let node: NodeConfig;
let cli: AgentCliOptions;
let dataDir = '';
let accountId = '';

const acmeConfig = (o: { extraPrefix?: string; customerEndpoint?: string } = {}) => ({
  account: 'acme',
  prefixes: [{ cidr: ACME, advertised: true }, ...(o.extraPrefix ? [{ cidr: o.extraPrefix, advertised: true }] : [])],
  gre_tunnels: [{ name: 'acme-chi', customer_gre_endpoint: o.customerEndpoint ?? '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
  routes: [{ prefix: ACME, nexthop: '10.200.0.1', priority: 100 }],
  firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 21' }] },
});

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-agent-plan-'));
  const host = await harness.create('host');
  const peer = await harness.create('uplink');
  await ensureVeth({ ns: host, name: 'up0', mac: '02:00:00:00:02:01', peerNs: peer, peerName: 'eth0', peerMac: '02:00:00:00:02:02' });
  // The uplink's address is the BGP router id; the peer never answers (its session stays down: nothing leaves).
  await runIpOps(host, [{ args: ['address', 'add', '100.64.0.1/30', 'dev', 'up0'] }, { args: ['link', 'set', 'up0', 'up'] }]);
  node = { ...NODE_DEFAULTS, nodeId: NODE, hostNetns: host, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  cli = { nodeId: NODE, hostNetns: host, uplink: 'up0', store: `lmdb:${api.dir}`, netnsPrefix: node.netnsPrefix, dataDir, bpfPinBase: pinBase };
  const settings = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 64512, peers: [{ address: '100.64.0.2', asn: 65000 }] } } });
  assert.equal(settings.statusCode, 200, settings.body);
  const acme = await api.createAccount('acme');
  accountId = acme.id;
  const res = await api.call('PUT', `/v1/accounts/${acme.id}/config`, { body: acmeConfig() });
  assert.equal(res.statusCode, 200, res.body);
});

after(async () => {
  // The BIRD the agent left running (stop({bgp: 'leave'})): ended by its pid file.
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'bird', 'edge.pid'), 'utf8').trim());
    if (pid > 1) process.kill(pid, 'SIGKILL');
  } catch {
    // Not started.
  }
  await api?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  unpin(pinBase);
  assert.equal(fs.existsSync(pinBase), false, 'no pins left');
  await harness.cleanup();
});

const scope = (p: PlanResult, name: string) => p.changes.find((c) => c.scope === name) ?? { scope: name, changes: [], errors: [] };
const bpfLines = (p: PlanResult) => p.changes.flatMap((c) => c.changes.filter((l) => l.startsWith('bpf: ')).map((l) => `${c.scope}: ${l}`)).sort();

/** Everything the plan must not touch: map contents, pins, attachments, the data dir's files (with mtimes). */
function snapshot(): unknown {
  // Pins by name and inode (a re-pin makes a new inode); files of the data dir with mtime and content.
  const files = (dir: string, content: boolean): string[] =>
    fs.existsSync(dir)
      ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => {
          const p = path.join(e.parentPath, e.name);
          const st = fs.lstatSync(p);
          return `${p} ${st.ino} ${content && st.isFile() ? `${st.mtimeMs} ${fs.readFileSync(p).toString('hex')}` : ''}`;
        }).sort()
      : [];
  const maps: Record<string, string[]> = {};
  if (dataplaneExists({ node: NODE, base: pinBase })) {
    const dp = openDataplane({ node: NODE, base: pinBase });
    try {
      for (const [name, m] of Object.entries(dp.maps)) {
        if (name === 'samples' || name === 'counters' || name === 'ruleStats' || name === 'rlState') continue;
        maps[name] = (m as { map: { dump(): [Buffer, Buffer][] } }).map.dump().map(([k, v]) => `${k.toString('hex')}=${v.toString('hex')}`).sort();
      }
    } finally {
      dp.close();
    }
  }
  return { pins: files(pinBase, false), data: files(dataDir, true).filter((f) => !/\/replica\/|local-status|edge\.log/.test(f)), maps, xdp: queryXdp({ ifindex: ifIndex('up0', node.hostNetns), netns: node.hostNetns }) };
}

test('on a fresh node the plan lists the BPF load, attachments, every map entry and the BGP announcements, and touches nothing', async () => {
  const before = snapshot();
  const plan = await planNode(cli);
  assert.deepEqual(snapshot(), before, 'a plan changes nothing');
  assert.deepEqual(await listNetns(node.netnsPrefix), [], 'a plan creates no namespace');
  assert.equal(fs.existsSync(pinBase), false, 'nothing pinned');
  assert.deepEqual(fs.readdirSync(dataDir), [], 'nothing written to the data dir');

  const acme = scope(plan, 'account acme');
  assert.ok(acme.changes.some((c) => c.startsWith('create netns')), JSON.stringify(acme));
  assert.ok(scope(plan, 'host').changes.some((c) => /create nft table inet opentransit/.test(c)));
  const dp = scope(plan, 'dataplane');
  assert.deepEqual(dp.errors, []);
  assert.match(dp.changes.join('\n'), /^bpf: load ot_xdp_edge \(to be loaded\)(?:, | and )ot_tc_gre \(to be loaded\).*, pinned under .*ot-test-plan-\d+\/plan \(creating its maps\)$/m);
  assert.match(dp.changes.join('\n'), /: attach XDP ot_xdp_edge \(to be loaded, native\) on up0$/m);
  assert.match(dp.changes.join('\n'), /^data dir: account \w+ gets data-plane number 1 /m);
  assert.ok(dp.changes.includes('bpf: add ot_anycast 192.0.2.10'), dp.changes.join('\n'));
  assert.deepEqual(acme.errors, []);
  const text = acme.changes.join('\n');
  assert.match(text, /: attach tc egress ot_tc_gre \(to be loaded\) on edge0 \(veth to be created\)$/m);
  assert.match(text, /^bpf: add ot_prefixes 203\.0\.113\.0\/24 → 1 \(prefix\)$/m);
  assert.match(text, /^bpf: add ot_prefixes 10\.200\.0\.0\/31 → 1 \(tunnel acme-chi\)$/m);
  assert.match(text, /^bpf: add ot_delivery 1 → ot\w+ \(veth to be created\), dmac [0-9a-f:]+, smac [0-9a-f:]+$/m);
  assert.match(text, /^bpf: add ot_tunnels acme-chi \([0-9a-f:]+ in the netns to be created\): 192\.0\.2\.10 → 198\.51\.100\.2, account 1, ttl \d+/m);
  assert.match(text, /^bpf: add ot_gre_peers 198\.51\.100\.2 → 1$/m);

  assert.deepEqual(plan.changes.flatMap((c) => c.changes.filter((l) => /^bpf: delete/.test(l))), [], 'a fresh node has nothing to delete');

  const bgp = scope(plan, 'bgp');
  assert.deepEqual(bgp.errors, []);
  assert.ok(bgp.changes.includes('host: add anycast endpoint 192.0.2.10/32 on lo'.replace('host', node.hostNetns)), bgp.changes.join('\n'));
  assert.match(bgp.changes.join('\n'), /^start BIRD in .*, writing .*\/bird\/edge\.conf \(1 BGP session\(s\)\)$/m);
  assert.ok(bgp.changes.includes('BIRD: add protocol peer_100_64_0_2'), bgp.changes.join('\n'));
  assert.deepEqual(plan.bgp?.announce, [ACME, ENDPOINT]);
  assert.deepEqual(plan.bgp?.withdraw, []);
  assert.equal(plan.bgp?.bird.action, 'start');
  assert.ok(plan.bgp!.bird.diff.includes(`+   route ${ACME} blackhole;`), plan.bgp!.bird.diff.join('\n'));
  // JSON keeps its shape (node_id, revision, changes[]) and adds bgp.
  const json = JSON.parse(JSON.stringify(plan)) as PlanResult;
  assert.deepEqual(Object.keys(json), ['node_id', 'revision', 'changes', 'bgp']);
  const out = formatPlan(plan);
  assert.match(out, /^account acme:\n {2}~ create netns/m);
  assert.match(out, /^bgp:\n(?: {2}~ .*\n)*? {2}~ announce 203\.0\.113\.0\/24$/m);
});

test('after the agent converged the plan is empty and changes nothing; map entries deleted by hand, GRO off on edge0 and route drift show up', async () => {
  const agent = new Agent({ node, store: api.store, dataDir, log: () => {}, bpf: { pinBase }, heartbeatMs: 150 });
  await agent.start();
  await agent.firstSync;
  let bgpAnnounced: string[] = [];
  for (let i = 0; i < 300; i++) {
    await agent.idle();
    const st = agent.snapshotStatus();
    bgpAnnounced = st.bgp?.announced ?? [];
    if (st.accounts[accountId]?.state === 'ok' && st.dataplane?.state === 'ok' && bgpAnnounced.length === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(bgpAnnounced, [ACME, ENDPOINT]);
  // The heartbeat: with nothing to change, the status is still republished (liveness for readers).
  const reported = async () => JSON.parse((await api.store.get(keys.nodeStatus(NODE)))!.value).updated_at as string;
  const first = await reported();
  await new Promise((r) => setTimeout(r, 500));
  assert.notEqual(await reported(), first, 'the status is republished every heartbeat');
  // 'leave': BIRD keeps running as after an agent crash; the plan compares with it.
  await agent.stop({ bgp: 'leave' });

  const before = snapshot();
  const clean = await planNode(cli);
  assert.match(formatPlan(clean), /no changes/, formatPlan(clean));
  assert.deepEqual(clean.bgp?.announced, [ACME, ENDPOINT]);
  assert.equal(clean.bgp?.bird.action, 'none');
  assert.deepEqual(snapshot(), before, 'a plan changes nothing');

  // A map entry deleted by hand: the plan restores exactly it.
  const dp = openDataplane({ node: NODE, base: pinBase });
  try {
    const held = dp.maps.grePeers.get(ipv4Be32('198.51.100.2'))!;
    assert.ok(dp.maps.grePeers.delete(ipv4Be32('198.51.100.2')));
    const drift = await planNode(cli);
    assert.deepEqual(bpfLines(drift), ['account acme: bpf: add ot_gre_peers 198.51.100.2 → 1']);
    dp.maps.grePeers.set(ipv4Be32('198.51.100.2'), held);
  } finally {
    dp.close();
  }

  // GRO turned off by hand on the customer end of the veth: the plan turns it on, and leaves it off.
  const ns = customerNetns(node, accountId);
  await run(inNetns(ns, ['ethtool', '-K', CUSTOMER_VETH, 'gro', 'off']));
  const groDrift = await planNode(cli);
  assert.deepEqual(scope(groDrift, 'account acme').changes, [`${ns}: set gro on ${CUSTOMER_VETH}`]);
  assert.equal((await readLinkFeatures(ns, CUSTOMER_VETH)).gro, false, 'a plan changes nothing');
  await run(inNetns(ns, ['ethtool', '-K', CUSTOMER_VETH, 'gro', 'on']));

  await runIpOps(customerNetns(node, accountId), [{ args: ['route', 'delete', ACME, 'metric', '100'] }]);
  const drift = await planNode(cli);
  const acme = scope(drift, 'account acme');
  assert.deepEqual(acme.changes.filter((c) => /route/.test(c)).length, 1, JSON.stringify(acme.changes));
  assert.match(acme.changes.join('\n'), /add route 4\|254\|203\.0\.113\.0\/24\|100/);
});

test('after a config change the plan lists exactly the map entries and announcements that would change', async () => {
  const res = await api.call('PUT', `/v1/accounts/${accountId}/config`, { body: acmeConfig({ extraPrefix: '198.18.0.0/24', customerEndpoint: '198.51.100.3' }) });
  assert.equal(res.statusCode, 200, res.body);
  const before = snapshot();
  const plan = await planNode(cli);
  assert.deepEqual(snapshot(), before, 'a plan changes nothing');
  const lines = bpfLines(plan);
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.equal(lines[0], 'account acme: bpf: add ot_gre_peers 198.51.100.3 → 1');
  assert.equal(lines[1], 'account acme: bpf: add ot_prefixes 198.18.0.0/24 → 1 (prefix)');
  assert.match(lines[2]!, /^account acme: bpf: update ot_tunnels acme-chi \([0-9a-f:]+\): 192\.0\.2\.10 → 198\.51\.100\.3, account 1/);
  assert.equal(lines[3], 'dataplane: bpf: delete ot_gre_peers 198.51.100.2');
  // The new prefix is announced once its account has reconciled; nothing is withdrawn.
  assert.deepEqual(plan.bgp?.announce, ['198.18.0.0/24']);
  assert.deepEqual(plan.bgp?.withdraw, []);
  assert.equal(plan.bgp?.bird.action, 'configure');
  assert.deepEqual(plan.bgp?.bird.protocols_added, []);
  assert.ok(scope(plan, 'bgp').changes.includes('announce 198.18.0.0/24'));

  // Not advertised any more: withdrawn (and the BIRD config says so).
  const off = { ...acmeConfig(), prefixes: [{ cidr: ACME, advertised: false }] };
  assert.equal((await api.call('PUT', `/v1/accounts/${accountId}/config`, { body: off })).statusCode, 200);
  const withdraw = await planNode(cli);
  assert.deepEqual(withdraw.bgp?.withdraw, [ACME]);
  assert.deepEqual(withdraw.bgp?.announce, []);
  assert.ok(withdraw.bgp!.bird.diff.includes(`-   route ${ACME} blackhole;`), withdraw.bgp!.bird.diff.join('\n'));
  assert.match(formatPlan(withdraw), /^ {2}~ withdraw 203\.0\.113\.0\/24$/m);
});

test('a mitigation rule that does not decode is named in the plan as left out, and nothing else changes', async () => {
  const key = keys.mitigation('broken-rule');
  await api.store.txn([], [{ type: 'put', key, value: '{"not": "a rule"' }]);
  try {
    const plan = await planNode(cli);
    const dp = plan.changes.find((c) => c.scope === 'dataplane');
    assert.equal(dp?.warnings?.length, 1, JSON.stringify(dp));
    assert.match(dp!.warnings![0]!, /^mitigation broken-rule: .+: left out$/);
    assert.deepEqual(dp?.errors, []);
    assert.match(formatPlan(plan), /^ {2}\? mitigation broken-rule: .+: left out$/m);
  } finally {
    await api.store.txn([], [{ type: 'delete', key }]);
  }
});
