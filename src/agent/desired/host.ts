/**
 * What the host netns of an edge server needs for all customers together — pure, from every account:
 *
 *   nft table inet opentransit:
 *     mark (prerouting, mangle priority): daddr in a customer prefix → meta mark <node.fwmark>
 *     mss  (forward, mangle priority):    SYNs to/from customer prefixes get their MSS clamped to what the
 *                                         account's smallest tunnel MTU carries (GRE costs 24 bytes)
 *   ip rule: fwmark <mark> lookup <table> (IPv4 and IPv6), so customer traffic never uses the main table;
 *   table <table>: unreachable default (a prefix whose customer is not set up is dropped, never leaked to main);
 *   sysctls: forwarding on, L4 multipath hashing.
 */
import type { AccountDocument } from '../../model/schemas.js';
import type { NftJson, NftRuleSpec, NftSetSpec, NftStatement, NftTableSpec } from '../../kernel/nft.js';
import type { RouteSpec } from '../../kernel/routes.js';
import type { RuleSpec } from '../../kernel/rules.js';
import { versionOf, type NodeConfig } from './node.js';

export const HOST_TABLE = 'opentransit';

/** The largest TCP MSS a tunnel of `mtu` carries for an inner IP family (IPv4 40, IPv6 60 bytes of headers). */
export function mssFor(mtu: number, family: 4 | 6): number {
  return mtu - (family === 4 ? 40 : 60);
}

/** MTU of an account's tunnels that limits its traffic: the smallest (1476, GRE over 1500, when it has none). */
export function accountMtu(account: AccountDocument): number {
  return Math.min(1476, ...account.gre_tunnels.map((t) => t.mtu));
}

export interface HostDesired {
  sysctls: Record<string, string | number>;
  rules: RuleSpec[];
  routes: RouteSpec[];
  nft: NftTableSpec;
}

const element = (cidr: string): NftJson => {
  const [addr, len] = cidr.split('/');
  return { prefix: { addr: addr!, len: Number(len) } };
};
const match = (left: NftJson, op: string, right: NftJson): NftStatement => ({ match: { op, left, right } });
const addr = (family: 4 | 6, field: 'saddr' | 'daddr') => ({ payload: { protocol: family === 4 ? 'ip' : 'ip6', field } });

export function hostDesired(node: NodeConfig, accounts: readonly AccountDocument[]): HostDesired {
  const prefixes = { 4: [] as string[], 6: [] as string[] };
  // (family, mss) → prefixes: one pair of clamp rules per distinct MSS, not per customer.
  const mssGroups = new Map<string, { family: 4 | 6; mss: number; cidrs: string[] }>();
  for (const a of accounts) {
    const mtu = accountMtu(a);
    for (const p of a.prefixes) {
      const family = p.cidr.includes(':') ? 6 : 4;
      prefixes[family].push(p.cidr);
      const mss = mssFor(mtu, family);
      const key = `${family}-${mss}`;
      const g = mssGroups.get(key) ?? { family, mss, cidrs: [] };
      g.cidrs.push(p.cidr);
      mssGroups.set(key, g);
    }
  }
  const sets: NftSetSpec[] = [
    { name: 'customer4', type: 'ipv4_addr', flags: ['interval'], autoMerge: true, elements: prefixes[4].sort().map(element) },
    { name: 'customer6', type: 'ipv6_addr', flags: ['interval'], autoMerge: true, elements: prefixes[6].sort().map(element) },
  ];
  const mssRules: NftRuleSpec[] = [];
  for (const g of [...mssGroups.values()].sort((a, b) => a.family - b.family || a.mss - b.mss)) {
    const set = `mss${g.family}_${g.mss}`;
    sets.push({ name: set, type: g.family === 4 ? 'ipv4_addr' : 'ipv6_addr', flags: ['interval'], autoMerge: true, elements: g.cidrs.sort().map(element) });
    const maxseg = { 'tcp option': { name: 'maxseg', field: 'size' } };
    for (const field of ['daddr', 'saddr'] as const) {
      mssRules.push({
        expr: [
          match(addr(g.family, field), '==', `@${set}`),
          match({ '&': [{ payload: { protocol: 'tcp', field: 'flags' } }, 'syn'] }, '!=', 0),
          match(maxseg, '>', g.mss),
          { mangle: { key: maxseg, value: g.mss } },
        ],
      });
    }
  }
  const markRules: NftRuleSpec[] = ([4, 6] as const).map((family) => ({
    expr: [match(addr(family, 'daddr'), '==', `@customer${family}`), { mangle: { key: { meta: { key: 'mark' } }, value: node.fwmark } }],
  }));
  const nft: NftTableSpec = {
    family: 'inet',
    name: HOST_TABLE,
    sets,
    chains: [
      { name: 'mark', base: { type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' }, rules: markRules },
      { name: 'mss', base: { type: 'filter', hook: 'forward', prio: -150, policy: 'accept' }, rules: mssRules },
    ],
  };
  nft.version = versionOf(nft);
  return {
    sysctls: {
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv4.fib_multipath_hash_policy': 1,
      'net.ipv6.fib_multipath_hash_policy': 1,
    },
    rules: ([4, 6] as const).map((family) => ({ family, priority: node.rulePriority, fwmark: node.fwmark, table: node.table })),
    routes: ([4, 6] as const).map((family) => ({ dst: 'default', family, table: node.table, type: 'unreachable' as const })),
    nft,
  };
}
