/**
 * parseExpression: wirefilter's grammar for the fields in FIELDS, checked against cloudflare/wirefilter's
 * lexer and parser (not only its docs). Where wirefilter's behaviour is surprising we keep it, because a rule
 * that Magic Firewall accepts must be accepted here and mean the same:
 *
 * - Whitespace between tokens is only space, CR and LF (wirefilter rejects tabs there); the whole text is
 *   first trimmed of any Unicode whitespace, tabs included (Rust's `str::trim`).
 * - Keywords and operators are matched as prefixes, with no word boundary: `nottcp.flags.syn`,
 *   `tcp.dstport eq80` and `tcp.dstport == 80or tcp.flags.syn` are valid, while `80and` is a bad number
 *   because numbers swallow hex letters.
 * - `not`/`!` applies to the next operand only; then `and`/`&&` binds tighter than `xor`/`^^`, which binds
 *   tighter than `or`/`||`; mixing them without parentheses is allowed.
 * - At most 128 nested parentheses/`not`s (wirefilter's default max_nesting_depth).
 * - Integers: decimal, `0x` hex, and a leading `0` means octal. Sets `{…}` need no separator between members
 *   and may be empty. Ranges `a..b` (no spaces) and CIDRs exist only inside sets.
 * - Booleans stand alone: `tcp.flags.syn == true` is an error.
 *
 * We are stricter than wirefilter only where no packet could match: numbers outside the header field's range,
 * `ip.proto` strings that name no protocol. Operators wirefilter has but we do not support (string matching on
 * `ip.proto`, `in $list`, functions) are rejected with an error that says so.
 */

import type { CompareOp, Expr, IntRange, IpAddress, IpSetMember, Logical } from './ast.js';
import { ExpressionError } from './errors.js';
import {
  FIELD_NAMES,
  FIELDS,
  PROTO_NAMES,
  isProtoName,
  resolveField,
  type FieldName,
  type FlagField,
  type IntField,
  type IpField,
  type ProtoName,
} from './fields.js';
import { compareIp, formatIp, isIpTokenChar, networkOf, parseIpAddress, parsePrefixLength } from './ip.js';
import { lexBytes, lexInt } from './literals.js';

/** wirefilter's default ParserSettings::max_nesting_depth. */
export const MAX_NESTING_DEPTH = 128;

/** Between tokens wirefilter skips only these (tabs are deliberately excluded there). */
const isSpace = (c: string | undefined) => c === ' ' || c === '\r' || c === '\n';

/** Rust's char::is_whitespace (Unicode White_Space), used by the `str::trim` wirefilter applies first. */
const isRustWhitespace = (c: string) => /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/.test(c);

type LogicalKind = Logical['kind'];
/** Loosest first: a level's operands are parsed at the next level. */
const LEVELS: readonly LogicalKind[] = ['or', 'xor', 'and'];
const LOGICAL_TOKENS: ReadonlyArray<readonly [string, LogicalKind]> = [
  ['or', 'or'],
  ['||', 'or'],
  ['xor', 'xor'],
  ['^^', 'xor'],
  ['and', 'and'],
  ['&&', 'and'],
];

type OpToken = CompareOp | 'in' | '&' | 'string-op';
/** In wirefilter's order: earlier entries win when one is a prefix of the input (`<=` before `<`). */
const COMPARISON_TOKENS: ReadonlyArray<readonly [string, OpToken]> = [
  ['in', 'in'],
  ['eq', '=='],
  ['==', '=='],
  ['ne', '!='],
  ['!=', '!='],
  ['ge', '>='],
  ['>=', '>='],
  ['le', '<='],
  ['<=', '<='],
  ['gt', '>'],
  ['>', '>'],
  ['lt', '<'],
  ['<', '<'],
  ['&', '&'],
  ['bitwise_and', '&'],
  ['contains', 'string-op'],
  ['~', 'string-op'],
  ['matches', 'string-op'],
  ['wildcard', 'string-op'],
  ['strict wildcard', 'string-op'],
];

const ORDERING_OPS = ['==', '!=', '<', '<=', '>', '>=', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const EXPECT_OPERAND = ['a field name', '"not"', '"!"', '"("'];
const EXPECT_LOGICAL = ['"and"', '"or"', '"xor"'];
const CIDR_OUTSIDE_SET = 'CIDRs and ranges are only allowed inside sets, e.g. ip.src in {192.0.2.0/24}';

/**
 * Parses a firewall expression into the canonical AST (see ast.ts).
 * @throws ExpressionError naming the position and what was expected there.
 */
export function parseExpression(text: string): Expr {
  if (typeof text !== 'string') throw new ExpressionError(0, ['an expression string'], String(text));
  let start = 0;
  let end = text.length;
  while (start < end && isRustWhitespace(text[start]!)) start++;
  while (end > start && isRustWhitespace(text[end - 1]!)) end--;
  return new Parser(text.slice(start, end), start).parse();
}

class Parser {
  private pos = 0;
  /** End offset of the last boolean field read, to explain `tcp.flags.syn == true`. */
  private lastFlagEnd = -1;

  constructor(
    private readonly src: string,
    private readonly base: number,
  ) {}

  parse(): Expr {
    const expr = this.parseLevel(0, 0);
    if (this.pos < this.src.length) {
      const at = this.skipSpaceFrom(this.pos);
      this.fail(at, [...EXPECT_LOGICAL, 'end of input'], undefined, this.afterOperandHint(at));
    }
    return expr;
  }

  // ---- errors ------------------------------------------------------------------------------------

  private fail(at: number, expected: string[], found?: string, hint?: string): never {
    const shown = found ?? this.tokenAt(at);
    if (hint === undefined && this.src[at] === '\t') {
      hint = 'tabs are not allowed between tokens; use spaces or newlines';
    }
    if (hint === undefined && shown !== undefined && /^(AND|OR|XOR|NOT|IN|EQ|NE|LT|LE|GT|GE)$/i.test(shown) && shown !== shown.toLowerCase()) {
      hint = 'keywords are lowercase';
    }
    throw new ExpressionError(this.base + at, expected, shown, hint);
  }

  /** A short excerpt of the input at `at` to quote in an error, or undefined at the end. */
  private tokenAt(at: number): string | undefined {
    if (at >= this.src.length) return undefined;
    const m = /^[^\s(){}]{1,32}/.exec(this.src.slice(at, at + 32));
    return m ? m[0] : this.src.slice(at, at + 1);
  }

  private afterOperandHint(at: number): string | undefined {
    if (this.src.startsWith('..', at) || this.src[at] === '/') return CIDR_OUTSIDE_SET;
    if (at !== this.skipSpaceFrom(this.lastFlagEnd)) return undefined;
    if (/^(==|!=|eq|ne|in\b|[<>])/.test(this.src.slice(at))) {
      return 'TCP flags are booleans that stand alone: write tcp.flags.syn or not tcp.flags.syn';
    }
    return undefined;
  }

  // ---- whitespace --------------------------------------------------------------------------------

  private skipSpaceFrom(at: number): number {
    while (isSpace(this.src[at])) at++;
    return at;
  }

  private skipSpace(): void {
    this.pos = this.skipSpaceFrom(this.pos);
  }

  // ---- logical structure -------------------------------------------------------------------------

  /** Operands joined by LEVELS[level]'s operator; operands are parsed at the next (tighter) level. */
  private parseLevel(level: number, depth: number): Expr {
    const kind = LEVELS[level];
    if (kind === undefined) return this.parseSimple(depth);
    const terms = [this.parseLevel(level + 1, depth)];
    for (;;) {
      const at = this.skipSpaceFrom(this.pos);
      const op = LOGICAL_TOKENS.find(([tok]) => this.src.startsWith(tok, at));
      // A looser operator ends this level; leave the position before the spaces, as wirefilter does.
      if (!op || op[1] !== kind) break;
      this.pos = this.skipSpaceFrom(at + op[0].length);
      terms.push(this.parseLevel(level + 1, depth));
    }
    if (terms.length === 1) return terms[0]!;
    // A parenthesised group of the same operator merges in: and/or/xor are associative.
    return { kind, terms: terms.flatMap((t) => (t.kind === kind ? t.terms : [t])) } as Logical;
  }

  /** `( expr )`, `not operand`, `! operand`, or a comparison. */
  private parseSimple(depth: number): Expr {
    const at = this.pos;
    if (this.src[at] === '(') {
      this.checkDepth(at, depth);
      this.pos = at + 1;
      this.skipSpace();
      const inner = this.parseLevel(0, depth + 1);
      this.skipSpace();
      if (this.src[this.pos] !== ')') {
        this.fail(this.pos, ['")"', ...EXPECT_LOGICAL], undefined, this.afterOperandHint(this.pos));
      }
      this.pos++;
      return inner;
    }
    const not = this.src.startsWith('not', at) ? 3 : this.src[at] === '!' ? 1 : 0;
    if (not > 0) {
      this.checkDepth(at, depth);
      this.pos = at + not;
      this.skipSpace();
      return { kind: 'not', expr: this.parseSimple(depth + 1) };
    }
    return this.parseComparison();
  }

  private checkDepth(at: number, depth: number): void {
    if (depth >= MAX_NESTING_DEPTH) {
      this.fail(at, [`at most ${MAX_NESTING_DEPTH} nested parentheses and nots`]);
    }
  }

  // ---- comparisons -------------------------------------------------------------------------------

  /** A field name: `[A-Za-z0-9_]+` segments joined by single dots (wirefilter's identifier rule). */
  private lexIdentifier(): string | undefined {
    const m = /^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*/.exec(this.src.slice(this.pos));
    return m?.[0];
  }

  private parseComparison(): Expr {
    const start = this.pos;
    const name = this.lexIdentifier();
    if (name === undefined) this.fail(start, EXPECT_OPERAND);
    this.pos += name.length;
    // wirefilter reads `x.` as a segment separator, so `tcp..dstport` fails right after the dot.
    if (this.src[this.pos] === '.') this.fail(this.pos + 1, ['a field name'], undefined, 'field names are segments of letters, digits and _ joined by single dots');
    const field = resolveField(name);
    if (field === undefined) {
      this.fail(start, ['a field name'], name, this.unknownFieldHint(name));
    }
    const info = FIELDS[field];
    if (info.type === 'flag') {
      this.lastFlagEnd = this.pos;
      return { kind: 'flag', field: field as FlagField };
    }

    const opAt = this.skipSpaceFrom(this.pos);
    const found = COMPARISON_TOKENS.find(([tok]) => this.src.startsWith(tok, opAt));
    const allowed = info.type === 'proto' ? ['==', '!=', 'eq', 'ne', 'in'] : info.type === 'int' ? [...ORDERING_OPS, 'in', '&'] : [...ORDERING_OPS, 'in'];
    const expectOp = [`an operator for ${field} (${allowed.join(' ')})`];
    if (!found) {
      const hint = this.src[opAt] === '=' ? 'equality is written == or eq' : undefined;
      this.fail(opAt, expectOp, undefined, hint);
    }
    const [tok, op] = found;
    this.pos = this.skipSpaceFrom(opAt + tok.length);

    if (op === 'string-op') {
      const hint =
        info.type === 'proto'
          ? `"${tok}" on ip.proto is not supported; use == or in {…} with protocol names`
          : `"${tok}" only applies to string fields`;
      this.fail(opAt, expectOp, tok, hint);
    }
    if (op === 'in') return this.parseSet(field);
    if (op === '&') {
      if (info.type !== 'int') this.fail(opAt, expectOp, tok, `"${tok}" only applies to integer fields`);
      const mask = this.parseIntValue(field as IntField, 'a bit mask');
      return { kind: 'bitand', field: field as IntField, mask };
    }
    switch (info.type) {
      case 'int':
        return { kind: 'compare', field: field as IntField, op, value: this.parseIntValue(field as IntField) };
      case 'ip':
        return { kind: 'compare', field: field as IpField, op, value: this.parseIpValue() };
      case 'proto':
        if (op !== '==' && op !== '!=') {
          this.fail(opAt, expectOp, tok, 'ordering protocol names is not supported');
        }
        return { kind: 'compare', field: 'ip.proto', op, value: this.parseProtoValue() };
    }
  }

  private unknownFieldHint(name: string): string {
    if (this.src[this.pos] === '(') return 'functions such as bit_slice are not supported';
    if (/^(NOT|Not)$/.test(name)) return 'keywords are lowercase';
    const lower = resolveField(name.toLowerCase());
    if (lower !== undefined) return `field names are lowercase: ${lower}`;
    return `known fields: ${FIELD_NAMES.join(', ')}`;
  }

  // ---- values --------------------------------------------------------------------------------------

  private intExpectation(field: IntField, noun?: string): string {
    const info = FIELDS[field] as Extract<(typeof FIELDS)[IntField], { type: 'int' }>;
    return `${noun ?? info.noun} (${info.min}-${info.max})`;
  }

  /** An integer literal within the field's range (a mask too: bits above the field's width never match). */
  private parseIntValue(field: IntField, noun?: string): number {
    const info = FIELDS[field] as Extract<(typeof FIELDS)[IntField], { type: 'int' }>;
    const at = this.pos;
    const r = lexInt(this.src, at);
    if (!r.ok) this.fail(at, [this.intExpectation(field, noun)], r.found);
    if (r.value < info.min || r.value > info.max) {
      this.fail(at, [this.intExpectation(field, noun)], this.src.slice(at, r.end));
    }
    this.pos = r.end;
    return r.value;
  }

  /** The raw IP token at the cursor (wirefilter's take_while over `[0-9a-fA-F:./]`). */
  private ipToken(): string {
    let end = this.pos;
    while (end < this.src.length && isIpTokenChar(this.src[end]!)) end++;
    return this.src.slice(this.pos, end);
  }

  private parseIpValue(): IpAddress {
    const at = this.pos;
    const tok = this.ipToken();
    const ip = tok === '' ? undefined : parseIpAddress(tok);
    if (!ip) {
      const hint = tok.includes('/') || tok.includes('..') ? CIDR_OUTSIDE_SET : undefined;
      this.fail(at, ['an IP address'], tok === '' ? undefined : tok, hint);
    }
    this.pos += tok.length;
    return { family: ip.family, address: formatIp(ip) };
  }

  private parseProtoValue(): ProtoName {
    const at = this.pos;
    const expected = [`a protocol name in quotes (${PROTO_NAMES.map((n) => `"${n}"`).join(' ')})`];
    const r = lexBytes(this.src, at);
    if (!r.ok) this.fail(r.at, expected, r.found);
    const name = r.value.every((b) => b < 0x80) ? String.fromCharCode(...r.value) : undefined;
    if (name === undefined || !isProtoName(name)) {
      const lower = name?.toLowerCase();
      const hint = lower !== undefined && isProtoName(lower) ? `protocol names are lowercase: "${lower}"` : undefined;
      this.fail(at, expected, this.src.slice(at, r.end), hint);
    }
    this.pos = r.end;
    return name;
  }

  /** `{ member member … }` after `in`; members need no separator, only the lexers' token boundaries. */
  private parseSet(field: FieldName): Expr {
    if (this.src[this.pos] === '$') {
      this.fail(this.pos, ['"{"'], undefined, 'named lists (in $name) are not supported; list the values in {…}');
    }
    if (this.src[this.pos] !== '{') this.fail(this.pos, ['"{"']);
    this.pos++;
    const info = FIELDS[field];
    const ints: IntRange[] = [];
    const ips: IpSetMember[] = [];
    const protos: ProtoName[] = [];
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] === '}') {
        this.pos++;
        break;
      }
      if (this.src[this.pos] === ',') {
        this.fail(this.pos, ['a set member', '"}"'], ',', 'set members are separated by spaces, not commas');
      }
      if (this.pos >= this.src.length) this.fail(this.pos, ['a set member', '"}"']);
      switch (info.type) {
        case 'int':
          ints.push(this.parseIntRange(field as IntField));
          break;
        case 'ip':
          ips.push(this.parseIpSetMember());
          break;
        case 'proto':
          protos.push(this.parseProtoValue());
          break;
        case 'flag':
          throw new Error('unreachable: flags take no operator');
      }
    }
    switch (info.type) {
      case 'int':
        return { kind: 'in', field: field as IntField, set: ints };
      case 'ip':
        return { kind: 'in', field: field as IpField, set: ips };
      default:
        return { kind: 'in', field: 'ip.proto', set: protos };
    }
  }

  private parseIntRange(field: IntField): IntRange {
    const at = this.pos;
    const from = this.parseIntValue(field);
    if (!this.src.startsWith('..', this.pos)) return { from, to: from };
    this.pos += 2;
    const to = this.parseIntValue(field);
    if (to < from) {
      this.fail(at, [`a range a..b with a <= b`], this.src.slice(at, this.pos));
    }
    return { from, to };
  }

  private parseIpSetMember(): IpSetMember {
    const at = this.pos;
    const tok = this.ipToken();
    const expected = ['an IP address, CIDR or range a..b'];
    if (tok === '') this.fail(at, [...expected, '"}"']);
    this.pos += tok.length;

    const dots = tok.indexOf('..');
    if (dots >= 0) {
      const first = parseIpAddress(tok.slice(0, dots));
      const last = parseIpAddress(tok.slice(dots + 2));
      if (!first || !last) this.fail(at, expected, tok);
      if (first.family !== last.family || compareIp(first.bytes, last.bytes) > 0) {
        this.fail(at, ['a range a..b of one address family with a <= b'], tok);
      }
      if (compareIp(first.bytes, last.bytes) === 0) return { type: 'address', family: first.family, address: formatIp(first) };
      return { type: 'range', family: first.family, first: formatIp(first), last: formatIp(last) };
    }

    // As the cidr crate: split at the last '/', the rest is a decimal prefix length.
    const slash = tok.lastIndexOf('/');
    const ip = parseIpAddress(slash < 0 ? tok : tok.slice(0, slash));
    if (!ip) this.fail(at, expected, tok);
    const bits = ip.family === 4 ? 32 : 128;
    if (slash < 0) return { type: 'address', family: ip.family, address: formatIp(ip) };
    const prefix = parsePrefixLength(tok.slice(slash + 1));
    if (prefix === undefined || prefix > bits) {
      this.fail(at + slash + 1, [`a prefix length (0-${bits})`], tok.slice(slash + 1) || undefined);
    }
    const network = networkOf(ip.bytes, prefix);
    if (compareIp(network, ip.bytes) !== 0) {
      const suggestion = `${formatIp({ family: ip.family, bytes: network })}/${prefix}`;
      this.fail(at, ['a CIDR whose host bits are zero'], tok, `did you mean ${suggestion}?`);
    }
    if (prefix === bits) return { type: 'address', family: ip.family, address: formatIp(ip) };
    return { type: 'cidr', family: ip.family, address: formatIp(ip), prefix };
  }
}
