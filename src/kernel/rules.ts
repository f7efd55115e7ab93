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
import { netlinkRead, runIpOps, type IpOp } from './ip.js';
import { AF_UNSPEC, attr, familyCode, getStr, getU32, getU8, headerTable, ipBytes, ipText, NLM_F, parseAttrs, payload, RTM, rtmsg, str, u32, u8 } from './netlink/codec.js';
import { rtnlDump } from './netlink/socket.js';
import type { NetnsRef } from './netns.js';
import { RT_PROTO_OPENTRANSIT } from './routes.js';
import { checkCidr, checkIfname, checkInt, hex, type IpFamily } from './validate.js';

export type RuleAction = 'lookup' | 'unreachable' | 'blackhole' | 'prohibit';
const ACTIONS: Record<number, RuleAction> = { 1: 'lookup', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit' };
const ACTION_CODES = Object.fromEntries(Object.entries(ACTIONS).map(([k, v]) => [v, Number(k)])) as Record<RuleAction, number>;
// fib rule attributes (linux/fib_rules.h).
const FRA = { DST: 1, SRC: 2, IIFNAME: 3, PRIORITY: 6, FWMARK: 10, TABLE: 15, FWMASK: 16, OIFNAME: 17, PROTOCOL: 21 } as const;

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

/**
 * The body of RTM_NEWRULE / RTM_DELRULE for a canonical rule: struct fib_rule_hdr (laid out like rtmsg: table at
 * byte 4, action at byte 7) and one attribute per selector — what iproute2 sends for the same command.
 */
export function encodeRule(r: Rule): Buffer {
  const cidr = (c: string | undefined) => (c ? { addr: c.split('/')[0]!, len: Number(c.split('/')[1]) } : undefined);
  const from = cidr(r.from);
  const to = cidr(r.to);
  const attrs = [attr(FRA.PRIORITY, u32(r.priority))];
  if (from) attrs.push(attr(FRA.SRC, ipBytes(from.addr)));
  if (to) attrs.push(attr(FRA.DST, ipBytes(to.addr)));
  if (r.fwmark !== undefined) attrs.push(attr(FRA.FWMARK, u32(r.fwmark)), attr(FRA.FWMASK, u32(r.fwmask ?? 0xffffffff)));
  if (r.iif) attrs.push(attr(FRA.IIFNAME, str(r.iif)));
  if (r.oif) attrs.push(attr(FRA.OIFNAME, str(r.oif)));
  if (r.table !== undefined) attrs.push(attr(FRA.TABLE, u32(r.table)));
  attrs.push(attr(FRA.PROTOCOL, u8(r.protocol)));
  const head = rtmsg({ family: familyCode(r.family), dstLen: to?.len ?? 0, srcLen: from?.len ?? 0, table: headerTable(r.table ?? 0), type: ACTION_CODES[r.action] });
  return payload(head, attrs);
}

/** Twin: `ip rule add priority P [from F] [to T] [fwmark M/MASK] [iif I] [oif O] lookup T|ACTION proto P` (add-if-missing). */
export function ruleAddOp(spec: RuleSpec): IpOp {
  const r = normalizeRule(spec);
  // `ip rule add from ::/0` is stored as an IPv4 "from all" rule: the family must come from `ip -6`.
  const body = encodeRule(r);
  return { args: ruleArgs('add', r), tolerate: ['EEXIST'], ...(r.family === 6 ? { family: 6 as const } : {}), nl: { type: RTM.NEWRULE, flags: NLM_F.CREATE | NLM_F.EXCL, build: () => body } };
}

/** Twin: `ip rule delete …` with every selector of the rule, succeeding when absent. Protocol is matched too. */
export function ruleDeleteOp(spec: RuleSpec): IpOp {
  const r = normalizeRule(spec);
  const body = encodeRule(r);
  return { args: ruleArgs('delete', r), tolerate: ['ENOENT'], ...(r.family === 6 ? { family: 6 as const } : {}), nl: { type: RTM.DELRULE, flags: 0, build: () => body } };
}

/** Twin: `ip -n NS rule add …` for each (add-if-missing). */
export async function ensureRules(ns: NetnsRef, specs: readonly RuleSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(ruleAddOp));
}

/** Twin: `ip -n NS rule delete …` for each (delete-if-present). */
export async function deleteRulesIfPresent(ns: NetnsRef, specs: readonly RuleSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(ruleDeleteOp));
}

/** Decodes RTM_NEWRULE message bodies of IPv4 and IPv6 into canonical rules, as `ip -N -j rule show` shows them. */
export function decodeRules(bodies: readonly Buffer[]): Rule[] {
  const out: Rule[] = [];
  for (const body of bodies) {
    const fam = body.readUInt8(0);
    if (fam !== 2 && fam !== 10) continue;
    const a = parseAttrs(body, 12);
    const rule: Rule = {
      family: fam === 2 ? 4 : 6,
      priority: getU32(a.get(FRA.PRIORITY)) ?? 0,
      action: ACTIONS[body.readUInt8(7)] ?? 'lookup',
      protocol: getU8(a.get(FRA.PROTOCOL)) ?? 0,
    };
    const table = getU32(a.get(FRA.TABLE)) ?? body.readUInt8(4);
    if (table !== 0) rule.table = table;
    // The kernel reports a mark only when one is set, a mask when mark or mask is set (iproute2 prints both then).
    if (a.has(FRA.FWMARK) || a.has(FRA.FWMASK)) {
      rule.fwmark = getU32(a.get(FRA.FWMARK)) ?? 0;
      rule.fwmask = getU32(a.get(FRA.FWMASK)) ?? 0xffffffff;
    }
    const src = ipText(a.get(FRA.SRC));
    if (src !== undefined) rule.from = `${src}/${body.readUInt8(2)}`;
    const dst = ipText(a.get(FRA.DST));
    if (dst !== undefined) rule.to = `${dst}/${body.readUInt8(1)}`;
    const iif = getStr(a.get(FRA.IIFNAME));
    if (iif !== undefined) rule.iif = iif;
    const oif = getStr(a.get(FRA.OIFNAME));
    if (oif !== undefined) rule.oif = oif;
    out.push(rule);
  }
  return out;
}

/** The request body of a rule dump (every family). */
export const RULE_DUMP_BODY = rtmsg({ family: AF_UNSPEC });

/** True when two canonical rules are the same kernel rule. */
export function sameRule(a: Rule, b: Rule): boolean {
  const k = (r: Rule) => JSON.stringify([r.family, r.priority, r.action, r.table, r.fwmark, r.fwmask, r.from, r.to, r.iif, r.oif, r.protocol]);
  return k(a) === k(b);
}

/** Twin: `ip -N -j [-6] -n NS rule show` (one in-process dump), optionally only one protocol's rules. */
export async function listRules(ns: NetnsRef, filter: { family?: IpFamily; protocol?: number } = {}): Promise<Rule[]> {
  const family = filter.family ?? 4;
  const all = await listAllRules(ns);
  return all.filter((r) => r.family === family && (filter.protocol === undefined || r.protocol === filter.protocol));
}

/** Both families' rules in one dump (what the host reconciler diffs against). */
export async function listAllRules(ns: NetnsRef): Promise<Rule[]> {
  return netlinkRead(ns, ['rule', 'show'], async () => decodeRules(await rtnlDump(ns, RTM.GETRULE, RULE_DUMP_BODY, RTM.NEWRULE)));
}

/**
 * A rule as the kernel dumped it, with what `Rule` leaves out: the header's tos and flags, the suppress_prefixlen
 * attribute, and the type of every other attribute the dump carried that `Rule` does not decode (goto, l3mdev, uid
 * range, ports, ip_proto, dscp, flow label, tunnel id, suppress_ifgroup…). For callers that must know a rule
 * selects nothing but what `Rule` shows (reconcile/dataplane-fib.ts).
 */
export interface RuleDetail extends Rule {
  /** struct fib_rule_hdr: tos (IPv4 DSCP selector) and flags (FIB_RULE_INVERT = "not", …). */
  tos: number;
  flags: number;
  /** FRA_SUPPRESS_PREFIXLEN: 0xffffffff (-1) when not set — the kernel always reports it. */
  suppressPrefixlen?: number;
  /** Attribute types present besides those `Rule` and the fields above decode. */
  otherAttributes: number[];
}

/** The attribute types decodeRules and decodeRuleDetails account for. */
const FRA_SUPPRESS_PREFIXLEN = 14;
const DECODED_RULE_ATTRIBUTES: ReadonlySet<number> = new Set([...Object.values(FRA), FRA_SUPPRESS_PREFIXLEN]);

/** decodeRules, with the details (RuleDetail) of each rule. */
export function decodeRuleDetails(bodies: readonly Buffer[]): RuleDetail[] {
  const out: RuleDetail[] = [];
  for (const body of bodies) {
    const fam = body.readUInt8(0);
    if (fam !== 2 && fam !== 10) continue;
    const rule = decodeRules([body])[0]!;
    const a = parseAttrs(body, 12);
    const detail: RuleDetail = { ...rule, tos: body.readUInt8(3), flags: body.readUInt32LE(8), otherAttributes: [...a.keys()].filter((t) => !DECODED_RULE_ATTRIBUTES.has(t)).sort((x, y) => x - y) };
    const suppress = getU32(a.get(FRA_SUPPRESS_PREFIXLEN));
    if (suppress !== undefined) detail.suppressPrefixlen = suppress;
    out.push(detail);
  }
  return out;
}

/** Twin: `ip -d -N -j rule show` for both families (one in-process dump), with every rule's details. */
export async function listRuleDetails(ns: NetnsRef): Promise<RuleDetail[]> {
  return netlinkRead(ns, ['-d', 'rule', 'show'], async () => decodeRuleDetails(await rtnlDump(ns, RTM.GETRULE, RULE_DUMP_BODY, RTM.NEWRULE)));
}
