import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ExpressionError,
  FIELDS,
  FIELD_NAMES,
  PROTO_NAMES,
  parseExpression,
  printExpression,
  type Expr,
  type IntField,
  type IpSetMember,
} from '../../src/model/expression/index.js';

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
const ipText = (ip: RawIp) => (ip.family === 4 ? v4Text(ip.parts) : canonicalV6(ip.parts));
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
const rawIp = fc.oneof(rawIp4, rawIp6);

const ipAddress = rawIp.map((ip) => ({ family: ip.family, address: ipText(ip) }));

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
const { expr: exprArb } = fc.letrec<{ expr: Expr; not: Expr; logical: Expr }>((tie) => ({
  expr: fc.oneof({ depthSize: 'small', withCrossShrink: true }, atom, tie('not'), tie('logical')),
  not: tie('expr').map((e): Expr => ({ kind: 'not', expr: e })),
  logical: fc
    .tuple(fc.constantFrom('and' as const, 'or' as const, 'xor' as const), fc.array(tie('expr'), { minLength: 2, maxLength: 4 }))
    .map(([kind, terms]): Expr => ({ kind, terms: terms.flatMap((t) => (t.kind === kind ? t.terms : [t])) })),
}));

/** Parsing anything either yields an AST that prints and re-parses to itself, or throws ExpressionError. */
function checkParse(text: string): void {
  let ast: Expr;
  try {
    ast = parseExpression(text);
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw new Error(`${JSON.stringify(text)} threw a non-ExpressionError: ${String(e)}`);
    assert.ok(e.position >= 0 && e.position <= text.length, `position ${e.position} outside ${JSON.stringify(text)}`);
    assert.ok(e.expected.length > 0);
    return;
  }
  assert.deepEqual(parseExpression(printExpression(ast)), ast, text);
}

// Token soup: pieces of the language, so random combinations often get deep into the parser.
const TOKENS = [
  'ip.src', 'ip.dst', 'ip.proto', 'ip.len', 'ip.ttl', 'tcp.dstport', 'udp.srcport', 'icmp.type', 'tcp.flags.syn',
  'tcp.flags.rst', 'tcp.flags', 'and', 'or', 'xor', 'not', '&&', '||', '^^', '!', '(', ')', '{', '}', '==', '!=',
  '<', '<=', '>', '>=', 'eq', 'in', '&', 'contains', '~', '80', '0x1f', '010', '-1', '70000', '..', '1.2.3.4',
  '10.0.0.0/8', '::1', '2001:db8::/32', '"tcp"', '"udp', 'r#"gre"#', '74:63:70', '"\\x74cp"', '$list', ',', ' ',
  '\n', '\t', '/', ':', '.', '"', '\\', 'é', '😀',
];
const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 20 }).map((ts) => ts.join(''));
const spacedSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 20 }).map((ts) => ts.join(' '));

const mutation = fc.oneof(
  fc.record({ type: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ type: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...TOKENS) }),
  fc.record({ type: fc.constant('replace' as const), at: fc.nat(), text: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 2 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
function mutate(text: string, muts: Mutation[]): string {
  for (const m of muts) {
    const at = text.length === 0 ? 0 : m.at % (text.length + 1);
    if (m.type === 'delete') text = text.slice(0, at) + text.slice(at + m.len);
    else if (m.type === 'insert') text = text.slice(0, at) + m.text + text.slice(at);
    else text = text.slice(0, at) + m.text + text.slice(at + 1);
  }
  return text;
}

test('random ASTs: printExpression then parseExpression gives the same AST', { timeout: 20_000 }, () => {
  fc.assert(
    fc.property(exprArb, (ast) => {
      assert.deepEqual(parseExpression(printExpression(ast)), ast);
    }),
    { numRuns: 400 },
  );
});

test('random strings only ever throw ExpressionError, and anything accepted round-trips', { timeout: 20_000 }, () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), checkParse), { numRuns: 1000 });
  fc.assert(fc.property(tokenSoup, checkParse), { numRuns: 1500 });
  fc.assert(fc.property(spacedSoup, checkParse), { numRuns: 1500 });
});

test('mutated valid expressions only ever throw ExpressionError, and anything accepted round-trips', { timeout: 20_000 }, () => {
  fc.assert(
    fc.property(exprArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (ast, muts) => {
      checkParse(mutate(printExpression(ast), muts));
    }),
    { numRuns: 800 },
  );
});

test('pathological input finishes: long flat chains and deep-but-legal nesting', { timeout: 20_000 }, () => {
  const chain = Array.from({ length: 5000 }, (_, i) => `tcp.dstport == ${i}`).join(' or ');
  const e = parseExpression(chain);
  assert.equal(e.kind, 'or');
  assert.equal((e as Extract<Expr, { kind: 'or' }>).terms.length, 5000);
  const set = `ip.src in {${Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join(' ')}}`;
  assert.equal(parseExpression(set).kind, 'in');
  checkParse('('.repeat(10_000));
  checkParse('not '.repeat(10_000) + 'tcp.flags.syn');
  checkParse(`ip.proto == "${'\\'.repeat(10_000)}`);
  checkParse(`ip.proto == r${'#'.repeat(300)}"tcp"${'#'.repeat(300)}`);
});
