import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExpressionError, parseExpression, printExpression, type Expr } from '../../src/model/expression/index.js';
import { exprArb } from '../support/expression-arbitrary.js';

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
