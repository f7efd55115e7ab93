/**
 * Policy routing rules (`ip rule`), e.g. `fwmark M/MASK lookup T` at a fixed priority (DESIGN.md §2: nftables marks
 * customer-bound packets in the host netns; the rule sends them to our table). Ownership: protocol
 * RT_PROTO_OPENTRANSIT on every rule we add.
 *
 * The kernel has no "replace" for rules, and identical rules are refused (EEXIST): `ruleAddOp` is therefore
 * add-if-missing. A rule is identified by all its fields: to change one, add the new rule, then delete the old
 * (in that order, so packets always find a rule).
 */
import { KernelInputError } from './exec.js';
import { ipJson, runIpOps, type IpOp } from './ip.js';
import type { NetnsRef } from './netns.js';
import { RT_PROTO_OPENTRANSIT } from './routes.js';
import { checkCidr, checkIfname, checkInt, hex, type IpFamily } from './validate.js';

export type RuleAction = 'lookup' | 'unreachable' | 'blackhole' | 'prohibit';
const ACTIONS: Record<number, RuleAction> = { 1: 'lookup', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit' };

export interface RuleSpec {
  /** 1..32765 (0 and 32766/32767 hold the kernel's local/main/default rules). Required: it orders rules. */
  priority: number;
  /** Default 'lookup' (then `table` is required). */
  action?: RuleAction;
  table?: number;
  fwmark?: number;
  /** Default 0xffffffff (the whole mark). */
  fwmask?: number;
  /** Source prefix (`addr/len`). */
  from?: string;
  to?: string;
  iif?: string;
  oif?: string;
  /** Default RT_PROTO_OPENTRANSIT. */
  protocol?: number;
  /** Default: the family of from/to, else 4. */
  family?: IpFamily;
}

/** A rule in canonical form: what `normalizeRule` makes of a spec and what `listRules` reads back. */
export interface Rule {
  family: IpFamily;
  priority: number;
  action: RuleAction;
  table?: number;
  fwmark?: number;
  fwmask?: number;
  from?: string;
  to?: string;
  iif?: string;
  oif?: string;
  protocol: number;
}

export function normalizeRule(spec: RuleSpec): Rule {
  const action = spec.action ?? 'lookup';
  if (!Object.values(ACTIONS).includes(action)) throw new KernelInputError('action', `must be one of ${Object.values(ACTIONS).join(', ')}`);
  const from = spec.from !== undefined ? checkCidr('from', spec.from) : undefined;
  const to = spec.to !== undefined ? checkCidr('to', spec.to) : undefined;
  const family = spec.family ?? from?.family ?? to?.family ?? 4;
  for (const [field, c] of [['from', from], ['to', to]] as const) {
    if (c && c.family !== family) throw new KernelInputError(field, `is not IPv${family}`);
  }
  const rule: Rule = {
    family,
    priority: checkInt('priority', spec.priority, 1, 32765),
    action,
    protocol: checkInt('protocol', spec.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255),
  };
  if (action === 'lookup') {
    if (spec.table === undefined) throw new KernelInputError('table', 'is required for a lookup rule');
    rule.table = checkInt('table', spec.table, 1, 0xffffffff);
  } else if (spec.table !== undefined) throw new KernelInputError('table', `makes no sense with action ${action}`);
  if (spec.fwmark !== undefined) {
    rule.fwmark = checkInt('fwmark', spec.fwmark, 0, 0xffffffff);
    rule.fwmask = checkInt('fwmask', spec.fwmask ?? 0xffffffff, 0, 0xffffffff);
  } else if (spec.fwmask !== undefined) throw new KernelInputError('fwmask', 'needs fwmark');
  // A zero-length prefix is "all": the kernel stores no selector, and reads back without one.
  if (from && from.len > 0) rule.from = `${from.addr}/${from.len}`;
  if (to && to.len > 0) rule.to = `${to.addr}/${to.len}`;
  if (spec.iif !== undefined) rule.iif = checkIfname('iif', spec.iif);
  if (spec.oif !== undefined) rule.oif = checkIfname('oif', spec.oif);
  return rule;
}

function ruleArgs(verb: 'add' | 'delete', r: Rule): string[] {
  const args = ['rule', verb, 'priority', String(r.priority)];
  if (r.from) args.push('from', r.from);
  if (r.to) args.push('to', r.to);
  if (r.fwmark !== undefined) args.push('fwmark', `${hex(r.fwmark)}/${hex(r.fwmask ?? 0xffffffff)}`);
  if (r.iif) args.push('iif', r.iif);
  if (r.oif) args.push('oif', r.oif);
  if (r.action === 'lookup') args.push('lookup', String(r.table));
  else args.push(r.action);
  args.push('proto', String(r.protocol));
  return args;
}

/** Twin: `ip rule add priority P [from F] [to T] [fwmark M/MASK] [iif I] [oif O] lookup T|ACTION proto P` (add-if-missing). */
export function ruleAddOp(spec: RuleSpec): IpOp {
  const r = normalizeRule(spec);
  // `ip rule add from ::/0` is stored as an IPv4 "from all" rule: the family must come from `ip -6`.
  return { args: ruleArgs('add', r), tolerate: ['EEXIST'], ...(r.family === 6 ? { family: 6 as const } : {}) };
}

/** Twin: `ip rule delete …` with every selector of the rule, succeeding when absent. Protocol is matched too. */
export function ruleDeleteOp(spec: RuleSpec): IpOp {
  const r = normalizeRule(spec);
  return { args: ruleArgs('delete', r), tolerate: ['ENOENT'], ...(r.family === 6 ? { family: 6 as const } : {}) };
}

/** Twin: `ip -n NS rule add …` for each (add-if-missing), one spawn. */
export async function ensureRules(ns: NetnsRef, specs: readonly RuleSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(ruleAddOp));
}

/** Twin: `ip -n NS rule delete …` for each (delete-if-present), one spawn. */
export async function deleteRulesIfPresent(ns: NetnsRef, specs: readonly RuleSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(ruleDeleteOp));
}

interface RawRule {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  fwmark?: string;
  fwmask?: string;
  iif?: string;
  oif?: string;
  table?: string;
  action?: string;
  protocol?: string;
}

export function parseRules(raw: unknown, family: IpFamily): Rule[] {
  const full = family === 4 ? 32 : 128;
  return (raw as RawRule[]).map((r) => {
    const rule: Rule = {
      family,
      priority: r.priority,
      action: r.action === undefined ? 'lookup' : (ACTIONS[Number(r.action)] ?? 'lookup'),
      protocol: r.protocol === undefined ? 0 : Number(r.protocol),
    };
    if (r.table !== undefined) rule.table = Number(r.table);
    if (r.fwmark !== undefined) {
      rule.fwmark = Number(r.fwmark);
      rule.fwmask = r.fwmask === undefined ? 0xffffffff : Number(r.fwmask);
    }
    if (r.src !== undefined && r.src !== 'all') rule.from = `${r.src}/${r.srclen ?? full}`;
    if (r.dst !== undefined && r.dst !== 'all') rule.to = `${r.dst}/${r.dstlen ?? full}`;
    if (r.iif !== undefined) rule.iif = r.iif;
    if (r.oif !== undefined) rule.oif = r.oif;
    return rule;
  });
}

/** True when two canonical rules are the same kernel rule. */
export function sameRule(a: Rule, b: Rule): boolean {
  const k = (r: Rule) => JSON.stringify([r.family, r.priority, r.action, r.table, r.fwmark, r.fwmask, r.from, r.to, r.iif, r.oif, r.protocol]);
  return k(a) === k(b);
}

/** Twin: `ip -N -j [-6] -n NS rule show`, optionally only one protocol's rules. */
export async function listRules(ns: NetnsRef, filter: { family?: IpFamily; protocol?: number } = {}): Promise<Rule[]> {
  const family = filter.family ?? 4;
  const raw = await ipJson(ns, [...(family === 6 ? ['-6'] : []), 'rule', 'show']);
  return parseRules(raw, family).filter((r) => filter.protocol === undefined || r.protocol === filter.protocol);
}
