/**
 * `opentransit plan`: what the agent would change, read from the real kernel, changing nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { customerNetns, NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { formatPlan, planNode, type AgentCliOptions } from '../../src/agent/main.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth } from '../../src/kernel/links.js';
import { listNetns } from '../../src/kernel/netns.js';
import { BPFFS, unpin } from '../../src/kernel/bpf/index.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { keys } from '../../src/model/keys.js';

const harness = netnsHarness();
// The data plane's pins live under a bpffs directory of this run only (removed at the end).
const pinBase = `${BPFFS}/ot-test-plan-${process.pid}`;
let api: ApiFixture;
let node: NodeConfig;
let cli: AgentCliOptions;
let dataDir = '';
let accountId = '';

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-agent-plan-'));
  const host = await harness.create('host');
  const peer = await harness.create('uplink');
  await ensureVeth({ ns: host, name: 'up0', mac: '02:00:00:00:02:01', peerNs: peer, peerName: 'eth0', peerMac: '02:00:00:00:02:02' });
  node = { ...NODE_DEFAULTS, nodeId: 'plan', hostNetns: host, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  cli = { nodeId: 'plan', hostNetns: host, uplink: 'up0', store: `lmdb:${api.dir}`, netnsPrefix: node.netnsPrefix };
  const acme = await api.createAccount('acme');
  accountId = acme.id;
  const res = await api.call('PUT', `/v1/accounts/${acme.id}/config`, {
    body: {
      account: 'acme',
      prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
      gre_tunnels: [{ name: 'acme-chi', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
      routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }],
      firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 21' }] },
    },
  });
  assert.equal(res.statusCode, 200, res.body);
});

after(async () => {
  await api?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  unpin(pinBase);
  await harness.cleanup();
});

test('before any agent ran, the plan lists what it would create, and creates nothing', async () => {
  const plan = await planNode(cli);
  const acme = plan.changes.find((c) => c.scope === 'account acme')!;
  assert.ok(acme.changes.some((c) => c.startsWith('create netns')), JSON.stringify(acme));
  assert.ok(plan.changes.find((c) => c.scope === 'host')!.changes.some((c) => /create nft table inet opentransit/.test(c)));
  assert.deepEqual(await listNetns(node.netnsPrefix), [], 'a plan changes nothing');
  assert.match(formatPlan(plan), /^account acme:\n {2}~ create netns/m);
});

test('after the agent converged the plan is empty; drift by hand shows up in the plan', async () => {
  const agent = new Agent({ node, store: api.store, dataDir, log: () => {}, bpf: { pinBase }, heartbeatMs: 150 });
  await agent.start();
  await agent.firstSync;
  for (let i = 0; i < 100 && agent.snapshotStatus().accounts[accountId]?.state !== 'ok'; i++) {
    await agent.idle();
    await new Promise((r) => setTimeout(r, 50));
  }
  // The heartbeat: with nothing to change, the status is still republished (liveness for readers).
  const reported = async () => JSON.parse((await api.store.get(keys.nodeStatus('plan')))!.value).updated_at as string;
  const first = await reported();
  await new Promise((r) => setTimeout(r, 500));
  assert.notEqual(await reported(), first, 'the status is republished every heartbeat');
  await agent.stop();
  const clean = await planNode(cli);
  assert.match(formatPlan(clean), /no changes/, formatPlan(clean));

  await runIpOps(customerNetns(node, accountId), [{ args: ['route', 'delete', '203.0.113.0/24', 'metric', '100'] }]);
  const drift = await planNode(cli);
  const acme = drift.changes.find((c) => c.scope === 'account acme')!;
  assert.deepEqual(acme.changes.filter((c) => /route/.test(c)).length, 1, JSON.stringify(acme.changes));
  assert.match(acme.changes.join('\n'), /add route 4\|254\|203\.0\.113\.0\/24\|100/);
});
