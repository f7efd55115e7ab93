/** fast-check generators of firewall expression ASTs in canonical form (shared by property tests). */
import fc from 'fast-check';
import { FIELDS, FIELD_NAMES, PROTO_NAMES, type Expr, type IntField, type IpSetMember } from '../../src/model/expression/index.js';

// Canonical IPv6 text comes from the WHATWG URL parser (RFC 5952 compression, lowercase, no dotted quad),
// independent of the code under test.
const canonicalV6 = (groups: number[]) => new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]`).hostname.slice(1, -1);
const v4Text = (b: number[]) => b.join('.');

type Family = 4 | 6;
interface RawIp {
  family: Family;
  /** 4 bytes or 8 groups. */
  parts: number[];
}
const bitsPerPart = (f: Family) => (f === 4 ? 8 : 16);
export const ipText = (ip: RawIp) => (ip.family === 4 ? v4Text(ip.parts) : canonicalV6(ip.parts));
const maskParts = (ip: RawIp, prefix: number): RawIp => {
  const w = bitsPerPart(ip.family);
  return {
    family: ip.family,
    parts: ip.parts.map((p, i) => {
      const keep = Math.max(0, Math.min(w, prefix - w * i));
      return keep === 0 ? 0 : p & (((1 << w) - 1) ^ ((1 << (w - keep)) - 1));
    }),
  };
};
const cmpParts = (a: RawIp, b: RawIp) => {
  for (let i = 0; i < a.parts.length; i++) if (a.parts[i] !== b.parts[i]) return a.parts[i]! - b.parts[i]!;
  return 0;
};

// Zero-heavy groups so that `::` compression and its edge cases come up often.
const v6Group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const rawIp4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }).map((parts): RawIp => ({ family: 4, parts }));
const rawIp6 = fc.array(v6Group, { minLength: 8, maxLength: 8 }).map((parts): RawIp => ({ family: 6, parts }));
export const rawIp = fc.oneof(rawIp4, rawIp6);

export const ipAddress = rawIp.map((ip) => ({ family: ip.family, address: ipText(ip) }));

const ipMember: fc.Arbitrary<IpSetMember> = fc.oneof(
  ipAddress.map((a) => ({ type: 'address' as const, ...a })),
  rawIp.chain((ip) =>
    fc.integer({ min: 0, max: ip.family === 4 ? 31 : 127 }).map((prefix) => ({
      type: 'cidr' as const,
      family: ip.family,
      address: ipText(maskParts(ip, prefix)),
      prefix,
    })),
  ),
  fc.oneof(fc.tuple(rawIp4, rawIp4), fc.tuple(rawIp6, rawIp6)).map(([a, b]): IpSetMember => {
    const [first, last] = cmpParts(a, b) <= 0 ? [a, b] : [b, a];
    if (cmpParts(first, last) === 0) return { type: 'address', family: a.family, address: ipText(a) };
    return { type: 'range', family: a.family, first: ipText(first), last: ipText(last) };
  }),
);

const INT_FIELDS = FIELD_NAMES.filter((f) => FIELDS[f].type === 'int') as IntField[];
const FLAG_FIELDS = FIELD_NAMES.filter((f) => FIELDS[f].type === 'flag');
const OPS = ['==', '!=', '<', '<=', '>', '>='] as const;
const maxOf = (f: IntField) => (FIELDS[f] as { max: number }).max;
const intIn = (f: IntField) => fc.integer({ min: 0, max: maxOf(f) });

const atom: fc.Arbitrary<Expr> = fc.oneof(
  fc.constantFrom(...FLAG_FIELDS).map((field) => ({ kind: 'flag', field }) as Expr),
  fc.constantFrom(...INT_FIELDS).chain((field) =>
    fc.tuple(fc.constantFrom(...OPS), intIn(field)).map(([op, value]): Expr => ({ kind: 'compare', field, op, value })),
  ),
  fc.constantFrom(...INT_FIELDS).chain((field) => intIn(field).map((mask): Expr => ({ kind: 'bitand', field, mask }))),
  fc
    .tuple(fc.constantFrom('ip.src' as const, 'ip.dst' as const), fc.constantFrom(...OPS), ipAddress)
    .map(([field, op, value]): Expr => ({ kind: 'compare', field, op, value })),
  fc
    .tuple(fc.constantFrom('==' as const, '!=' as const), fc.constantFrom(...PROTO_NAMES))
    .map(([op, value]): Expr => ({ kind: 'compare', field: 'ip.proto', op, value })),
  fc.constantFrom(...INT_FIELDS).chain((field) =>
    fc
      .array(
        fc.tuple(intIn(field), intIn(field)).map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
        { maxLength: 5 },
      )
      .map((set): Expr => ({ kind: 'in', field, set })),
  ),
  fc
    .tuple(fc.constantFrom('ip.src' as const, 'ip.dst' as const), fc.array(ipMember, { maxLength: 4 }))
    .map(([field, set]): Expr => ({ kind: 'in', field, set })),
  fc.array(fc.constantFrom(...PROTO_NAMES), { maxLength: 4 }).map((set): Expr => ({ kind: 'in', field: 'ip.proto', set })),
);

/** Canonical ASTs: logical nodes have >= 2 terms and no term of their own kind (see ast.ts). */
export const { expr: exprArb } = fc.letrec<{ expr: Expr; not: Expr; logical: Expr }>((tie) => ({
  expr: fc.oneof({ depthSize: 'small', withCrossShrink: true }, atom, tie('not'), tie('logical')),
  not: tie('expr').map((e): Expr => ({ kind: 'not', expr: e })),
  logical: fc
    .tuple(fc.constantFrom('and' as const, 'or' as const, 'xor' as const), fc.array(tie('expr'), { minLength: 2, maxLength: 4 }))
    .map(([kind, terms]): Expr => ({ kind, terms: terms.flatMap((t) => (t.kind === kind ? t.terms : [t])) })),
}));

