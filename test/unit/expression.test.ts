import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ExpressionError,
  FIELD_NAMES,
  FIELDS,
  PROTOCOLS,
  expressionFields,
  parseExpression,
  printExpression,
  protocolName,
  type Expr,
} from '../../src/model/expression/index.js';

// ---- AST builders, to keep the tables readable -------------------------------------------------------

const flag = (f: string): Expr => ({ kind: 'flag', field: `tcp.flags.${f}` as never });
const SYN = flag('syn');
const ACK = flag('ack');
const FIN = flag('fin');
const URG = flag('urg');
const not = (expr: Expr): Expr => ({ kind: 'not', expr });
const and = (...terms: Expr[]): Expr => ({ kind: 'and', terms });
const or = (...terms: Expr[]): Expr => ({ kind: 'or', terms });
const xor = (...terms: Expr[]): Expr => ({ kind: 'xor', terms });
const cmp = (field: string, op: string, value: unknown): Expr => ({ kind: 'compare', field, op, value }) as never;
const inSet = (field: string, set: unknown[]): Expr => ({ kind: 'in', field, set }) as never;
const v4 = (address: string) => ({ family: 4 as const, address });
const v6 = (address: string) => ({ family: 6 as const, address });
const r = (from: number, to = from) => ({ from, to });
const addr = (family: 4 | 6, address: string) => ({ type: 'address', family, address });
const cidr = (family: 4 | 6, address: string, prefix: number) => ({ type: 'cidr', family, address, prefix });
const range = (family: 4 | 6, first: string, last: string) => ({ type: 'range', family, first, last });

function expectError(text: string, position: number, messagePart?: RegExp): ExpressionError {
  let caught: unknown;
  try {
    parseExpression(text);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ExpressionError, `${JSON.stringify(text)} should be rejected, got ${JSON.stringify(caught)}`);
  assert.equal(caught.position, position, `${JSON.stringify(text)}: ${caught.message}`);
  assert.match(caught.message, new RegExp(`^at ${position}: expected `));
  assert.ok(caught.expected.length > 0);
  if (messagePart) assert.match(caught.message, messagePart);
  return caught;
}

// ---- accepted expressions -----------------------------------------------------------------------------

const ACCEPTED: Array<[string, Expr]> = [
  // The example.
  [
    'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}',
    and(cmp('ip.dst', '==', v4('203.0.113.100')), inSet('tcp.dstport', [r(20, 21)])),
  ],
  // Every field.
  ['ip.src == 192.0.2.1', cmp('ip.src', '==', v4('192.0.2.1'))],
  ['ip.dst != 2001:db8::1', cmp('ip.dst', '!=', v6('2001:db8::1'))],
  ['ip.proto == "tcp"', cmp('ip.proto', '==', 'tcp')],
  ['ip.proto in {"tcp" "udp"}', inSet('ip.proto', ['tcp', 'udp'])],
  ['ip.len >= 60', cmp('ip.len', '>=', 60)],
  ['ip.ttl < 64', cmp('ip.ttl', '<', 64)],
  ['tcp.srcport == 1', cmp('tcp.srcport', '==', 1)],
  ['tcp.dstport == 443', cmp('tcp.dstport', '==', 443)],
  ['udp.srcport == 53', cmp('udp.srcport', '==', 53)],
  ['udp.dstport <= 53', cmp('udp.dstport', '<=', 53)],
  ['icmp.type == 8', cmp('icmp.type', '==', 8)],
  ['icmp.code > 0', cmp('icmp.code', '>', 0)],
  ['tcp.flags.syn', SYN],
  ['tcp.flags.ack', ACK],
  ['tcp.flags.fin', FIN],
  ['tcp.flags.reset', flag('reset')],
  ['tcp.flags.rst', flag('reset')],
  ['tcp.flags.push', flag('push')],
  ['tcp.flags.psh', flag('push')],
  ['tcp.flags.urg', URG],
  ['tcp.flags.ecn', flag('ecn')],
  ['tcp.flags.ece', flag('ecn')],
  ['tcp.flags.cwr', flag('cwr')],
  // Operator words and symbols.
  ['ip.len eq 1', cmp('ip.len', '==', 1)],
  ['ip.len ne 1', cmp('ip.len', '!=', 1)],
  ['ip.len lt 1', cmp('ip.len', '<', 1)],
  ['ip.len le 1', cmp('ip.len', '<=', 1)],
  ['ip.len gt 1', cmp('ip.len', '>', 1)],
  ['ip.len ge 1', cmp('ip.len', '>=', 1)],
  ['ip.len != 1', cmp('ip.len', '!=', 1)],
  ['ip.len > 1', cmp('ip.len', '>', 1)],
  ['ip.src >= 10.0.0.0', cmp('ip.src', '>=', v4('10.0.0.0'))],
  ['ip.proto ne "udp"', cmp('ip.proto', '!=', 'udp')],
  ['tcp.flags.syn && tcp.flags.ack', and(SYN, ACK)],
  ['tcp.flags.syn || tcp.flags.ack', or(SYN, ACK)],
  ['tcp.flags.syn ^^ tcp.flags.ack', xor(SYN, ACK)],
  ['!tcp.flags.syn', not(SYN)],
  ['tcp.dstport & 0x12', { kind: 'bitand', field: 'tcp.dstport', mask: 18 }],
  ['ip.ttl bitwise_and 1', { kind: 'bitand', field: 'ip.ttl', mask: 1 }],
  // Precedence: not > and > xor > or; same operators flatten.
  ['tcp.flags.syn or tcp.flags.ack and tcp.flags.fin', or(SYN, and(ACK, FIN))],
  ['tcp.flags.syn and tcp.flags.ack or tcp.flags.fin', or(and(SYN, ACK), FIN)],
  ['not tcp.flags.syn and tcp.flags.ack', and(not(SYN), ACK)],
  ['tcp.flags.syn xor tcp.flags.ack or tcp.flags.fin', or(xor(SYN, ACK), FIN)],
  ['tcp.flags.syn or tcp.flags.ack xor tcp.flags.fin', or(SYN, xor(ACK, FIN))],
  ['tcp.flags.syn xor tcp.flags.ack and tcp.flags.fin', xor(SYN, and(ACK, FIN))],
  ['tcp.flags.syn and tcp.flags.ack and tcp.flags.fin', and(SYN, ACK, FIN)],
  // wirefilter's own test: `t or t && t and t or t ^^ t and t || t`.
  [
    'tcp.flags.syn or tcp.flags.ack && tcp.flags.fin and tcp.flags.urg or tcp.flags.cwr ^^ tcp.flags.ecn and tcp.flags.push || tcp.flags.reset',
    or(SYN, and(ACK, FIN, URG), xor(flag('cwr'), and(flag('ecn'), flag('push'))), flag('reset')),
  ],
  // Parentheses and not.
  ['not (tcp.flags.syn or tcp.flags.ack)', not(or(SYN, ACK))],
  ['!(tcp.flags.syn)', not(SYN)],
  ['not not tcp.flags.syn', not(not(SYN))],
  ['!!tcp.flags.syn', not(not(SYN))],
  ['! (not !tcp.flags.syn)', not(not(not(SYN)))],
  ['((tcp.flags.syn))', SYN],
  ['(tcp.flags.syn and tcp.flags.ack) and tcp.flags.fin', and(SYN, ACK, FIN)],
  ['(tcp.flags.syn or tcp.flags.ack) and tcp.flags.fin', and(or(SYN, ACK), FIN)],
  ['tcp.flags.syn and (tcp.flags.ack or (tcp.flags.fin and tcp.flags.urg))', and(SYN, or(ACK, and(FIN, URG)))],
  // Sets: spaces or newlines, ranges, CIDRs, empty, no separator needed between strings.
  ['tcp.dstport in {80 443 8000..8080}', inSet('tcp.dstport', [r(80), r(443), r(8000, 8080)])],
  ['tcp.dstport in {\n  80\r\n  443\n}', inSet('tcp.dstport', [r(80), r(443)])],
  ['tcp.dstport in { 32768..65535 }', inSet('tcp.dstport', [r(32768, 65535)])],
  ['tcp.dstport in {80..80}', inSet('tcp.dstport', [r(80)])],
  ['tcp.dstport in {}', inSet('tcp.dstport', [])],
  ['ip.proto in {"tcp""udp"}', inSet('ip.proto', ['tcp', 'udp'])],
  [
    'ip.src in {192.0.2.0/24 198.51.100.1}',
    inSet('ip.src', [cidr(4, '192.0.2.0', 24), addr(4, '198.51.100.1')]),
  ],
  [
    'ip.dst in {2001:db8::/32 ::1 0.0.0.0/0 ::/0 192.0.2.7/32 2001:db8::1/128}',
    inSet('ip.dst', [
      cidr(6, '2001:db8::', 32),
      addr(6, '::1'),
      cidr(4, '0.0.0.0', 0),
      cidr(6, '::', 0),
      addr(4, '192.0.2.7'),
      addr(6, '2001:db8::1'),
    ]),
  ],
  [
    'ip.src in {10.0.0.1..10.0.0.9 ::1..::2 10.0.0.5..10.0.0.5}',
    inSet('ip.src', [range(4, '10.0.0.1', '10.0.0.9'), range(6, '::1', '::2'), addr(4, '10.0.0.5')]),
  ],
  ['ip.src in {192.0.2.0/024}', inSet('ip.src', [cidr(4, '192.0.2.0', 24)])],
  // Integers: hex, octal (a leading 0), -0, bounds.
  ['tcp.dstport == 0x1F', cmp('tcp.dstport', '==', 31)],
  ['tcp.dstport == 010', cmp('tcp.dstport', '==', 8)],
  ['tcp.dstport == 0', cmp('tcp.dstport', '==', 0)],
  ['tcp.dstport == -0', cmp('tcp.dstport', '==', 0)],
  ['tcp.dstport == 65535', cmp('tcp.dstport', '==', 65535)],
  ['ip.ttl == 255', cmp('ip.ttl', '==', 255)],
  ['tcp.dstport in {0x10..0x20 010..011}', inSet('tcp.dstport', [r(16, 32), r(8, 9)])],
  // Strings: escapes, raw strings, byte strings.
  ['ip.proto == "\\x74cp"', cmp('ip.proto', '==', 'tcp')],
  ['ip.proto == "\\164cp"', cmp('ip.proto', '==', 'tcp')],
  ['ip.proto == r"udp"', cmp('ip.proto', '==', 'udp')],
  ['ip.proto == r#"gre"#', cmp('ip.proto', '==', 'gre')],
  ['ip.proto == 74:63:70', cmp('ip.proto', '==', 'tcp')],
  ['ip.proto in {74-63.70 "esp"}', inSet('ip.proto', ['tcp', 'esp'])],
  ['ip.proto in {"icmpv6" "sctp" "ah"}', inSet('ip.proto', ['icmpv6', 'sctp', 'ah'])],
  // IP literal forms, printed canonically.
  ['ip.src == ::', cmp('ip.src', '==', v6('::'))],
  ['ip.src == 1::', cmp('ip.src', '==', v6('1::'))],
  ['ip.src == 2001:DB8::A', cmp('ip.src', '==', v6('2001:db8::a'))],
  ['ip.src == ::ffff:192.0.2.1', cmp('ip.src', '==', v6('::ffff:c000:201'))],
  ['ip.src == 0001:0:0:0:0:0:0:1', cmp('ip.src', '==', v6('1::1'))],
  ['ip.src == 1:2:3:4:5:6:7::', cmp('ip.src', '==', v6('1:2:3:4:5:6:7:0'))],
  ['ip.src == 1:0:0:2:0:0:0:3', cmp('ip.src', '==', v6('1:0:0:2::3'))],
  ['ip.src == 1:2:3:4:5:6:1.2.3.4', cmp('ip.src', '==', v6('1:2:3:4:5:6:102:304'))],
  ['ip.src == 0.0.0.0', cmp('ip.src', '==', v4('0.0.0.0'))],
  // Whitespace: the text is trimmed (tabs too); inside, spaces/CR/LF or nothing at all.
  ['\t tcp.flags.syn \u00a0\n', SYN],
  ['tcp.dstport==80&&ip.proto=="tcp"', and(cmp('tcp.dstport', '==', 80), cmp('ip.proto', '==', 'tcp'))],
  ['tcp.flags.syn\r\nand\ntcp.flags.ack', and(SYN, ACK)],
  ['(  tcp.flags.syn  )', SYN],
  // wirefilter matches keywords as prefixes, with no word boundary.
  ['nottcp.flags.syn', not(SYN)],
  ['tcp.dstport eq80', cmp('tcp.dstport', '==', 80)],
  ['tcp.dstport == 80or tcp.flags.syn', or(cmp('tcp.dstport', '==', 80), SYN)],
  ['tcp.flags.syn andnot tcp.flags.ack', and(SYN, not(ACK))],
  ['tcp.dstport in{80}and tcp.flags.syn', and(inSet('tcp.dstport', [r(80)]), SYN)],
];

test('accepted expressions parse to the expected AST and print back to the same AST', () => {
  for (const [text, ast] of ACCEPTED) {
    const parsed = parseExpression(text);
    assert.deepEqual(parsed, ast, text);
    const printed = printExpression(parsed);
    assert.deepEqual(parseExpression(printed), ast, `${text} printed as ${printed}`);
  }
});

test('canonical printing', () => {
  const cases: Array<[string, string]> = [
    ['ip.dst eq 203.0.113.100 && tcp.dstport in { 20..21 }', 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}'],
    ['!(tcp.flags.syn || tcp.flags.rst)', 'not (tcp.flags.syn or tcp.flags.reset)'],
    ['(tcp.flags.syn or tcp.flags.ack) and not tcp.flags.fin', '(tcp.flags.syn or tcp.flags.ack) and not tcp.flags.fin'],
    ['tcp.flags.syn or (tcp.flags.ack and tcp.flags.fin)', 'tcp.flags.syn or tcp.flags.ack and tcp.flags.fin'],
    ['(tcp.flags.syn xor tcp.flags.ack) and tcp.flags.fin', '(tcp.flags.syn xor tcp.flags.ack) and tcp.flags.fin'],
    ['ip.proto in {74:63:70 r"udp"}', 'ip.proto in {"tcp" "udp"}'],
    ['ip.src in {2001:0DB8::/32 10.0.0.1..10.0.0.2}', 'ip.src in {2001:db8::/32 10.0.0.1..10.0.0.2}'],
    ['tcp.dstport & 0x10', 'tcp.dstport & 16'],
    ['tcp.dstport in {}', 'tcp.dstport in {}'],
  ];
  for (const [text, canonical] of cases) assert.equal(printExpression(parseExpression(text)), canonical, text);
});

test('up to 128 nested parentheses and nots are accepted (wirefilter max_nesting_depth)', () => {
  const deep = `${'('.repeat(64)}${'not '.repeat(64)}tcp.flags.syn${')'.repeat(64)}`;
  let e = parseExpression(deep);
  for (let i = 0; i < 64; i++) {
    assert.equal(e.kind, 'not');
    e = (e as Extract<Expr, { kind: 'not' }>).expr;
  }
  assert.deepEqual(e, SYN);
  expectError(`${'('.repeat(129)}tcp.flags.syn${')'.repeat(129)}`, 128, /nested/);
  expectError(`${'!'.repeat(129)}tcp.flags.syn`, 128, /nested/);
});

// ---- rejected expressions -----------------------------------------------------------------------------

const REJECTED: Array<[string, number, RegExp?]> = [
  // Booleans stand alone.
  ['tcp.flags.syn == true', 14, /booleans that stand alone/],
  ['(tcp.flags.syn eq 1)', 15, /booleans that stand alone/],
  // Values a packet cannot have.
  ['tcp.dstport == 70000', 15, /expected a port number \(0-65535\), found "70000"/],
  ['tcp.dstport in {80 70000}', 19, /port number/],
  ['tcp.dstport in {0..70000}', 19, /port number/],
  ['udp.srcport == -1', 15, /port number/],
  ['ip.ttl > 256', 9, /a TTL \(0-255\)/],
  ['icmp.type == 300', 13, /an ICMP type/],
  ['icmp.code == 0x100', 13, /an ICMP code/],
  ['ip.len < 65536', 9, /a packet length/],
  ['tcp.dstport & 0x10000', 14, /a bit mask \(0-65535\)/],
  ['tcp.dstport in {21..20}', 16, /a <= b/],
  // Integer syntax.
  ['tcp.dstport == 08', 15, /found "08"/],
  ['tcp.dstport == 80and tcp.flags.syn', 15, /found "80a"/],
  ['tcp.dstport == 0x', 15],
  ['tcp.dstport == 0o17', 16],
  ['tcp.dstport == 1_000', 16],
  ['tcp.dstport == +1', 15],
  ['tcp.dstport == 80 80', 18],
  ['tcp.dstport ==', 14, /found end of input/],
  // Ranges and CIDRs only inside sets; CIDRs with host bits set; bad ranges.
  ['ip.src == 192.0.2.0/24', 10, /only allowed inside sets/],
  ['tcp.dstport == 20..21', 17, /only allowed inside sets/],
  ['ip.src in {192.0.2.1/24}', 11, /did you mean 192\.0\.2\.0\/24/],
  ['ip.src in {2001:db8::1/32}', 11, /host bits/],
  ['ip.src in {10.0.0.0/33}', 20, /prefix length \(0-32\)/],
  ['ip.src in {::/129}', 14, /prefix length \(0-128\)/],
  ['ip.src in {10.0.0.0/}', 20],
  ['ip.src in {10.0.0.5..10.0.0.1}', 11, /one address family/],
  ['ip.src in {10.0.0.1..::1}', 11, /one address family/],
  ['ip.src in {10.0.0.1 .. 10.0.0.2}', 20],
  // IP address syntax (Rust's parser).
  ['ip.src == 1.2.3', 10],
  ['ip.src == 01.2.3.4', 10],
  ['ip.src == 256.1.1.1', 10],
  ['ip.src == 1::2::3', 10],
  ['ip.src == 1.2.3.4::', 10],
  ['ip.src == 12345::', 10],
  ['ip.src == 1:2:3:4:5:6:7:8:9', 10],
  ['ip.src == 1:2:3:4:5:6:7::1.2.3.4', 10],
  ['ip.src == 1:2:3:4::5:6:7:8', 10],
  ['ip.src == 1.2.3.4.5', 10],
  ['ip.src == fe80::1%eth0', 17],
  ['ip.src == "192.0.2.1"', 10],
  // Sets.
  ['tcp.dstport in {80,443}', 18, /separated by spaces, not commas/],
  ['tcp.dstport in 80', 15, /expected "\{"/],
  ['tcp.dstport in {80', 18, /found end of input/],
  ['ip.src in $blocklist', 10, /named lists/],
  ['ip.proto in {"tcp" udp}', 19],
  // ip.proto: only known lowercase names, only == != in.
  ['ip.proto == "foo"', 12, /protocol name/],
  ['ip.proto == "TCP"', 12, /lowercase/],
  ['ip.proto == tcp', 12],
  ['ip.proto == 74', 12],
  ['ip.proto == "tcp', 12],
  ['ip.proto == "\\n"', 13],
  ['ip.proto == "\\x7"', 15],
  ['ip.proto == r#"tcp"', 12],
  ['ip.proto < "tcp"', 9, /ordering/],
  ['ip.proto contains "tc"', 9, /not supported/],
  ['ip.proto matches "^t"', 9, /not supported/],
  ['ip.proto ~ "^t"', 9, /not supported/],
  ['ip.proto wildcard "t*"', 9, /not supported/],
  ['ip.proto & 1', 9, /integer fields/],
  ['ip.src contains "x"', 7, /string fields/],
  ['ip.src & 1', 7, /integer fields/],
  // Operators and fields.
  ['tcp.dstport', 11, /an operator for tcp.dstport/],
  ['tcp.dstport = 80', 12, /equality is written ==/],
  ['tcp.dstport => 80', 12],
  ['foo == 1', 0, /known fields/],
  ['TCP.DSTPORT == 80', 0, /lowercase: tcp\.dstport/],
  ['tcp..dstport == 80', 4],
  ['tcp.flags.sy', 0],
  ['bit_slice("tcp", 104, 111) == 2', 0, /functions/],
  ['ip.src[0] == 1.2.3.4', 6],
  // Logical structure.
  ['', 0, /found end of input/],
  ['   ', 3, /found end of input/],
  ['tcp.flags.syn and', 17, /found end of input/],
  ['tcp.flags.syn or or tcp.flags.ack', 17],
  ['and tcp.flags.syn', 0],
  ['(tcp.flags.syn', 14, /expected "\)"/],
  ['tcp.flags.syn)', 13],
  ['()', 1],
  ['not', 3],
  ['!= tcp.flags.syn', 1],
  ['tcp.flags.syn AND tcp.flags.ack', 14, /keywords are lowercase/],
  ['NOT tcp.flags.syn', 0, /keywords are lowercase/],
  ['tcp.flags.syn\tand tcp.flags.ack', 13, /tabs/],
  ['tcp.flags.syn & tcp.flags.ack', 14],
  ['tcp.flags.syn ^ tcp.flags.ack', 14],
  ['tcp.flags.synand tcp.flags.ack', 0],
];

test('rejected expressions throw ExpressionError with the position of the fault', () => {
  for (const [text, position, message] of REJECTED) expectError(text, position, message);
});

test('the error message names the position and what was expected', () => {
  const e = expectError('ip.dst == 192.0.2.1 and tcp.dstport == 70000', 39);
  assert.equal(e.message, 'at 39: expected a port number (0-65535), found "70000"');
  assert.deepEqual(e.expected, ['a port number (0-65535)']);
  assert.equal(e.name, 'ExpressionError');
  assert.ok(e instanceof Error);
  // Positions count from the start of the original text, before trimming.
  expectError('  \n tcp.dstport == 70000', 19);
});

// ---- tables ---------------------------------------------------------------------------------------------

test('FIELDS covers every field with its type; protocol names map to IANA numbers', () => {
  assert.deepEqual(FIELD_NAMES.sort(), Object.keys(FIELDS).sort());
  assert.equal(FIELDS['ip.src'].type, 'ip');
  assert.equal(FIELDS['ip.proto'].type, 'proto');
  assert.deepEqual(FIELDS['tcp.dstport'], { type: 'int', min: 0, max: 65535, noun: 'a port number' });
  assert.equal(FIELDS['tcp.flags.syn'].type, 'flag');
  assert.equal(PROTOCOLS.tcp, 6);
  assert.equal(PROTOCOLS.udp, 17);
  assert.equal(PROTOCOLS.icmp, 1);
  assert.equal(PROTOCOLS.icmpv6, 58);
  assert.equal(PROTOCOLS.gre, 47);
  assert.equal(PROTOCOLS.esp, 50);
  assert.equal(PROTOCOLS.ah, 51);
  assert.equal(PROTOCOLS.sctp, 132);
  assert.equal(protocolName(47), 'gre');
  assert.equal(protocolName(250), undefined);
  for (const field of FIELD_NAMES) {
    const info = FIELDS[field];
    const text =
      info.type === 'flag' ? field : info.type === 'ip' ? `${field} == 192.0.2.1` : info.type === 'proto' ? `${field} == "tcp"` : `${field} == ${info.max}`;
    assert.deepEqual(expressionFields(parseExpression(text)), [field], text);
  }
});

test('expressionFields lists each field once, in order of appearance, under its canonical name', () => {
  const e = parseExpression('tcp.flags.rst or (ip.src in {10.0.0.0/8} and not tcp.dstport == 22 xor ip.src == 10.0.0.1)');
  assert.deepEqual(expressionFields(e), ['tcp.flags.reset', 'ip.src', 'tcp.dstport']);
});
