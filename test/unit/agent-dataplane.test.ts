/**
 * The data plane's desired state (pure) and the numbers a node gives accounts and rules (persisted): what each map
 * must hold for given accounts, settings and mitigation rules, how keys two accounts want are settled, how rules
 * are copied down to more specific prefixes, and that numbers survive a restart and are reused only when freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { activeMitigations, dataplanePlan, ruleValue, type DataplanePlanInput } from '../../src/agent/desired/dataplane.js';
import { NODE_DEFAULTS, customerVethMac, hostVethMac, tunnelMac, tunnelNumbers, type NodeConfig } from '../../src/agent/desired/node.js';
import { DataplaneNumbers, NumberPool } from '../../src/agent/reconcile/dataplane-numbers.js';
import { Action, OT_CONFIG_F_FAST_PATH, OT_RULES_PER_PREFIX, OT_RULE_SLOTS, OT_MITIGATION_PREFIXES_MAX } from '../../src/kernel/bpf/abi.generated.js';
import {
  MITIGATION_MAX_PREFIXES,
  MITIGATION_MAX_RULES,
  MITIGATION_RULES_PER_PREFIX,
  parseMitigationInput,
  type Mitigation,
} from '../../src/model/mitigation.js';
import type { AccountDocument } from '../../src/model/schemas.js';
import { defaultSettings } from '../../src/model/settings.js';

const node: NodeConfig = { ...NODE_DEFAULTS, nodeId: 'edge-1', hostNetns: 'host', uplink: 'eth0' };
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

function tunnel(id: string, name: string, iface: string, customer: string, edge = '192.0.2.10') {
  return {
    id,
    name,
    customer_gre_endpoint: customer,
    edge_gre_endpoint: edge,
    interface_address: iface,
    ttl: 60,
    mtu: 1476,
    health_check: { enabled: true, type: 'reply' as const, rate: 'mid' as const },
    description: '',
  };
}

function account(id: string, name: string, over: Partial<AccountDocument> = {}): AccountDocument {
  return { id, name, created_at: '2026-11-22T00:00:00Z', prefixes: [], gre_tunnels: [], routes: [], firewall: { default_action: 'allow', rules: [] }, ...over };
}

const prefix = (cidr: string) => ({ id: 'f'.repeat(32), cidr, advertised: true, description: '' });

const ACME = account(A, 'acme', {
  prefixes: [prefix('203.0.113.0/24'), prefix('2001:db8:100::/48')],
  gre_tunnels: [tunnel('1'.repeat(32), 'acme-chi', '10.200.0.0/31', '198.51.100.2'), tunnel('2'.repeat(32), 'acme-ams', '10.200.0.2/31', '198.51.100.3')],
});

function input(over: Partial<DataplanePlanInput> = {}): DataplanePlanInput {
  return {
    node,
    accounts: [ACME],
    numbers: new Map([[A, 1], [B, 2]]),
    settings: { ...defaultSettings(), anycast_endpoints: ['192.0.2.20', '192.0.2.10'], blocklist: [{ cidr: '198.51.100.66/32', description: '' }] },
    mitigations: [],
    slots: new Map(),
    nowMs: Date.parse('2026-11-22T12:00:00Z'),
    monotonicOffsetNs: -1_000_000_000n,
    cpus: 4,
    sampleEvery: 0,
    ...over,
  };
}

test('an account holds its prefixes, its tunnel subnets (health checks), its GRE peers, delivery and tunnels', () => {
  const plan = dataplanePlan(input());
  const a = plan.accounts.get(A)!;
  assert.equal(a.number, 1);
  assert.deepEqual(a.prefixes, [
    { cidr: '203.0.113.0/24', source: 'prefix' },
    { cidr: '2001:db8:100::/48', source: 'prefix' },
    { cidr: '10.200.0.0/31', source: 'tunnel acme-chi' },
    { cidr: '10.200.0.2/31', source: 'tunnel acme-ams' },
  ]);
  assert.deepEqual(a.peers, ['198.51.100.2', '198.51.100.3']);
  // mtu6: the MTU of Acme's IPv6 host routes (its smallest tunnel's, at most 1476): the fast path leaves bigger IPv6 packets to the stack.
  assert.deepEqual(a.delivery, { dmac: customerVethMac(node, A), smac: hostVethMac(node, A), mtu6: 1476 });
  const numbers = tunnelNumbers(ACME.gre_tunnels.map((t) => t.id));
  assert.deepEqual(a.tunnels[0], {
    name: 'acme-chi',
    mac: tunnelMac(numbers.get('1'.repeat(32))!),
    local: '192.0.2.10',
    remote: '198.51.100.2',
    ttl: 60,
    df: true,
    hostMac: hostVethMac(node, A),
  });
  assert.deepEqual(a.warnings, []);
});

test('keys two accounts want: the first account id keeps them, the other one gets a warning', () => {
  const beta = account(B, 'beta', {
    prefixes: [prefix('198.18.0.0/24'), prefix('10.200.0.2/31')],
    // The same interface subnet as Acme's acme-chi, and Acme's customer endpoint paired with another anycast endpoint.
    gre_tunnels: [tunnel('3'.repeat(32), 'beta-1', '10.200.0.0/31', '198.51.100.2', '192.0.2.20')],
  });
  const plan = dataplanePlan(input({ accounts: [beta, ACME] }));
  const a = plan.accounts.get(A)!;
  const b = plan.accounts.get(B)!;
  assert.ok(a.prefixes.some((p) => p.cidr === '10.200.0.0/31'), 'acme sorts first: it keeps its tunnel subnet');
  assert.ok(!a.prefixes.some((p) => p.cidr === '10.200.0.2/31'), "beta's customer prefix beats acme's tunnel subnet");
  assert.ok(b.prefixes.some((p) => p.cidr === '10.200.0.2/31'));
  assert.ok(!b.prefixes.some((p) => p.cidr === '10.200.0.0/31'));
  assert.deepEqual(b.peers, []);
  assert.equal(b.warnings.length, 2, JSON.stringify(b.warnings));
  assert.match(b.warnings[0]!, /tunnel beta-1 10\.200\.0\.0\/31: account acme holds this prefix/);
  assert.match(b.warnings[1]!, /GRE from 198\.51\.100\.2 is already accepted for account acme/);
  assert.equal(a.warnings.length, 1);
  assert.match(a.warnings[0]!, /tunnel acme-ams 10\.200\.0\.2\/31: account beta holds this prefix/);
});

test('global maps: anycast endpoints, blocklist, sampling, fast path with the node\'s fwmark', () => {
  const g = dataplanePlan(input({ sampleEvery: 100 })).global;
  assert.deepEqual(g.anycast, ['192.0.2.10', '192.0.2.20']);
  assert.deepEqual(g.blocklist, ['198.51.100.66/32']);
  // The fast path is on unless the node says otherwise, and routes with the node's fwmark.
  assert.deepEqual(g.config, { sample_every: 100, flags: OT_CONFIG_F_FAST_PATH, fwmark: NODE_DEFAULTS.fwmark, fib_table: NODE_DEFAULTS.table });
  const off = dataplanePlan({ ...input({ sampleEvery: 0 }), node: { ...node, fastPath: false, fwmark: 7 } }).global;
  assert.deepEqual(off.config, { sample_every: 0, flags: 0, fwmark: 7, fib_table: NODE_DEFAULTS.table });
  assert.deepEqual(g.mitigation, []);
  assert.equal(g.nextExpiryMs, null);
});

const NOW = new Date('2026-11-22T12:00:00Z');
let seq = 0;
function rule(body: Record<string, unknown>, createdAt = NOW): Mitigation {
  seq++;
  return parseMitigationInput({ action: 'drop', ...body }, seq.toString(16).padStart(32, '0'), createdAt);
}

test('mitigation rules are copied down to more specific prefixes, most specific first; expired ones are left out', () => {
  const wide = rule({ prefix: '203.0.0.0/16', protocol: 'udp', destination_ports: { min: 19, max: 19 } }, new Date('2026-11-22T10:00:00Z'));
  const mid = rule({ prefix: '203.0.113.0/24', protocol: 'tcp', tcp_flags: { set: ['syn'], unset: ['ack'] }, action: 'rate-limit', rate_limit: { pps: 10, burst: 5 } });
  const host = rule({ prefix: '203.0.113.10/32', ttl: { min: 0, max: 2 }, length: { min: 1000, max: 65535 }, expires_in: 600 });
  const old = rule({ prefix: '203.0.113.0/24' }, new Date('2026-11-22T11:00:00Z'));
  const expired = { ...rule({ prefix: '203.0.113.0/24', expires_in: 60 }), expires_at: '2026-11-22T11:59:00.000Z' };
  const mitigations = [host, mid, wide, old, expired];
  const active = activeMitigations(mitigations, NOW.getTime());
  assert.deepEqual(active.map((m) => m.id), [wide.id, old.id, mid.id, host.id], 'oldest first, the expired one left out');
  const slots = new Map(active.map((m, i) => [m.id, i + 10]));
  const g = dataplanePlan(input({ mitigations, slots })).global;
  assert.deepEqual(
    g.mitigation.map((s) => [s.prefix, s.ruleIds]),
    [
      ['203.0.0.0/16', [wide.id]],
      ['203.0.113.0/24', [old.id, mid.id, wide.id]],
      ['203.0.113.10/32', [host.id, old.id, mid.id, wide.id]],
    ],
  );
  assert.equal(g.nextExpiryMs, Date.parse(host.expires_at!));
  assert.deepEqual(new Set(g.activeRuleIds), new Set([wide.id, mid.id, host.id, old.id]));
  const [hostRule, , midRule, wideRule] = g.mitigation[2]!.rules;
  assert.equal(wideRule!.proto, 17);
  assert.deepEqual([wideRule!.dport_min, wideRule!.dport_max, wideRule!.sport_min, wideRule!.sport_max], [19, 19, 0, 65535]);
  assert.equal(wideRule!.action, Action.DROP);
  assert.equal(wideRule!.expires_ns, 0n);
  assert.deepEqual([midRule!.proto, midRule!.tcp_flags_mask, midRule!.tcp_flags_value], [6, 0x12, 0x02]);
  assert.equal(midRule!.action, Action.RATELIMIT);
  assert.deepEqual([midRule!.rate_pps, midRule!.burst], [3, 2], 'per CPU, rounded up (4 CPUs)');
  assert.deepEqual([hostRule!.ttl_min, hostRule!.ttl_max, hostRule!.len_min, hostRule!.len_max, hostRule!.proto], [0, 2, 1000, 65535, 0]);
  assert.equal(hostRule!.expires_ns, BigInt(Date.parse(host.expires_at!)) * 1_000_000n - 1_000_000_000n, 'monotonic clock');
  assert.equal(hostRule!.slot, slots.get(host.id));
});

test('more rules on a prefix than the data plane evaluates: the first ones apply, the rest is reported', () => {
  const rules = Array.from({ length: OT_RULES_PER_PREFIX + 2 }, (_, i) => rule({ prefix: '198.18.0.0/24', protocol: 'udp', destination_ports: { min: i + 1, max: i + 1 } }, new Date(NOW.getTime() + i)));
  const g = dataplanePlan(input({ mitigations: rules, slots: new Map(rules.map((r, i) => [r.id, i])) })).global;
  assert.equal(g.mitigation[0]!.rules.length, OT_RULES_PER_PREFIX);
  assert.deepEqual(g.mitigation[0]!.ruleIds, rules.slice(0, OT_RULES_PER_PREFIX).map((r) => r.id));
  assert.match(g.warnings[0]!, /198\.18\.0\.0\/24: 10 rules apply, the data plane evaluates 8/);
});

test("the model's limits are the data plane's", () => {
  assert.equal(MITIGATION_RULES_PER_PREFIX, OT_RULES_PER_PREFIX);
  assert.equal(MITIGATION_MAX_RULES, OT_RULE_SLOTS);
  assert.equal(MITIGATION_MAX_PREFIXES, OT_MITIGATION_PREFIXES_MAX);
});

test('ruleValue: full ranges for absent matchers, drop without a rate', () => {
  const r = ruleValue(rule({ prefix: '2001:db8::/32' }), 7, { monotonicOffsetNs: 0n, cpus: 2 });
  assert.deepEqual(r, {
    expires_ns: 0n, slot: 7, rate_pps: 0, burst: 0, sport_min: 0, sport_max: 65535, dport_min: 0, dport_max: 65535,
    len_min: 0, len_max: 65535, proto: 0, tcp_flags_mask: 0, tcp_flags_value: 0, ttl_min: 0, ttl_max: 255, action: Action.DROP,
  });
});

// --- numbers ---------------------------------------------------------------------------------------------------

test('a number pool hands out the lowest free number, keeps it per id, and reuses it only once released', () => {
  const p = new NumberPool('account number', 1, 3);
  assert.equal(p.assign('x'), 1);
  assert.equal(p.assign('y'), 2);
  assert.equal(p.assign('x'), 1, 'stable');
  assert.equal(p.release('x'), 1);
  assert.equal(p.assign('z'), 1, 'freed, reused');
  assert.equal(p.assign('w'), 3);
  assert.throws(() => p.assign('v'), /no free account number left/);
  assert.throws(() => p.set('v', 2), /already taken by y/);
  assert.throws(() => p.set('v', 0), /outside 1\.\.3/);
});

test('numbers are saved in the data dir and read back by the next run; files of other nodes or garbage are refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-numbers-'));
  try {
    const file = path.join(dir, 'dataplane-numbers.json');
    const first = DataplaneNumbers.open(file, 'edge-1');
    assert.equal(first.fresh, true);
    first.accounts.assign(A);
    first.accounts.assign(B);
    first.slots.assign('r1');
    first.save();
    assert.equal(first.version, 1);
    const again = DataplaneNumbers.open(file, 'edge-1');
    assert.equal(again.fresh, false);
    assert.deepEqual(again.accounts.entries(), [[A, 1], [B, 2]]);
    assert.deepEqual(again.slots.entries(), [['r1', 0]]);
    assert.throws(() => DataplaneNumbers.open(file, 'edge-2'), /belongs to node edge-1/);
    fs.writeFileSync(file, '{"version": 1, "node": "edge-1", "accou');
    assert.throws(() => DataplaneNumbers.open(file, 'edge-1'), /not readable JSON/);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['dataplane-numbers.json'], 'no temporary file left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
