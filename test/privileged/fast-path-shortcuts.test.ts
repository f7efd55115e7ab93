/**
 * The fast path's shortcuts (ot_config OT_CONFIG_F_FIB_DIRECT_IN, _GRE, OT_CONFIG_F_FIB_DIRECT,
 * OT_CONFIG_F_SRC_UNICAST; bpf/lib/fastpath.h, src/agent/reconcile/dataplane-fib.ts) against the real kernel, the
 * real agent and a real customer router (the topology of fast-path.test.ts, IPv4 only):
 *
 *   client C ── R ── H.up0 (agent's host netns: XDP, tc_host_fwd) ── customer netns ── GRE ── CR ── host CH
 *
 * With the kernel's rules and ours in H, every shortcut is on and UDP takes the fast path both ways. A rule added
 * by hand turns off, within a resync, the shortcuts whose lookups it might match (and only those), and the packet
 * then goes where the stack sends it; with the flag forced on regardless (a stale flag), it would not — which is
 * why the agent checks. An address of a customer prefix on the host, likewise. A source that is the host's own
 * address is left to the stack, which drops it, while any other source skips the reverse lookup.
 * Everything lives in namespaces and bpffs directories of this run, removed at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import {
  OT_CONFIG_F_FAST_PATH,
  OT_CONFIG_F_FIB_DIRECT,
  OT_CONFIG_F_FIB_DIRECT_GRE,
  OT_CONFIG_F_FIB_DIRECT_IN,
  OT_CONFIG_F_SRC_UNICAST,
} from '../../src/kernel/bpf/abi.generated.js';
import { lpmKey, type Dataplane } from '../../src/kernel/bpf/dataplane.js';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { inNetns } from '../../src/kernel/netns.js';
import { tsharkCapture } from '../../src/lab/tshark.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { buildEdgeTopology } from '../support/edge-topology.js';
import { waitConverged, waitFor } from '../support/agent-wait.js';
import { acmeConfig, teardownAgentTest, testPinBase, withDataplane } from '../support/agent-fixture.js';
import { countersByReason, grew } from '../support/bpf-counters.js';
import { buildCustomerSite, startCustomerRouterGre } from '../support/customer-site.js';

const harness = netnsHarness();
const pinBase = testPinBase('fpshort');
const cpe = { node: 'fps', base: testPinBase('fpshort-cpe') };
let api: ApiFixture;
let agent: Agent | undefined;
let node: NodeConfig;
let dataDir: string;
const logs: string[] = [];
let H = '';
let C = '';
let CR = '';
let CH = '';

const ANYCAST = '192.0.2.10';
const CLIENT = '198.51.100.50';
const ROUTER = '198.51.100.2';
const ACME_HOST = '203.0.113.100';
const H_UPLINK = '100.64.0.0';
const FOREIGN_TABLE = '4300';
const ALL = OT_CONFIG_F_FIB_DIRECT_IN | OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_FIB_DIRECT | OT_CONFIG_F_SRC_UNICAST;

const context = () => logs.slice(-30).join('\n');

function startAgent(): Agent {
  return new Agent({ node, store: api.store, dataDir, resyncMs: 500, countersMs: 60_000, log: (m) => logs.push(m), bpf: { pinBase }, heartbeatMs: 60_000 });
}

/** The agent's pinned data plane, opened for one call. */
const dataplane = <T>(fn: (dp: Dataplane) => T): T => withDataplane({ node: node.nodeId, base: pinBase }, fn);

const flags = () => dataplane((dp) => dp.maps.config.get(0)?.flags ?? 0);

async function waitShortcuts(want: number, what: string): Promise<void> {
  await waitFor(`${what} (shortcut flags 0x${want.toString(16)})`, () => (flags() & ALL) === want, { context, timeoutMs: 15_000 });
}

/** Acme's counters by reason name (Acme's account number is its prefix's entry). */
const counters = (): Record<string, number> => dataplane((dp) => countersByReason(dp.maps.counters, dp.maps.prefixes.get(lpmKey('203.0.113.0/24'))!));

/** UDP datagrams from C (python3; with `src`, a spoofed source sent as a raw IPv4 packet). */
async function sendUdp(dst: string, dport: number, o: { count?: number; src?: string } = {}): Promise<void> {
  const py = o.src
    ? [
        'import socket, struct',
        's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)',
        `src, dst = socket.inet_aton(${JSON.stringify(o.src)}), socket.inet_aton(${JSON.stringify(dst)})`,
        "data = b'spoofed'",
        `udp = struct.pack('!HHHH', 40000, ${dport}, 8 + len(data), 0) + data`,
        "ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)",
        `for i in range(${o.count ?? 1}):`,
        `    s.sendto(ip + udp, (${JSON.stringify(dst)}, 0))`,
      ].join('\n')
    : [
        'import socket, time',
        's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
        `for i in range(${o.count ?? 1}):`,
        `    s.sendto(b'shortcut', (${JSON.stringify(dst)}, ${dport}))`,
        '    time.sleep(0.002)',
      ].join('\n');
  await run(inNetns(C, ['/usr/bin/python3', '-c', py]), { timeoutMs: 30_000 });
}

/** Sends `count` datagrams to `dport` on Acme's host and returns how many arrived there. */
async function delivered(dport: number, count: number, o: { src?: string } = {}): Promise<number> {
  // count 0: one is awaited for 3 s, and must not come
  const cap = await tsharkCapture({ netns: CH, dev: 'eth0', filter: `udp and dst port ${dport}`, fields: ['ip.src'], count: Math.max(count, 1), timeoutS: count === 0 ? 3 : 15 });
  await sendUdp(ACME_HOST, dport, { count: Math.max(count, 1), ...o });
  try {
    return (await cap.done).length;
  } catch {
    return 0;
  }
}

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-fpshort-test-'));
  const topology = await buildEdgeTopology(harness, { client: CLIENT, router: ROUTER, anycast: ANYCAST, prefix: '203.0.113.0/24', macByte: 0x2e });
  ({ H, C, CR } = topology);
  CH = await buildCustomerSite(harness, topology, { host: ACME_HOST });
  await startCustomerRouterGre(CR, cpe, { router: ROUTER, anycast: ANYCAST, prefixes: ['203.0.113.0/24'] });
  node = { ...NODE_DEFAULTS, nodeId: 'edge-fps', hostNetns: H, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  agent = startAgent();
  await agent.start();
  const id = (await api.createAccount('acme')).id;
  const res = await api.call('PUT', `/v1/accounts/${id}/config`, { body: acmeConfig({ router: ROUTER, anycast: ANYCAST, firewall: { default_action: 'allow', rules: [] } }) });
  assert.equal(res.statusCode, 200, res.body);
  await waitConverged(agent, (res.json() as { revision: number }).revision, { context });
  assert.equal(agent.snapshotStatus().accounts[id]?.state, 'ok');
});

after(() => teardownAgentTest({ agent, api, dataDir, harness, pinBase, customerRouter: { ...cpe, netns: CR } }));

test('the kernel\'s rules and ours: every shortcut on, ot_host_local holds the host\'s addresses, UDP takes the fast path both ways', async () => {
  await waitShortcuts(ALL, 'every shortcut on');
  assert.ok(flags() & OT_CONFIG_F_FAST_PATH);
  await waitFor('the node status says so', () => agent!.snapshotStatus().dataplane?.fast_path_shortcuts?.on.length === 4, { context });
  assert.deepEqual(agent!.snapshotStatus().dataplane?.fast_path_shortcuts, { on: ['in', 'gre', 'all', 'src'], off: {} });
  dataplane((dp) => {
    for (const a of [H_UPLINK, '169.254.0.1']) assert.notEqual(dp.maps.hostLocal.get(lpmKey(`${a}/32`)), undefined, `${a} is the host's`);
    assert.equal(dp.maps.hostLocal.get(lpmKey('198.51.100.77/32')), undefined);
  });
  assert.equal(await delivered(9100, 3), 3, 'warm-up: neighbours resolved by the stack');
  const b = counters();
  assert.equal(await delivered(9101, 20), 20);
  const a = counters();
  assert.ok(grew(b, a, 'FORWARD_XDP') >= 20, `XDP forwarded them (direct lookup in the customer table): ${JSON.stringify(a)}`);
  assert.ok(grew(b, a, 'FORWARD_HOST') >= 20, `tc_host_fwd forwarded their GRE (direct lookup in main): ${JSON.stringify(a)}`);
});

test('a source that is the host\'s own address is left to the stack (which drops it); any other source needs no reverse lookup', async () => {
  const b = counters();
  assert.equal(await delivered(9102, 0, { src: H_UPLINK }), 0, 'the stack drops a packet from its own address (rp_filter 0, accept_local 0)');
  const m = counters();
  assert.equal(grew(b, m, 'FORWARD_XDP'), 0, `the fast path left it to the stack: ${JSON.stringify(m)}`);
  assert.equal(await delivered(9103, 1, { src: '198.51.100.77' }), 1, 'a source elsewhere is forwarded');
  assert.equal(grew(m, counters(), 'FORWARD_XDP'), 1);
});

test('a policy rule added by hand: the shortcuts it may affect go off within a resync, and packets go where the stack sends them', async () => {
  // Customer traffic to one address is sent to another table, which says unreachable.
  await runIpOps(H, [
    { args: ['route', 'replace', 'unreachable', `${ACME_HOST}/32`, 'table', FOREIGN_TABLE] },
    { args: ['rule', 'add', 'pref', '500', 'to', `${ACME_HOST}/32`, 'lookup', FOREIGN_TABLE] },
  ]);
  try {
    // It may match customer traffic from the uplink (in) and is foreign (all); GRE to the customer router and the
    // source check are not its business.
    await waitShortcuts(OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_SRC_UNICAST, 'the rule shortcuts it may affect off');
    await waitFor('the node status says why', () => agent!.snapshotStatus().dataplane?.fast_path_shortcuts?.off.in !== undefined, { context });
    assert.match(agent!.snapshotStatus().dataplane!.fast_path_shortcuts!.off.in!, /a policy rule that may match customer traffic from the uplink/);
    assert.match(logs.join('\n'), /fast path's shortcuts: gre, src \(off — in: a policy rule that may match customer traffic from the uplink: IPv4 rule 500: lookup table 4300 to 203\.0\.113\.100\/32/);
    const b = counters();
    const icmp = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'icmp', fields: ['ip.src', 'icmp.type', 'icmp.code'] });
    assert.equal(await delivered(9104, 0), 0, 'not delivered');
    assert.deepEqual((await icmp.done)[0]!.map((f) => f.split(',')[0]), [H_UPLINK, '3', '1'], 'the stack\'s answer: host unreachable, from the host');
    assert.equal(grew(b, counters(), 'FORWARD_XDP'), 0, 'the fast path left it to the stack');

    // Why the agent must check: with the flag forced on (stale), the direct lookup skips the rule and delivers.
    await agent!.stop();
    agent = undefined;
    dataplane((dp) => dp.maps.config.set(0, { ...dp.maps.config.get(0)!, flags: dp.maps.config.get(0)!.flags | OT_CONFIG_F_FIB_DIRECT_IN }));
    const s = counters();
    assert.equal(await delivered(9105, 1), 1, 'a stale flag: delivered against the rule');
    assert.equal(grew(s, counters(), 'FORWARD_XDP'), 1);
    agent = startAgent();
    await agent.start();
    await waitShortcuts(OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_SRC_UNICAST, 'the restarted agent clears the stale flag');
  } finally {
    await runIpOps(H, [
      { args: ['rule', 'del', 'pref', '500', 'to', `${ACME_HOST}/32`, 'lookup', FOREIGN_TABLE] },
      { args: ['route', 'del', 'unreachable', `${ACME_HOST}/32`, 'table', FOREIGN_TABLE] },
    ]);
  }
  await waitShortcuts(ALL, 'every shortcut back once the rule is gone');
  const b = counters();
  assert.equal(await delivered(9106, 5), 5);
  assert.equal(grew(b, counters(), 'FORWARD_XDP'), 5);
});

test('an address of a customer prefix on the host: the shortcuts to customers go off, and the host receives the packet', async () => {
  await waitShortcuts(ALL, 'every shortcut on');
  await runIpOps(H, [{ args: ['address', 'add', `${ACME_HOST}/32`, 'dev', 'lo'] }]);
  try {
    await waitShortcuts(OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_SRC_UNICAST, 'the shortcuts to customers off');
    assert.match(logs.join('\n'), /in: the local table's 203\.0\.113\.100\/32 overlaps 203\.0\.113\.0\/24/);
    const b = counters();
    // The stack delivers it to the host itself: no socket there, so the host answers port unreachable.
    const icmp = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'icmp', fields: ['ip.src', 'icmp.type', 'icmp.code'] });
    assert.equal(await delivered(9107, 0), 0, 'not delivered to the customer');
    assert.deepEqual((await icmp.done)[0]!.map((f) => f.split(',')[0]), [ACME_HOST, '3', '3'], 'port unreachable from the host\'s own 203.0.113.100');
    assert.equal(grew(b, counters(), 'FORWARD_XDP'), 0);
  } finally {
    await runIpOps(H, [{ args: ['address', 'del', `${ACME_HOST}/32`, 'dev', 'lo'] }]);
  }
  await waitShortcuts(ALL, 'every shortcut back once the address is gone');
});
