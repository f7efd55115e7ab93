/**
 * The customer's nftables table, inside the customer's own namespace (one table, replaced atomically):
 *
 *   prerouting (filter hook, policy accept)
 *     traffic to the customer's prefixes  → jump firewall   (from the internet, towards the customer)
 *     traffic to this namespace itself     → accept         (link addresses, tunnel interfaces)
 *     IPv6 link-local sources              → accept         (neighbour discovery on the veth)
 *     anything else must come FROM the customer's prefixes (return traffic out of its tunnels), else it is
 *     spoofed → counted and dropped. Return traffic is not filtered by the customer's rules: a stateless rule set
 *     cannot tell replies from attacks.
 *   firewall: the customer's enabled rules in order (first match wins; a rule is one nft rule per alternative of
 *     its expression, each with a counter and the rule id as comment), then the default action, counted.
 */
import type { AccountDocument } from '../../model/schemas.js';
import { parseExpression } from '../../model/expression/index.js';
import type { NftJson, NftRuleSpec, NftStatement, NftTableSpec } from '../../kernel/nft.js';
import { compileExpression } from './firewall-match.js';
import { versionOf } from './node.js';

export const CUSTOMER_TABLE = 'opentransit';
export const SPOOF_COMMENT = 'anti-spoofing';
export const DEFAULT_COMMENT = 'default';
/** Comment of the nft rules of one firewall rule (several when its expression has alternatives). */
export const ruleComment = (ruleId: string) => `rule:${ruleId}`;

function prefixElement(cidr: string): NftJson {
  const [addr, len] = cidr.split('/');
  return { prefix: { addr: addr!, len: Number(len) } };
}

const match = (left: NftJson, op: string, right: NftJson): NftStatement => ({ match: { op, left, right } });
const daddr = (proto: 'ip' | 'ip6') => ({ payload: { protocol: proto, field: 'daddr' } });
const saddr = (proto: 'ip' | 'ip6') => ({ payload: { protocol: proto, field: 'saddr' } });
const verdict = (action: 'allow' | 'block'): NftStatement => (action === 'allow' ? { accept: null } : { drop: null });

export interface FirewallProblem {
  ruleId: string;
  message: string;
}

/**
 * The table for an account. A rule whose expression cannot be compiled (too large) makes the whole firewall
 * undeployable: it is reported in `problems` and the caller must keep the table the kernel has (never apply a
 * firewall with a rule silently missing).
 */
export function firewallTable(account: AccountDocument): { table: NftTableSpec; problems: FirewallProblem[] } {
  const v4 = account.prefixes.filter((p) => !p.cidr.includes(':')).map((p) => prefixElement(p.cidr));
  const v6 = account.prefixes.filter((p) => p.cidr.includes(':')).map((p) => prefixElement(p.cidr));
  const problems: FirewallProblem[] = [];
  const rules: NftRuleSpec[] = [];
  for (const rule of account.firewall.rules) {
    if (!rule.enabled) continue;
    try {
      for (const alternative of compileExpression(parseExpression(rule.expression))) {
        rules.push({ expr: [...(alternative as NftStatement[]), { counter: null }, verdict(rule.action)], comment: ruleComment(rule.id) });
      }
    } catch (err) {
      problems.push({ ruleId: rule.id, message: err instanceof Error ? err.message : String(err) });
    }
  }
  rules.push({ expr: [{ counter: null }, verdict(account.firewall.default_action)], comment: DEFAULT_COMMENT });

  const table: NftTableSpec = {
    family: 'inet',
    name: CUSTOMER_TABLE,
    sets: [
      { name: 'prefixes4', type: 'ipv4_addr', flags: ['interval'], autoMerge: true, elements: v4 },
      { name: 'prefixes6', type: 'ipv6_addr', flags: ['interval'], autoMerge: true, elements: v6 },
    ],
    chains: [
      {
        name: 'prerouting',
        base: { type: 'filter', hook: 'prerouting', prio: 0, policy: 'accept' },
        rules: [
          { expr: [match(daddr('ip'), '==', '@prefixes4'), { jump: { target: 'firewall' } }] },
          { expr: [match(daddr('ip6'), '==', '@prefixes6'), { jump: { target: 'firewall' } }] },
          { expr: [match({ fib: { result: 'type', flags: ['daddr'] } }, '==', 'local'), { accept: null }] },
          // Link-local control traffic on the veth (IPv6 neighbour discovery, DAD from ::, MLD) is not the
          // customer's: it comes from link-local or unspecified sources, or goes to multicast.
          { expr: [match(saddr('ip6'), '==', { set: [{ prefix: { addr: 'fe80::', len: 10 } }, '::'] }), { accept: null }] },
          { expr: [match({ fib: { result: 'type', flags: ['daddr'] } }, '==', 'multicast'), { accept: null }] },
          { expr: [match(saddr('ip'), '!=', '@prefixes4'), { counter: null }, { drop: null }], comment: SPOOF_COMMENT },
          { expr: [match(saddr('ip6'), '!=', '@prefixes6'), { counter: null }, { drop: null }], comment: SPOOF_COMMENT },
        ],
      },
      { name: 'firewall', rules },
    ],
  };
  table.version = versionOf(table);
  return { table, problems };
}
