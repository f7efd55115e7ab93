/**
 * Compiles a firewall expression (the wirefilter AST of src/model/expression) into nftables JSON match
 * expressions, in disjunctive normal form: a list of alternatives, each a list of matches that must all hold.
 * nftables rules are conjunctions, so one firewall rule becomes one nft rule per alternative, all sharing the
 * rule's named counter and verdict — "first matching rule wins" is preserved because the alternatives of a rule
 * are consecutive and end in the same verdict.
 *
 * Semantics of a field the packet lacks (wirefilter leaves this to the scheme; we follow Magic Firewall's intent):
 * a test on a field the packet does not have is false — `tcp.dstport == 22` and `tcp.dstport != 22` are both false
 * for a UDP packet — and `not` negates the whole test, so `not tcp.dstport == 22` is true for UDP. nftables gives
 * the positive half for free (a `tcp dport` match implies the packet is TCP); the negated half is spelled out as
 * "lacks the field, or has it and the opposite holds". IP fields exist in every packet; comparing an address of
 * the other family is unordered (wirefilter), so only `!=` holds.
 */

import type { CompareOp, Expr, IntRange, IpSetMember } from '../../model/expression/index.js';
import { PROTOCOLS } from '../../model/expression/index.js';

/** One nftables JSON expression statement (a `match`). Kept loose: it is handed to `nft -j` as data. */
export type NftMatch = { match: { op: string; left: unknown; right: unknown } };
/** All matches hold. */
export type Conjunction = NftMatch[];
/** At least one alternative holds; [] is "never", [[]] is "always". */
export type Dnf = Conjunction[];

/** Beyond this many alternatives per rule the expression is refused rather than exploding the ruleset. */
export const MAX_ALTERNATIVES = 256;

export class FirewallCompileError extends Error {
  override name = 'FirewallCompileError';
}

const NEVER: Dnf = [];
const ALWAYS: Dnf = [[]];

function match(left: unknown, op: string, right: unknown): NftMatch {
  return { match: { op, left, right } };
}

const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const meta = (key: string) => ({ meta: { key } });
const nfproto = (family: 4 | 6, op: '==' | '!=' = '==') => match(meta('nfproto'), op, family === 4 ? 'ipv4' : 'ipv6');
const l4proto = (numbers: number[], op: '==' | '!=' = '==') =>
  match(meta('l4proto'), op, numbers.length === 1 ? numbers[0] : { set: numbers });

const NEGATE: Record<CompareOp, CompareOp> = { '==': '!=', '!=': '==', '<': '>=', '<=': '>', '>': '<=', '>=': '<' };

function or(...parts: Dnf[]): Dnf {
  const out = parts.flat();
  if (out.length > MAX_ALTERNATIVES) tooComplex(out.length);
  return out;
}

function and(...parts: Dnf[]): Dnf {
  let acc: Dnf = ALWAYS;
  for (const p of parts) {
    if (p.length === 0) return NEVER;
    if (acc.length * p.length > MAX_ALTERNATIVES) tooComplex(acc.length * p.length);
    const next: Dnf = [];
    for (const a of acc) for (const b of p) next.push([...a, ...b]);
    acc = next;
  }
  return acc;
}

function tooComplex(n: number): never {
  throw new FirewallCompileError(
    `expression expands to ${n} nftables rules (limit ${MAX_ALTERNATIVES}); split it into several rules`,
  );
}

/** `(value & mask) != 0` — TCP flags and wirefilter's bitwise and. */
function bitsSet(left: unknown, mask: unknown): NftMatch {
  return match({ '&': [left, mask] }, '!=', 0);
}

function intSet(set: IntRange[]): unknown {
  const members = set.map((r) => (r.from === r.to ? r.from : { range: [r.from, r.to] }));
  return members.length === 1 ? members[0] : { set: members };
}

function ipSetMember(m: IpSetMember): unknown {
  switch (m.type) {
    case 'address':
      return m.address;
    case 'cidr':
      return { prefix: { addr: m.address, len: m.prefix } };
    case 'range':
      return { range: [m.first, m.last] };
  }
}

const TCP_FLAG: Record<string, string> = {
  'tcp.flags.syn': 'syn',
  'tcp.flags.ack': 'ack',
  'tcp.flags.fin': 'fin',
  'tcp.flags.reset': 'rst',
  'tcp.flags.push': 'psh',
  'tcp.flags.urg': 'urg',
  'tcp.flags.ecn': 'ecn',
  'tcp.flags.cwr': 'cwr',
};

const ICMP_PROTOS = [1, 58]; // ICMP for IPv4, ICMPv6 for IPv6: Cloudflare's icmp.* covers both.

/**
 * An integer field as a list of (requirement, nft left-hand side) per packet family/protocol that has it.
 * A packet matches `field op v` when it meets one requirement and its value there satisfies the op.
 */
function intFieldSources(field: string): Array<{ requires: NftMatch[]; left: unknown }> {
  switch (field) {
    // meta length is the length from the network header on: the IP packet's length for both families.
    case 'ip.len':
      return [{ requires: [], left: meta('length') }];
    case 'ip.ttl':
      return [
        { requires: [nfproto(4)], left: payload('ip', 'ttl') },
        { requires: [nfproto(6)], left: payload('ip6', 'hoplimit') },
      ];
    case 'tcp.srcport':
      return [{ requires: [l4proto([6])], left: payload('th', 'sport') }];
    case 'tcp.dstport':
      return [{ requires: [l4proto([6])], left: payload('th', 'dport') }];
    case 'udp.srcport':
      return [{ requires: [l4proto([17])], left: payload('th', 'sport') }];
    case 'udp.dstport':
      return [{ requires: [l4proto([17])], left: payload('th', 'dport') }];
    // Type and code are the first two bytes of both ICMP and ICMPv6: raw transport-header payload.
    case 'icmp.type':
      return [{ requires: [l4proto(ICMP_PROTOS)], left: { payload: { base: 'th', offset: 0, len: 8 } } }];
    case 'icmp.code':
      return [{ requires: [l4proto(ICMP_PROTOS)], left: { payload: { base: 'th', offset: 8, len: 8 } } }];
  }
  throw new FirewallCompileError(`field ${field} is not an integer field`);
}

/**
 * "The packet has the field and `test(left)` holds" (positive) or its negation "lacks it, or has it and the
 * opposite holds", over every source of an integer field.
 */
function overSources(
  field: string,
  negated: boolean,
  test: (left: unknown) => NftMatch,
  opposite: (left: unknown) => NftMatch,
): Dnf {
  const sources = intFieldSources(field);
  if (!negated) return or(...sources.map((s) => and([s.requires], [[test(s.left)]])));
  // ¬(∨ (req_i ∧ t_i)) = ∧ (¬req_i ∨ (req_i ∧ ¬t_i)); a source with no requirement is present in every packet.
  return and(
    ...sources.map((s) =>
      s.requires.length === 0
        ? [[opposite(s.left)]]
        : or(
            s.requires.map((r) => negateSimple(r)),
            [[...s.requires, opposite(s.left)]],
          ),
    ),
  );
}

/** Negates one `==`/`!=` match (requirements are always of that form). */
function negateSimple(m: NftMatch): Conjunction {
  const op = m.match.op === '==' ? '!=' : '==';
  return [match(m.match.left, op, m.match.right)];
}

/** An IP field split by family: the v4 and v6 halves of a test. */
function ipFieldLeft(field: string, family: 4 | 6): unknown {
  return payload(family === 4 ? 'ip' : 'ip6', field === 'ip.src' ? 'saddr' : 'daddr');
}

function compile(e: Expr, negated: boolean): Dnf {
  switch (e.kind) {
    case 'not':
      return compile(e.expr, !negated);
    case 'and':
      return negated ? or(...e.terms.map((t) => compile(t, true))) : and(...e.terms.map((t) => compile(t, false)));
    case 'or':
      return negated ? and(...e.terms.map((t) => compile(t, true))) : or(...e.terms.map((t) => compile(t, false)));
    case 'xor': {
      // a ^ b = (a ∧ ¬b) ∨ (¬a ∧ b); folded left over n terms (odd parity).
      const [first, ...rest] = e.terms;
      let acc: Expr = first!;
      for (const t of rest) {
        acc = {
          kind: 'or',
          terms: [
            { kind: 'and', terms: [acc, { kind: 'not', expr: t }] },
            { kind: 'and', terms: [{ kind: 'not', expr: acc }, t] },
          ],
        };
      }
      return compile(acc, negated);
    }
    case 'flag': {
      const flag = TCP_FLAG[e.field]!;
      const left = payload('tcp', 'flags');
      const isTcp = l4proto([6]);
      if (!negated) return [[isTcp, bitsSet(left, flag)]];
      return [[l4proto([6], '!=')], [isTcp, match({ '&': [left, flag] }, '==', 0)]];
    }
    case 'bitand':
      return overSources(
        e.field,
        negated,
        (l) => bitsSet(l, e.mask),
        (l) => match({ '&': [l, e.mask] }, '==', 0),
      );
    case 'compare':
      if (e.field === 'ip.proto') {
        const op = negated ? NEGATE[e.op] : e.op;
        return [[l4proto([PROTOCOLS[e.value]], op as '==' | '!=')]];
      }
      if (e.field === 'ip.src' || e.field === 'ip.dst') {
        const { family, address } = e.value;
        const left = ipFieldLeft(e.field, family);
        const sameFamily: Conjunction = [nfproto(family), match(left, negated ? NEGATE[e.op] : e.op, address)];
        // Other-family packets are unordered against this address: only `!=` holds for them (so its
        // negation does not, and the negation of every other operator does).
        const otherFamilyMatches = (e.op === '!=') !== negated;
        return otherFamilyMatches ? [[nfproto(family, '!=')], sameFamily] : [sameFamily];
      }
      return overSources(
        e.field,
        negated,
        (l) => match(l, e.op, e.value),
        (l) => match(l, NEGATE[e.op], e.value),
      );
    case 'in':
      if (e.field === 'ip.proto') {
        if (e.set.length === 0) return negated ? ALWAYS : NEVER;
        return [[l4proto([...new Set(e.set.map((p) => PROTOCOLS[p]))], negated ? '!=' : '==')]];
      }
      if (e.field === 'ip.src' || e.field === 'ip.dst') {
        const field = e.field;
        const byFamily = ([4, 6] as const).map((family) => ({
          family,
          members: e.set.filter((m) => m.family === family).map(ipSetMember),
        }));
        // Per family: positive = has the family and the address is in its members; a family with no
        // members never matches (and always matches when negated).
        const parts = byFamily.map(({ family, members }): Dnf => {
          if (members.length === 0) return negated ? [[nfproto(family)]] : NEVER;
          const right = members.length === 1 ? members[0] : { set: members };
          return [[nfproto(family), match(ipFieldLeft(field, family), negated ? '!=' : '==', right)]];
        });
        // Every packet is exactly one family, so both the positive and the negated form are a disjunction.
        return or(...parts);
      }
      {
        const members = intSet(e.set as IntRange[]); // the IP and protocol sets returned above
        if (e.set.length === 0) return negated ? ALWAYS : NEVER;
        return overSources(
          e.field,
          negated,
          (l) => match(l, '==', members),
          (l) => match(l, '!=', members),
        );
      }
  }
}

type Family = 'ipv4' | 'ipv6';
const ALL_FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/** Values a `meta nfproto|l4proto` match allows, as a predicate over one value. */
function allows(m: NftMatch, v: string | number): boolean {
  const r = m.match.right as string | number | { set: Array<string | number> };
  const inRight = typeof r === 'object' ? r.set.includes(v) : r === v;
  return m.match.op === '==' ? inRight : !inRight;
}

function metaKey(m: NftMatch): string | undefined {
  const left = m.match.left as { meta?: { key: string } };
  return left.meta?.key;
}

/** The family a payload match implies (nft adds that dependency itself), if any. */
function impliedFamily(m: NftMatch): Family | undefined {
  const left = m.match.left as { payload?: { protocol?: string } };
  if (left.payload?.protocol === 'ip') return 'ipv4';
  if (left.payload?.protocol === 'ip6') return 'ipv6';
  return undefined;
}

/**
 * Folds a conjunction's family and transport-protocol constraints (explicit `meta nfproto`/`meta l4proto`
 * matches, and the ones payload matches imply) into at most one match each, or null when they contradict.
 * Needed because the distribution of `and` over `or` freely combines alternatives (`tcp.dstport == 1 or
 * udp.dstport == 1` under a negation yields "TCP and UDP" conjunctions), and nft refuses a rule whose protocols
 * conflict instead of treating it as never matching.
 */
function simplify(conj: Conjunction): Conjunction | null {
  let families = [...ALL_FAMILIES];
  const l4Matches: NftMatch[] = [];
  const rest: NftMatch[] = [];
  const seen = new Set<string>();
  for (const m of conj) {
    const key = metaKey(m);
    if (key === 'nfproto') {
      families = families.filter((f) => allows(m, f));
      continue;
    }
    if (key === 'l4proto') {
      l4Matches.push(m);
      continue;
    }
    const implied = impliedFamily(m);
    if (implied) families = families.filter((f) => f === implied);
    if ((m.match.left as { payload?: { protocol?: string } }).payload?.protocol === 'tcp') l4Matches.push(l4proto([6]));
    const text = JSON.stringify(m);
    if (!seen.has(text)) rest.push(m);
    seen.add(text);
  }
  if (families.length === 0) return null;
  const out: Conjunction = [];
  if (families.length === 1) out.push(nfproto(families[0] === 'ipv4' ? 4 : 6));
  if (l4Matches.length > 0) {
    const required = l4Matches.filter((m) => m.match.op === '==');
    const excluded = l4Matches.filter((m) => m.match.op === '!=');
    if (required.length > 0) {
      // Candidates come from the first `==`; every other constraint filters them.
      const first = required[0]!.match.right as number | { set: number[] };
      const candidates = (typeof first === 'object' ? first.set : [first]).filter((v) => l4Matches.every((m) => allows(m, v)));
      if (candidates.length === 0) return null;
      out.push(l4proto(candidates));
    } else {
      const values = [...new Set(excluded.flatMap((m) => {
        const r = m.match.right as number | { set: number[] };
        return typeof r === 'object' ? r.set : [r];
      }))];
      out.push(l4proto(values, '!='));
    }
  }
  return [...out, ...rest];
}

/** The expression as alternatives of nft matches. Throws FirewallCompileError when it is too large. */
export function compileExpression(expr: Expr): Dnf {
  const out: Dnf = [];
  const seen = new Set<string>();
  for (const conj of compile(expr, false)) {
    const simple = simplify(conj);
    if (simple === null) continue; // can never match
    const text = JSON.stringify(simple);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push(simple);
  }
  return out;
}
