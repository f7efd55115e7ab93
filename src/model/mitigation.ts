/**
 * Mitigation rules: operator-wide DoS rules that every edge applies in XDP, before any customer firewall.
 * One store key per rule (keys.mitigation(id)), so rules are added, expire and are deleted independently.
 *
 *   prefix 203.0.113.0/24, protocol udp, destination_ports 53..53, length 1000..65535 → drop
 *   prefix 203.0.113.10/32, protocol tcp, tcp_flags {set: [syn], unset: [ack]} → rate-limit 1000 pps, burst 2000
 *
 * A rule matches packets whose DESTINATION lies in its prefix. The data plane looks up the longest matching prefix
 * only, so the rules that apply to a prefix are its own plus those of every prefix covering it (effectiveRuleSets):
 * more specific prefixes first, then by creation time; the first matching rule decides.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ConflictError, joinField, ValidationError } from './errors.js';
import { cidrContains, compareCidr, formatCidr, parseCidr, type Cidr } from './ip.js';
import { cidrField } from './prefix.js';
import { Description, Id } from './schemas.js';
import { checkShape } from './shape.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { pointerToField } from './shape.js';

/** Rules the data plane evaluates for one destination prefix (OT_RULES_PER_PREFIX in bpf/opentransit_abi.h). */
export const MITIGATION_RULES_PER_PREFIX = 8;
/** Rule slots of the data plane (OT_RULE_SLOTS): at most this many active rules in all. */
export const MITIGATION_MAX_RULES = 4096;
/** Distinct destination prefixes with rules (OT_MITIGATION_PREFIXES_MAX). */
export const MITIGATION_MAX_PREFIXES = 4096;
/** The longest expiry accepted: ten years (a "permanent" rule simply has none). */
export const MITIGATION_MAX_EXPIRES_IN_S = 10 * 365 * 86400;

/** Protocol names accepted in rules, with their IP protocol numbers. */
export const PROTOCOLS = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, icmpv6: 58 } as const;
export type ProtocolName = keyof typeof PROTOCOLS;

export const TCP_FLAGS = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 } as const;
export type TcpFlagName = keyof typeof TCP_FLAGS;

const Range = (what: string, max: number) =>
  Type.Object(
    { min: Type.Integer({ minimum: 0, maximum: max }), max: Type.Integer({ minimum: 0, maximum: max }) },
    { additionalProperties: false, description: `${what}, inclusive.` },
  );
const PortRange = Range('TCP/UDP ports', 65535);
const LengthRange = Range('IP length in bytes (IPv4 total length; IPv6 40 + payload length)', 65535);
const TtlRange = Range('IPv4 TTL / IPv6 hop limit', 255);
export type NumberRange = { min: number; max: number };

const FlagName = Type.Union(
  [
    Type.Literal('fin'), Type.Literal('syn'), Type.Literal('rst'), Type.Literal('psh'),
    Type.Literal('ack'), Type.Literal('urg'), Type.Literal('ece'), Type.Literal('cwr'),
  ],
  { description: 'fin, syn, rst, psh, ack, urg, ece or cwr' },
);
const TcpFlags = Type.Object(
  {
    set: Type.Optional(Type.Array(FlagName, { maxItems: 8, description: 'Flags that must be set.' })),
    unset: Type.Optional(Type.Array(FlagName, { maxItems: 8, description: 'Flags that must be clear.' })),
  },
  { additionalProperties: false },
);
const Protocol = Type.Union(
  [
    Type.Literal('any'),
    Type.Literal('icmp'), Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('gre'), Type.Literal('esp'), Type.Literal('icmpv6'),
    Type.Integer({ minimum: 1, maximum: 255, description: 'An IP protocol number.' }),
  ],
  { description: 'any, icmp, tcp, udp, gre, esp, icmpv6, or an IP protocol number 1–255.' },
);
const MitigationAction = Type.Union([Type.Literal('drop'), Type.Literal('rate-limit')]);
const RateLimit = Type.Object(
  {
    pps: Type.Integer({ minimum: 1, maximum: 0xffffffff, description: 'Packets per second admitted, per edge server.' }),
    burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 0xffffffff, description: 'Bucket depth in packets (default: pps).' })),
  },
  { additionalProperties: false },
);

export const MitigationInput = Type.Object(
  {
    prefix: Type.String({ maxLength: 64, description: 'Destination network (IPv4 or IPv6 CIDR, host bits zero).' }),
    protocol: Type.Optional(Protocol),
    source_ports: Type.Optional(PortRange),
    destination_ports: Type.Optional(PortRange),
    tcp_flags: Type.Optional(TcpFlags),
    length: Type.Optional(LengthRange),
    ttl: Type.Optional(TtlRange),
    action: MitigationAction,
    rate_limit: Type.Optional(RateLimit),
    expires_at: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 time after which the rule no longer applies.' })),
    expires_in: Type.Optional(Type.Integer({ minimum: 1, maximum: MITIGATION_MAX_EXPIRES_IN_S, description: 'Seconds from now (instead of expires_at).' })),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export type MitigationInput = Static<typeof MitigationInput>;

/** A stored rule: what agents read. Optional matchers are absent when they match anything. */
export const Mitigation = Type.Object({
  id: Id,
  prefix: Type.String(),
  protocol: Protocol,
  source_ports: Type.Optional(PortRange),
  destination_ports: Type.Optional(PortRange),
  tcp_flags: Type.Optional(Type.Object({ set: Type.Array(FlagName), unset: Type.Array(FlagName) })),
  length: Type.Optional(LengthRange),
  ttl: Type.Optional(TtlRange),
  action: MitigationAction,
  rate_limit: Type.Optional(Type.Object({ pps: Type.Integer(), burst: Type.Integer() })),
  /** null: never expires. */
  expires_at: Type.Union([Type.String(), Type.Null()]),
  description: Type.String(),
  created_at: Type.String(),
});
export type Mitigation = Static<typeof Mitigation>;

function range(r: NumberRange | undefined, field: string, full: NumberRange): NumberRange | undefined {
  if (!r) return undefined;
  if (r.min > r.max) throw new ValidationError(joinField(field, 'max'), `must be at least min (${r.min}), got ${r.max}`);
  // A full range matches anything: store it as absent, as if it had not been given.
  return r.min === full.min && r.max === full.max ? undefined : { min: r.min, max: r.max };
}

/**
 * Validates a new rule. `now` fixes the clock for expiry checks. Throws ValidationError naming the field.
 */
export function parseMitigationInput(input: unknown, id: string, now: Date = new Date()): Mitigation {
  const m = checkShape(MitigationInput, input);
  const prefix = formatCidr(cidrField(m.prefix, 'prefix'));
  const protocol = m.protocol ?? 'any';
  const number = protocolNumber(protocol);
  const sourcePorts = range(m.source_ports, 'source_ports', { min: 0, max: 65535 });
  const destinationPorts = range(m.destination_ports, 'destination_ports', { min: 0, max: 65535 });
  for (const [field, r] of [['source_ports', sourcePorts], ['destination_ports', destinationPorts]] as const) {
    if (r && number !== 0 && number !== PROTOCOLS.tcp && number !== PROTOCOLS.udp)
      throw new ValidationError(field, `needs protocol tcp, udp or any (${String(protocol)} packets have no ports)`);
  }
  let tcpFlags: Mitigation['tcp_flags'];
  if (m.tcp_flags) {
    if (number !== PROTOCOLS.tcp) throw new ValidationError('tcp_flags', 'needs protocol tcp');
    const set = [...new Set(m.tcp_flags.set ?? [])];
    const unset = [...new Set(m.tcp_flags.unset ?? [])];
    const both = set.find((f) => unset.includes(f));
    if (both) throw new ValidationError('tcp_flags', `${both} cannot be both set and unset`);
    if (set.length + unset.length === 0) throw new ValidationError('tcp_flags', 'must name at least one flag in set or unset');
    tcpFlags = { set: sortFlags(set), unset: sortFlags(unset) };
  }
  const length = range(m.length, 'length', { min: 0, max: 65535 });
  const ttl = range(m.ttl, 'ttl', { min: 0, max: 255 });
  let rateLimit: Mitigation['rate_limit'];
  if (m.action === 'rate-limit') {
    if (!m.rate_limit) throw new ValidationError('rate_limit', 'is required when action is rate-limit');
    rateLimit = { pps: m.rate_limit.pps, burst: m.rate_limit.burst ?? m.rate_limit.pps };
  } else if (m.rate_limit) {
    throw new ValidationError('rate_limit', 'is only for action rate-limit');
  }
  let expiresAt: string | null = null;
  if (m.expires_at !== undefined && m.expires_in !== undefined) throw new ValidationError('expires_in', 'give expires_at or expires_in, not both');
  if (m.expires_in !== undefined) expiresAt = new Date(now.getTime() + m.expires_in * 1000).toISOString();
  if (m.expires_at !== undefined) {
    const t = Date.parse(m.expires_at);
    if (!/^\d{4}-\d\d-\d\dT/.test(m.expires_at) || Number.isNaN(t))
      throw new ValidationError('expires_at', `must be an ISO 8601 time such as 2030-01-01T00:00:00Z, got ${JSON.stringify(m.expires_at)}`);
    if (t <= now.getTime()) throw new ValidationError('expires_at', `${m.expires_at} is in the past`);
    if (t > now.getTime() + MITIGATION_MAX_EXPIRES_IN_S * 1000) throw new ValidationError('expires_at', 'must be within ten years');
    expiresAt = new Date(t).toISOString();
  }
  return {
    id,
    prefix,
    protocol,
    ...(sourcePorts ? { source_ports: sourcePorts } : {}),
    ...(destinationPorts ? { destination_ports: destinationPorts } : {}),
    ...(tcpFlags ? { tcp_flags: tcpFlags } : {}),
    ...(length ? { length } : {}),
    ...(ttl ? { ttl } : {}),
    action: m.action,
    ...(rateLimit ? { rate_limit: rateLimit } : {}),
    expires_at: expiresAt,
    description: m.description ?? '',
    created_at: now.toISOString(),
  };
}

function sortFlags(flags: TcpFlagName[]): TcpFlagName[] {
  return flags.sort((a, b) => TCP_FLAGS[a] - TCP_FLAGS[b]);
}

/** The IP protocol number of a rule's protocol; 0 = any. */
export function protocolNumber(p: Mitigation['protocol']): number {
  if (p === 'any') return 0;
  if (typeof p === 'number') return p;
  return PROTOCOLS[p];
}

/** The TCP flags test of a rule as (mask, value): matches when (flags & mask) == value. */
export function tcpFlagsMatch(f: Mitigation['tcp_flags']): { mask: number; value: number } {
  if (!f) return { mask: 0, value: 0 };
  const bits = (names: readonly TcpFlagName[]) => names.reduce((acc, n) => acc | TCP_FLAGS[n], 0);
  const value = bits(f.set);
  return { mask: value | bits(f.unset), value };
}

export function isExpired(m: Pick<Mitigation, 'expires_at'>, nowMs: number): boolean {
  return m.expires_at !== null && Date.parse(m.expires_at) <= nowMs;
}

const mitigationCheck = TypeCompiler.Compile(Mitigation);

/** Parses a stored rule (keys.mitigation(id)); throws Error naming the first bad field. */
export function decodeMitigation(text: string): Mitigation {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`mitigation rule is not JSON: ${(err as Error).message}`);
  }
  if (!mitigationCheck.Check(value)) {
    const first = mitigationCheck.Errors(value).First();
    throw new Error(`mitigation rule: ${first ? `${pointerToField(first.path) || '(root)'}: ${first.message}` : 'invalid'}`);
  }
  parseCidr(value.prefix);
  return value;
}

export interface EffectiveRuleSet {
  /** The destination prefix the data plane keys on. */
  prefix: string;
  /** Rules in evaluation order: the prefix's own, then those of covering prefixes (more specific first). */
  rules: Mitigation[];
}

/**
 * What the data plane holds for a set of active rules: one rule set per distinct prefix, holding the rules of that
 * prefix and of every prefix covering it, because the XDP program reads the longest matching prefix only. Order:
 * longer prefixes first, then by created_at, then id — stable, so agents on every edge write the same sets.
 */
export function effectiveRuleSets(rules: readonly Mitigation[]): EffectiveRuleSet[] {
  const parsed = rules.map((r) => ({ rule: r, cidr: parseCidr(r.prefix) }));
  const order = (a: { rule: Mitigation; cidr: Cidr }, b: { rule: Mitigation; cidr: Cidr }) =>
    b.cidr.length - a.cidr.length ||
    (a.rule.created_at < b.rule.created_at ? -1 : a.rule.created_at > b.rule.created_at ? 1 : 0) ||
    (a.rule.id < b.rule.id ? -1 : a.rule.id > b.rule.id ? 1 : 0);
  const prefixes = new Map<string, Cidr>();
  for (const p of parsed) prefixes.set(formatCidr(p.cidr), p.cidr);
  return [...prefixes.values()]
    .sort(compareCidr)
    .map((cidr) => ({
      prefix: formatCidr(cidr),
      rules: parsed
        .filter((p) => cidrContains(p.cidr, cidr))
        .sort(order)
        .map((p) => p.rule),
    }));
}

/**
 * Refuses a set of active rules the data plane cannot hold: more than MITIGATION_RULES_PER_PREFIX rules applying to
 * one prefix (its own and its covering prefixes' together), more distinct prefixes or rules than it has room for.
 * `subject` is the rule being added, named in the error.
 */
export function checkMitigationLimits(active: readonly Mitigation[], subject?: Mitigation): void {
  if (active.length > MITIGATION_MAX_RULES)
    throw new ConflictError(undefined, `at most ${MITIGATION_MAX_RULES} active mitigation rules fit the data plane`);
  const sets = effectiveRuleSets(active);
  if (sets.length > MITIGATION_MAX_PREFIXES)
    throw new ConflictError('prefix', `at most ${MITIGATION_MAX_PREFIXES} distinct prefixes can have mitigation rules`);
  for (const s of sets) {
    if (s.rules.length <= MITIGATION_RULES_PER_PREFIX) continue;
    if (subject && !s.rules.some((r) => r.id === subject.id)) continue;
    throw new ConflictError(
      'prefix',
      `${s.prefix} would have ${s.rules.length} rules applying to it (its own and those of covering prefixes); ` +
        `the data plane evaluates at most ${MITIGATION_RULES_PER_PREFIX} per prefix`,
    );
  }
}
