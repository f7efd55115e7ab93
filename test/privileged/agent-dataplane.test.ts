/**
 * The agent with its eBPF data plane, against the real kernel, end to end with real GRE:
 *
 *   client C ── R (router, plain routing) ── H.up0 (the agent's host netns; XDP ot_xdp_edge)
 *   198.51.100.50   │                          └─ veth ─ customer netns (firewall, routes, tc ot_tc_gre on edge0)
 *                   └── customer router CR (198.51.100.2, the tunnel's far end; tshark captures here)
 *
 *   forward:  C → 203.0.113.100 → R → H (XDP: pass) → customer netns → tc: GRE 192.0.2.10 → 198.51.100.2 → H → R → CR
 *   return:   CR sends GRE to the anycast endpoint 192.0.2.10 → R → H (XDP: decap, anti-spoofing, redirect)
 *             → customer netns → H → R → C
 *
 * Configuration goes in through the API (accounts, settings.blocklist, /v1/mitigations); what happened is read
 * from tshark (checksums validated), from the counters the agent publishes (GET /v1/counters) and from the kernel.
 * Everything lives in namespaces of this run and a bpffs directory of its own, removed at the end.
 */
import { keys } from '../../src/model/keys.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { CUSTOMER_VETH, NODE_DEFAULTS, customerNetns, type NodeConfig } from '../../src/agent/desired/node.js';
import { UPLINK_TC_FILTER } from '../../src/agent/reconcile/dataplane.js';
import { openDataplane, lpmKey, ipv4Be32 } from '../../src/kernel/bpf/dataplane.js';
import { detachTc, ifIndex, netnsCookie, queryTc, queryXdp } from '../../src/kernel/bpf/index.js';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { inNetns } from '../../src/kernel/netns.js';
import { applyNftDocument, readNftTable } from '../../src/kernel/nft.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { acmeConfig, teardownAgentTest, testPinBase } from '../support/agent-fixture.js';
import { buildEdgeTopology } from '../support/edge-topology.js';
import { waitConverged, waitFor } from '../support/agent-wait.js';
import { gre, icmp, ipv4, udp } from '../support/packets.js';
import { tsharkCapture } from '../../src/lab/tshark.js';

const harness = netnsHarness();
const pinBase = testPinBase('agentdp');
let api: ApiFixture;
let agent: Agent;
let node: NodeConfig;
let dataDir: string;
const logs: string[] = [];
let H = '';
let R = '';
let C = '';
let CR = '';

const ANYCAST = '192.0.2.10';
const CLIENT = '198.51.100.50';
const ROUTER = '198.51.100.2';
const STRANGER_GRE = CLIENT; // a GRE source no account has
const ACME_HOST = '203.0.113.100';

function startAgent(): Agent {
  // Without kernel notifications: every account is re-checked every resync period (the fallback path), which is
  // what repairs a map entry deleted by hand (the kernel does not notify map writes).
  return new Agent({ node, store: api.store, dataDir, resyncMs: 500, watchKernel: false, countersMs: 60_000, log: (m) => logs.push(m), bpf: { pinBase } });
}


before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-agentdp-test-'));
  ({ H, R, C, CR } = await buildEdgeTopology(harness, { client: CLIENT, router: ROUTER, anycast: ANYCAST, prefix: '203.0.113.0/24', macByte: 0x0f }));
  // Complete checksums from the senders, so tshark can check the inner packets (DESIGN.md §2: offloads leave
  // them partial on veths).
  for (const ns of [C, CR]) await run(inNetns(ns, ['ethtool', '-K', 'eth0', 'tx', 'off']));
  node = { ...NODE_DEFAULTS, nodeId: 'edge-dp', hostNetns: H, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  agent = startAgent();
  await agent.start();
});

after(() => teardownAgentTest({ agent, api, dataDir, harness, pinBase }));

const ACME = acmeConfig({ router: ROUTER, anycast: ANYCAST, firewall: { default_action: 'allow', rules: [] } });
let acmeId = '';

const revisionOf = (etag: string | string[] | undefined) => Number(String(etag).replace(/\D/g, ''));

const converged = (revision: number, timeoutMs?: number) => waitConverged(agent, revision, { timeoutMs, context: () => logs.slice(-30).join('\n') });
const eventually = (what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number) => waitFor(what, check, { timeoutMs, context: () => logs.slice(-20).join('\n') });

/** UDP datagrams from a namespace (Debian's python3; the image has no other sender). Returns how many were sent. */
async function sendUdp(ns: string, dst: string, dport: number, o: { count?: number; gapS?: number; payload?: string; sport?: number } = {}): Promise<number> {
  const py = [
    'import socket, sys, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(('0.0.0.0', ${o.sport ?? 0}))`,
    'n = 0',
    `for i in range(${o.count ?? 1}):`,
    `    s.sendto(${JSON.stringify(o.payload ?? 'opentransit')}.encode(), (${JSON.stringify(dst)}, ${dport}))`,
    '    n += 1',
    `    time.sleep(${o.gapS ?? 0})`,
    'print(n)',
  ].join('\n');
  const { stdout } = await run(inNetns(ns, ['/usr/bin/python3', '-c', py]), { timeoutMs: 60_000 });
  return Number(stdout.trim());
}

/** GRE (plain, RFC 2784) carrying `inner`, sent by the namespace's kernel with its own outer IPv4 header. */
async function sendGre(ns: string, dst: string, inner: Buffer, count = 1): Promise<void> {
  const payload = gre({}, inner).bytes(Buffer.alloc(4), Buffer.alloc(4)).toString('hex');
  const py = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)\nfor i in range(${count}):\n    s.sendto(bytes.fromhex('${payload}'), ('${dst}', 0))`;
  await run(inNetns(ns, ['/usr/bin/python3', '-c', py]));
}

interface Item {
  account_id: string | null;
  reason: string;
  packets: number;
}

/** The counters the agent publishes, through the API, after making it publish now. */
async function counters(): Promise<Map<string, number>> {
  await agent.flushCounters();
  const res = await api.call('GET', '/v1/counters');
  assert.equal(res.statusCode, 200, res.body);
  const out = new Map<string, number>();
  for (const i of (res.json() as { items: Item[] }).items) out.set(`${i.account_id === acmeId ? 'acme' : i.account_id === null ? '-' : i.account_id}:${i.reason}`, i.packets);
  return out;
}

function grew(before: Map<string, number>, after: Map<string, number>, key: string): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}

test('Acme through the API: its netns, XDP on the uplink, tc on edge0 and its map entries are in place', async () => {
  acmeId = (await api.createAccount('acme')).id;
  const res = await api.call('PUT', `/v1/accounts/${acmeId}/config`, { body: ACME });
  assert.equal(res.statusCode, 200, res.body);
  await converged((res.json() as { revision: number }).revision);
  const status = agent.snapshotStatus();
  assert.equal(status.accounts[acmeId]?.state, 'ok');
  assert.equal(status.dataplane?.state, 'ok', JSON.stringify(status.dataplane));

  const dp = openDataplane({ node: node.nodeId, base: pinBase });
  try {
    const xdp = queryXdp({ ifindex: ifIndex('up0', H), netns: H });
    assert.deepEqual(xdp, { progId: dp.xdpEdge.id, mode: 'native' });
    const ns = customerNetns(node, acmeId);
    assert.equal(queryTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' }), dp.tcGre.id, 'the one pinned tc program');
    const n = dp.maps.prefixes.get(lpmKey('203.0.113.0/24'));
    assert.ok(n !== undefined && n >= 1 && n <= 1023);
    assert.equal(dp.maps.prefixes.get(lpmKey('10.200.0.0/31')), n, 'the tunnel subnet belongs to Acme (health checks)');
    assert.deepEqual(dp.maps.grePeers.get(ipv4Be32(ROUTER)), { account: n, flags: 0 });
    assert.equal(dp.maps.anycast.get(ipv4Be32(ANYCAST)), 0);
    assert.equal(dp.maps.delivery.get(n)?.ifindex, ifIndex(`ot${acmeId.slice(0, 12)}`, H));
    const tunnels = dp.maps.tunnels.entries();
    assert.equal(tunnels.length, 1);
    assert.equal(tunnels[0]![0].netns_cookie, netnsCookie(ns));
    assert.deepEqual(tunnels[0]![1].local, ipv4Be32(ANYCAST));
    assert.deepEqual(tunnels[0]![1].remote, ipv4Be32(ROUTER));
    assert.equal(tunnels[0]![1].flags, 1, 'DF');
    const numbers = JSON.parse(fs.readFileSync(path.join(dataDir, 'dataplane-numbers.json'), 'utf8')) as { accounts: Record<string, number> };
    assert.equal(numbers.accounts[acmeId], n, 'the number is persisted in the data dir');
  } finally {
    dp.close();
  }
});

test('forward: a datagram to Acme leaves as GRE from the anycast endpoint to the customer router, inner packet intact', async () => {
  const before = await counters();
  const cap = await tsharkCapture({
    netns: CR,
    dev: 'eth0',
    filter: 'ip proto 47',
    fields: ['ip.src', 'ip.dst', 'ip.checksum.status', 'ip.flags.df', 'ip.ttl', 'gre.proto', 'udp.srcport', 'udp.dstport', 'udp.checksum.status', 'data.data'],
  });
  await sendUdp(C, ACME_HOST, 9000, { payload: 'opentransit-e2e', sport: 40000 });
  const [row] = await cap.done;
  const [src, dst, ipCsum, df, ttl, greProto, sport, dport, udpCsum, data] = row!;
  assert.equal(src, `${ANYCAST},${CLIENT}`, 'outer source: the anycast endpoint; inner: the client');
  assert.equal(dst, `${ROUTER},${ACME_HOST}`, 'outer destination: customer_gre_endpoint');
  assert.equal(ipCsum, '1,1', 'outer and inner IPv4 checksums good');
  assert.equal(df!.split(',')[0], '1', 'outer DF');
  // Outer TTL 64 (the tunnel's) less two hops (H, R); inner 64 less three (R, H, the customer netns).
  assert.equal(ttl, '62,61');
  assert.equal(greProto, '0x0800');
  assert.deepEqual([sport, dport, udpCsum], ['40000', '9000', '1']);
  assert.equal(Buffer.from(data!, 'hex').toString(), 'opentransit-e2e');
  const after = await counters();
  // XDP passed it to the host stack, or routed it itself (the fast path, once the host resolved the customer veth's
  // neighbour): either way attributed to Acme.
  assert.ok(grew(before, after, 'acme:pass') + grew(before, after, 'acme:forward_xdp') >= 1, 'XDP passed or forwarded it, attributed to Acme');
  assert.ok(grew(before, after, 'acme:encap_gre') >= 1, 'tc encapsulated it');
});

test('return: GRE from the customer endpoint is decapsulated by XDP and delivered through the customer netns', async () => {
  const before = await counters();
  const cap = await tsharkCapture({ netns: C, dev: 'eth0', filter: 'udp port 40001', fields: ['ip.src', 'ip.dst', 'ip.checksum.status', 'ip.ttl', 'udp.checksum.status', 'data.data'] });
  await sendGre(CR, ANYCAST, ipv4({ src: ACME_HOST, dst: CLIENT, ttl: 64 }, udp({ sport: 9000, dport: 40001 }, Buffer.from('reply'))));
  const [row] = await cap.done;
  // TTL: 64 less the customer netns, H and R.
  assert.deepEqual(row, [ACME_HOST, CLIENT, '1', '61', '1', Buffer.from('reply').toString('hex')]);
  const after = await counters();
  assert.equal(grew(before, after, 'acme:redirect_gre'), 1, 'XDP decapsulated and redirected it');
});

test('a health check from the tunnel address is accepted, answered through the tunnel', async () => {
  const before = await counters();
  const cap = await tsharkCapture({ netns: CR, dev: 'eth0', filter: 'ip proto 47 and ip src 192.0.2.10', fields: ['ip.src', 'ip.dst', 'icmp.type', 'ip.checksum.status'] });
  // The customer router pings the edge side of the tunnel from its side, inside the tunnel.
  await sendGre(CR, ANYCAST, ipv4({ src: '10.200.0.1', dst: '10.200.0.0' }, icmp({ type: 8 }, Buffer.from('hc'))));
  const [row] = await cap.done;
  assert.deepEqual(row, [`${ANYCAST},10.200.0.0`, `${ROUTER},10.200.0.1`, '0', '1,1'], 'an echo reply, encapsulated back to the router');
  const after = await counters();
  assert.equal(grew(before, after, 'acme:redirect_gre'), 1);
  assert.equal(grew(before, after, 'acme:drop_gre_spoofed'), 0);
});

test('a spoofed inner source and an unknown GRE endpoint are dropped at XDP and counted', async () => {
  const before = await counters();
  await sendGre(CR, ANYCAST, ipv4({ src: '198.18.9.9', dst: CLIENT }, udp({ sport: 1, dport: 40001 })), 3);
  await sendGre(C, ANYCAST, ipv4({ src: ACME_HOST, dst: CLIENT }, udp({ sport: 1, dport: 40001 })), 2);
  const after = await counters();
  assert.equal(grew(before, after, 'acme:drop_gre_spoofed'), 3);
  assert.equal(grew(before, after, '-:drop_gre_unknown'), 2, `GRE from ${STRANGER_GRE}: no account's endpoint`);
  assert.equal(grew(before, after, 'acme:redirect_gre'), 0);
});

test('a blocklisted source is dropped at XDP (counted), and passes again once unblocked', async () => {
  const settings = (await api.call('GET', '/v1/settings')).json() as Record<string, unknown>;
  const put = await api.call('PUT', '/v1/settings', { body: { ...settings, blocklist: [{ cidr: `${CLIENT}/32`, description: 'test' }] } });
  assert.equal(put.statusCode, 200, put.body);
  await converged(revisionOf(put.headers.etag));
  const before = await counters();
  await sendUdp(C, ACME_HOST, 9000, { count: 4 });
  const after = await counters();
  assert.equal(grew(before, after, 'acme:drop_blocklist'), 4);
  assert.equal(grew(before, after, 'acme:encap_gre'), 0, 'nothing reached the tunnel');

  const unblock = await api.call('PUT', '/v1/settings', { body: { ...settings, blocklist: [] } });
  await converged(revisionOf(unblock.headers.etag));
  await sendUdp(C, ACME_HOST, 9000, { count: 2 });
  const again = await counters();
  assert.equal(grew(after, again, 'acme:encap_gre'), 2);
  assert.equal(grew(after, again, 'acme:drop_blocklist'), 0);
});

test('mitigation rules: a drop rule and a rate limit act in XDP, counted per reason and per rule', async () => {
  const drop = await api.call('POST', '/v1/mitigations', { body: { prefix: '203.0.113.0/24', protocol: 'udp', destination_ports: { min: 9999, max: 9999 }, action: 'drop' } });
  assert.equal(drop.statusCode, 201, drop.body);
  const limit = await api.call('POST', '/v1/mitigations', {
    body: { prefix: `${ACME_HOST}/32`, protocol: 'udp', destination_ports: { min: 7000, max: 7000 }, action: 'rate-limit', rate_limit: { pps: 1, burst: 2 }, expires_in: 3600 },
  });
  assert.equal(limit.statusCode, 201, limit.body);
  await converged(revisionOf(limit.headers.etag));
  const before = await counters();
  await sendUdp(C, ACME_HOST, 9999, { count: 5 });
  await sendUdp(C, ACME_HOST, 9000, { count: 1 });
  const afterDrop = await counters();
  assert.equal(grew(before, afterDrop, 'acme:drop_rule'), 5);
  assert.equal(grew(before, afterDrop, 'acme:encap_gre'), 1, 'other ports pass');

  // 1 packet/s with a burst of 2 (divided over the CPUs, rounded up): most of 40 back-to-back packets are dropped.
  await sendUdp(C, ACME_HOST, 7000, { count: 40 });
  const afterLimit = await counters();
  const dropped = grew(afterDrop, afterLimit, 'acme:drop_ratelimit');
  const passed = grew(afterDrop, afterLimit, 'acme:encap_gre');
  assert.equal(dropped + passed, 40, `every packet either passed or was dropped: ${dropped} + ${passed}`);
  assert.ok(dropped > 0 && passed > 0, `some passed, the rest was dropped: ${dropped} dropped, ${passed} passed`);
  // The /32 holds a copy of the /24's drop rule too (the longest match alone applies).
  await sendUdp(C, ACME_HOST, 9999, { count: 1 });
  assert.equal(grew(afterLimit, await counters(), 'acme:drop_rule'), 1);

  const rules = (await api.call('GET', '/v1/mitigations')).json() as { items: { id: string; stats: { packets: number; dropped_packets: number } }[] };
  const dropStats = rules.items.find((r) => r.id === (drop.json() as { id: string }).id)!.stats;
  const limitStats = rules.items.find((r) => r.id === (limit.json() as { id: string }).id)!.stats;
  assert.deepEqual([dropStats.packets, dropStats.dropped_packets], [6, 6]);
  assert.deepEqual([limitStats.packets, limitStats.dropped_packets], [40, dropped]);

  for (const r of [drop, limit]) {
    const del = await api.call('DELETE', `/v1/mitigations/${(r.json() as { id: string }).id}`);
    assert.equal(del.statusCode, 204);
  }
  await agent.idle();
  await eventually('rules removed from the map', () => {
    const dp = openDataplane({ node: node.nodeId, base: pinBase });
    try {
      return dp.maps.mitigation.entries().length === 0;
    } finally {
      dp.close();
    }
  });
  const clean = await counters();
  await sendUdp(C, ACME_HOST, 9999, { count: 1 });
  assert.equal(grew(clean, await counters(), 'acme:encap_gre'), 1);
});

test('an expiring rule leaves the map when it expires (the agent re-plans then), and reads as expired', async () => {
  const res = await api.call('POST', '/v1/mitigations', { body: { prefix: '203.0.113.0/24', protocol: 'udp', action: 'drop', expires_in: 3 } });
  assert.equal(res.statusCode, 201, res.body);
  const id = (res.json() as { id: string }).id;
  await converged(revisionOf(res.headers.etag));
  const entries = () => {
    const dp = openDataplane({ node: node.nodeId, base: pinBase });
    try {
      return dp.maps.mitigation.entries().length;
    } finally {
      dp.close();
    }
  };
  assert.equal(entries(), 1);
  await eventually('the expired rule removed from ot_mitigation', () => entries() === 0);
  assert.equal(((await api.call('GET', `/v1/mitigations/${id}`)).json() as { expired: boolean }).expired, true);
  assert.equal((await api.call('DELETE', `/v1/mitigations/${id}`)).statusCode, 204);
});

test('drift: a tunnel entry deleted and tc detached by hand (edge0 and the uplink) come back within a resync', async () => {
  const ns = customerNetns(node, acmeId);
  const dp = openDataplane({ node: node.nodeId, base: pinBase });
  try {
    const uplinkTc = { ifindex: ifIndex('up0', H), netns: H, direction: 'ingress' as const, ...UPLINK_TC_FILTER };
    assert.equal(queryTc(uplinkTc), dp.tcUplinkIn.id, 'tc_uplink_in on the uplink, at its own filter');
    const [key] = dp.maps.tunnels.entries()[0]!;
    dp.maps.tunnels.delete(key);
    detachTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' });
    assert.ok(detachTc(uplinkTc), 'the uplink filter was there');
    // The repairs' log lines too: a pass logs its changes when it ends, after its writes.
    await eventually('tunnel entry and tc filters restored, and the repairs logged', () =>
      dp.maps.tunnels.entries().length === 1 &&
      queryTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' }) === dp.tcGre.id &&
      queryTc(uplinkTc) === dp.tcUplinkIn.id &&
      logs.some((l) => /attach tc egress/.test(l)) &&
      logs.some((l) => /attach tc ingress \(handle 20308 prio 49152\) ot_tc_uplink_in/.test(l)),
    );
  } finally {
    dp.close();
  }
});

/**
 * A steady stream from the client through the tunnel while `during` runs; resolves with (sent, received by the
 * customer router), received counted by an nft rule in the router's netns.
 */
async function streamThrough(during: () => Promise<void>): Promise<{ sent: number; received: number }> {
  const table = { family: 'netdev', name: 'ottcount' };
  await applyNftDocument(CR, {
    nftables: [
      { add: { table } },
      { delete: { table } },
      { add: { table } },
      { add: { chain: { family: 'netdev', table: 'ottcount', name: 'in', type: 'filter', hook: 'ingress', dev: 'eth0', prio: 0, policy: 'accept' } } },
      {
        add: {
          rule: {
            family: 'netdev',
            table: 'ottcount',
            chain: 'in',
            expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'protocol' } }, right: 47 } }, { counter: null }],
          },
        },
      },
    ],
  });
  const sending = sendUdp(C, ACME_HOST, 9100, { count: 1500, gapS: 0.002 });
  await new Promise((r) => setTimeout(r, 300));
  await during();
  const sent = await sending;
  await new Promise((r) => setTimeout(r, 200));
  const t = await readNftTable(CR, 'netdev', 'ottcount');
  const received = (t?.rules ?? []).reduce((n, r) => n + (r.counter?.packets ?? 0), 0);
  return { sent, received };
}

test('agent restart under traffic: nothing is reloaded, the programs stay (same ids), not a packet lost', async () => {
  const ns = customerNetns(node, acmeId);
  const xdpBefore = queryXdp({ ifindex: ifIndex('up0', H), netns: H }).progId;
  const tcBefore = queryTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' });
  const r = await streamThrough(async () => {
    await agent.stop();
    logs.length = 0;
    agent = startAgent();
    await agent.start();
    await agent.firstSync;
    await agent.idle();
  });
  assert.equal(r.received, r.sent, `all ${r.sent} datagrams reached the customer router`);
  assert.equal(queryXdp({ ifindex: ifIndex('up0', H), netns: H }).progId, xdpBefore);
  assert.equal(queryTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' }), tcBefore);
  assert.deepEqual(logs.filter((l) => !/booting from the local replica|cannot watch/.test(l)), [], 'the restart changed nothing');
});

test('an upgrade (new objects) replaces XDP and tc atomically under traffic: new program ids, not a packet lost', async () => {
  const ns = customerNetns(node, acmeId);
  const xdpBefore = queryXdp({ ifindex: ifIndex('up0', H), netns: H }).progId;
  // The record of which object files the pins came from is gone: the next run loads the objects again.
  fs.rmSync(path.join(dataDir, 'dataplane-objects.json'));
  const numbersBefore = fs.readFileSync(path.join(dataDir, 'dataplane-numbers.json'), 'utf8');
  const r = await streamThrough(async () => {
    await agent.stop();
    logs.length = 0;
    agent = startAgent();
    await agent.start();
    await agent.firstSync;
    await agent.idle();
  });
  assert.equal(r.received, r.sent, `all ${r.sent} datagrams reached the customer router`);
  const dp = openDataplane({ node: node.nodeId, base: pinBase });
  try {
    const xdpAfter = queryXdp({ ifindex: ifIndex('up0', H), netns: H }).progId;
    assert.notEqual(xdpAfter, xdpBefore, 'a new XDP program');
    assert.equal(xdpAfter, dp.xdpEdge.id);
    assert.equal(queryTc({ ifindex: ifIndex(CUSTOMER_VETH, ns), netns: ns, direction: 'egress' }), dp.tcGre.id);
    assert.equal(queryTc({ ifindex: ifIndex('up0', H), netns: H, direction: 'ingress', ...UPLINK_TC_FILTER }), dp.tcUplinkIn.id, 'the uplink filter runs the new tc_uplink_in');
    assert.ok(logs.some((l) => /replace XDP on up0: prog \d+ → \d+ \(atomic\)/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /replace tc egress prog/.test(l)), logs.join('\n'));
    assert.ok(!logs.some((l) => /bpf: (add|update|delete) ot_(prefixes|gre_peers|delivery|tunnels)/.test(l)), 'the maps were kept as they were');
  } finally {
    dp.close();
  }
  assert.equal(fs.readFileSync(path.join(dataDir, 'dataplane-numbers.json'), 'utf8'), numbersBefore, 'numbers unchanged');
});

test('numbers survive losing their file: adopted from the maps, nothing renumbered', async () => {
  const file = path.join(dataDir, 'dataplane-numbers.json');
  const before = JSON.parse(fs.readFileSync(file, 'utf8')) as { accounts: Record<string, number> };
  await agent.stop();
  fs.rmSync(file);
  logs.length = 0;
  agent = startAgent();
  await agent.start();
  await agent.firstSync;
  await agent.idle();
  const after = JSON.parse(fs.readFileSync(file, 'utf8')) as { accounts: Record<string, number> };
  assert.equal(after.accounts[acmeId], before.accounts[acmeId]);
  assert.ok(!logs.some((l) => /bpf: (add|update|delete) ot_(prefixes|gre_peers|delivery|tunnels)/.test(l)), logs.join('\n'));
});

test('a second account with the same tunnel subnet: both ok, the data plane warns which one lacks it', async () => {
  const beta = await api.createAccount('beta');
  const betaConfig = {
    account: 'beta',
    prefixes: [{ cidr: '198.18.0.0/24', advertised: true }],
    gre_tunnels: [{ name: 'beta-1', customer_gre_endpoint: '198.51.100.20', edge_gre_endpoint: ANYCAST, interface_address: '10.200.0.0/31' }],
    routes: [{ prefix: '198.18.0.0/24', nexthop: '10.200.0.1', priority: 1 }],
  };
  // The API refuses it (tunnel subnets are unique across accounts)…
  const refused = await api.call('PUT', `/v1/accounts/${beta.id}/config`, { body: betaConfig });
  assert.equal(refused.statusCode, 409, refused.body);
  // …but a store written before that rule may hold it: plant it beside the API (the subnet under another name
  // first, then the document rewritten), and the agent must still cope.
  const ok = await api.call('PUT', `/v1/accounts/${beta.id}/config`, {
    body: { ...betaConfig, gre_tunnels: [{ ...betaConfig.gre_tunnels[0], interface_address: '10.250.0.0/31' }], routes: [{ ...betaConfig.routes[0], nexthop: '10.250.0.1' }] },
  });
  assert.equal(ok.statusCode, 200, ok.body);
  const stored = JSON.parse((await api.store.get(keys.account(beta.id)))!.value);
  stored.gre_tunnels[0].interface_address = '10.200.0.0/31';
  stored.routes[0].nexthop = '10.200.0.1';
  const res = await api.store.txn([], [{ type: 'put', key: keys.account(beta.id), value: JSON.stringify(stored) }]);
  await converged(res.revision);
  const s = agent.snapshotStatus();
  assert.equal(s.accounts[beta.id]?.state, 'ok');
  assert.equal(s.accounts[acmeId]?.state, 'ok');
  assert.equal(s.host.state, 'ok', 'a warning is not an error: the node keeps announcing');
  const loser = acmeId < beta.id ? 'beta' : 'acme';
  assert.deepEqual(s.dataplane?.warnings, [`account ${loser}: tunnel ${loser === 'beta' ? 'beta-1' : 'acme-chi'} 10.200.0.0/31: account ${loser === 'beta' ? 'acme' : 'beta'} holds this prefix in the data plane on this node`]);
  assert.equal((await api.call('DELETE', `/v1/accounts/${beta.id}`)).statusCode, 204);
  await eventually('beta removed', () => agent.snapshotStatus().accounts[beta.id] === undefined);
  await agent.idle();
  assert.equal(agent.snapshotStatus().dataplane?.warnings, undefined);
});

test('deleting the account removes its entries and frees its number', async () => {
  const res = await api.call('DELETE', `/v1/accounts/${acmeId}`);
  assert.equal(res.statusCode, 204);
  await eventually('acme gone from the data plane', () => {
    const dp = openDataplane({ node: node.nodeId, base: pinBase });
    try {
      return dp.maps.prefixes.entries().length === 0 && dp.maps.grePeers.entries().length === 0 && dp.maps.tunnels.entries().length === 0 && dp.maps.delivery.entries().length === 0;
    } finally {
      dp.close();
    }
  });
  await agent.idle();
  const numbers = JSON.parse(fs.readFileSync(path.join(dataDir, 'dataplane-numbers.json'), 'utf8')) as { accounts: Record<string, number> };
  assert.deepEqual(numbers.accounts, {});
  // XDP stays on the uplink (it serves the anycast endpoints and the blocklist with or without accounts).
  assert.notEqual(queryXdp({ ifindex: ifIndex('up0', H), netns: H }).progId, 0);
});

