/**
 * The firewall compiler against a reference: a direct evaluator of the wirefilter AST (with the documented
 * "a field the packet lacks makes its test false" semantics) must agree, for random expressions and packets, with
 * an evaluator of the nftables matches the compiler emits (nft semantics: a payload the packet lacks makes its
 * match fail, whatever the operator). That nft itself accepts what we emit is checked in the privileged tier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseExpression, PROTOCOLS, type Expr, type IntRange, type IpSetMember } from '../../src/model/expression/index.js';
import {
  compileExpression,
  FirewallCompileError,
  type Dnf,
  type NftMatch,
} from '../../src/agent/desired/firewall-match.js';
import { exprArb } from '../support/expression-arbitrary.js';

interface Packet {
  family: 4 | 6;
  src: bigint;
  dst: bigint;
  proto: number;
  len: number;
  ttl: number;
  sport: number;
  dport: number;
  /** First two bytes of the transport header: ICMP type/code for ICMP. */
  b0: number;
  b1: number;
  tcpFlags: number;
}

function ipToBig(text: string): bigint {
  if (text.includes('.') && !text.includes(':')) return text.split('.').reduce((a, b) => (a << 8n) | BigInt(b), 0n);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}
const familyOf = (text: string): 4 | 6 => (text.includes(':') ? 6 : 4);

function cmp(op: string, a: bigint | number, b: bigint | number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
  throw new Error(`op ${op}`);
}

function memberContains(m: IpSetMember, family: 4 | 6, v: bigint): boolean {
  if (m.family !== family) return false;
  if (m.type === 'address') return ipToBig(m.address) === v;
  if (m.type === 'range') return ipToBig(m.first) <= v && v <= ipToBig(m.last);
  const bits = BigInt(family === 4 ? 32 : 128);
  const shift = bits - BigInt(m.prefix);
  return v >> shift === ipToBig(m.address) >> shift;
}

const FLAG_BIT: Record<string, number> = {
  fin: 1, syn: 2, rst: 4, psh: 8, ack: 16, urg: 32, ecn: 64, cwr: 128,
};

/** Integer field value, or undefined when the packet lacks the field. */
function intField(field: string, p: Packet): number | undefined {
  switch (field) {
    case 'ip.len':
      return p.len;
    case 'ip.ttl':
      return p.ttl;
    case 'tcp.srcport':
      return p.proto === 6 ? p.sport : undefined;
    case 'tcp.dstport':
      return p.proto === 6 ? p.dport : undefined;
    case 'udp.srcport':
      return p.proto === 17 ? p.sport : undefined;
    case 'udp.dstport':
      return p.proto === 17 ? p.dport : undefined;
    case 'icmp.type':
      return p.proto === 1 || p.proto === 58 ? p.b0 : undefined;
    case 'icmp.code':
      return p.proto === 1 || p.proto === 58 ? p.b1 : undefined;
  }
  throw new Error(field);
}

/** Reference semantics of the AST. */
function evalExpr(e: Expr, p: Packet): boolean {
  switch (e.kind) {
    case 'not':
      return !evalExpr(e.expr, p);
    case 'and':
      return e.terms.every((t) => evalExpr(t, p));
    case 'or':
      return e.terms.some((t) => evalExpr(t, p));
    case 'xor':
      return e.terms.filter((t) => evalExpr(t, p)).length % 2 === 1;
    case 'flag':
      return p.proto === 6 && (p.tcpFlags & FLAG_BIT[{ reset: 'rst', push: 'psh' }[e.field.slice(10)] ?? e.field.slice(10)]!) !== 0;
    case 'bitand': {
      const v = intField(e.field, p);
      return v !== undefined && (v & e.mask) !== 0;
    }
    case 'compare':
      if (e.field === 'ip.proto') return cmp(e.op, p.proto, PROTOCOLS[e.value]);
      if (e.field === 'ip.src' || e.field === 'ip.dst') {
        if (e.value.family !== p.family) return e.op === '!=';
        return cmp(e.op, e.field === 'ip.src' ? p.src : p.dst, ipToBig(e.value.address));
      } else {
        const v = intField(e.field, p);
        return v !== undefined && cmp(e.op, v, e.value as number);
      }
    case 'in':
      if (e.field === 'ip.proto') return e.set.some((n) => PROTOCOLS[n] === p.proto);
      if (e.field === 'ip.src' || e.field === 'ip.dst') {
        const v = e.field === 'ip.src' ? p.src : p.dst;
        return e.set.some((m) => memberContains(m, p.family, v));
      } else {
        const v = intField(e.field, p);
        const set = e.set as IntRange[];
        return v !== undefined && set.some((r) => r.from <= v && v <= r.to);
      }
  }
}

const ABSENT = Symbol('absent');

/** nft semantics of the subset of expressions the compiler emits. */
function nftLeft(left: any, p: Packet): bigint | number | string | typeof ABSENT {
  if (left.meta) {
    if (left.meta.key === 'nfproto') return p.family === 4 ? 'ipv4' : 'ipv6';
    if (left.meta.key === 'l4proto') return p.proto;
    if (left.meta.key === 'length') return p.len;
  }
  if (left['&']) {
    const [inner, mask] = left['&'];
    const v = nftLeft(inner, p);
    if (v === ABSENT) return ABSENT;
    const m = typeof mask === 'string' ? FLAG_BIT[mask]! : mask;
    return (v as number) & m;
  }
  const pl = left.payload;
  if (pl) {
    if (pl.base === 'th') {
      if (![1, 58, 6, 17].includes(p.proto)) return ABSENT;
      return pl.offset === 0 ? p.b0 : p.b1;
    }
    switch (pl.protocol) {
      case 'ip':
        if (p.family !== 4) return ABSENT;
        return pl.field === 'ttl' ? p.ttl : pl.field === 'saddr' ? p.src : p.dst;
      case 'ip6':
        if (p.family !== 6) return ABSENT;
        return pl.field === 'hoplimit' ? p.ttl : pl.field === 'saddr' ? p.src : p.dst;
      case 'th':
        if (p.proto !== 6 && p.proto !== 17) return ABSENT;
        return pl.field === 'sport' ? p.sport : p.dport;
      case 'tcp':
        if (p.proto !== 6) return ABSENT;
        return p.tcpFlags;
    }
  }
  throw new Error(`unexpected nft left ${JSON.stringify(left)}`);
}

function nftValue(right: any): bigint | number | string {
  if (typeof right === 'string' && /[.:]/.test(right)) return ipToBig(right);
  return right;
}

function inRight(v: bigint | number | string, right: any): boolean {
  if (right && typeof right === 'object') {
    if ('set' in right) return right.set.some((m: unknown) => inRight(v, m));
    if ('range' in right) return nftValue(right.range[0]) <= v && v <= nftValue(right.range[1]);
    if ('prefix' in right) {
      const bits = BigInt(familyOf(right.prefix.addr) === 4 ? 32 : 128);
      const shift = bits - BigInt(right.prefix.len);
      return (v as bigint) >> shift === ipToBig(right.prefix.addr) >> shift;
    }
  }
  return v === nftValue(right);
}

function nftMatch(m: NftMatch, p: Packet): boolean {
  const v = nftLeft(m.match.left, p);
  if (v === ABSENT) return false; // NFT_BREAK: the rule does not match, whatever the operator
  const { op, right } = m.match;
  const isMembership = typeof right === 'object' && right !== null;
  if (isMembership && (op === '==' || op === '!=')) return inRight(v, right) === (op === '==');
  return cmp(op, v as any, nftValue(right) as any);
}

const dnfMatches = (dnf: Dnf, p: Packet) => dnf.some((conj) => conj.every((m) => nftMatch(m, p)));

/** Values an expression mentions, so packets hit its boundaries instead of missing everything. */
function constants(e: Expr, ips: string[], ints: number[]): void {
  switch (e.kind) {
    case 'not':
      return constants(e.expr, ips, ints);
    case 'and':
    case 'or':
    case 'xor':
      return e.terms.forEach((t) => constants(t, ips, ints));
    case 'compare':
      if (e.field === 'ip.src' || e.field === 'ip.dst') ips.push(e.value.address);
      else if (typeof e.value === 'number') ints.push(e.value, e.value + 1, Math.max(0, e.value - 1));
      return;
    case 'in':
      for (const m of e.set as any[]) {
        if (typeof m === 'string') continue;
        if ('from' in m) ints.push(m.from, m.to, m.to + 1);
        else if (m.type === 'range') ips.push(m.first, m.last);
        else ips.push(m.address);
      }
      return;
    case 'bitand':
      ints.push(e.mask);
  }
}

function packetArb(e: Expr): fc.Arbitrary<Packet> {
  const ips: string[] = ['192.0.2.1', '2001:db8::1'];
  const ints: number[] = [0, 1, 255];
  constants(e, ips, ints);
  const int = (max: number) => fc.oneof(fc.constantFrom(...ints.map((i) => i % (max + 1))), fc.integer({ min: 0, max }));
  return fc.constantFrom(4 as const, 6 as const).chain((family) => {
    const sameFamily = ips.filter((ip) => familyOf(ip) === family);
    const addr = fc.oneof(
      fc.constantFrom(...sameFamily).map((t) => ipToBig(t)),
      fc.constantFrom(...sameFamily).map((t) => ipToBig(t) + 1n),
      family === 4 ? fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }) : fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }),
    );
    return fc.record({
      family: fc.constant(family),
      src: addr,
      dst: addr,
      proto: fc.constantFrom(1, 6, 17, 58, 47, 132),
      len: int(65535),
      ttl: int(255),
      sport: int(65535),
      dport: int(65535),
      b0: int(255),
      b1: int(255),
      tcpFlags: int(255),
    });
  });
}

test('compiled nft matches agree with the wirefilter semantics on random expressions and packets', () => {
  let compiled = 0;
  fc.assert(
    fc.property(
      exprArb.chain((e) => fc.tuple(fc.constant(e), fc.array(packetArb(e), { minLength: 20, maxLength: 20 }))),
      ([expr, packets]) => {
        let dnf: Dnf;
        try {
          dnf = compileExpression(expr);
        } catch (err) {
          if (err instanceof FirewallCompileError) return; // refused as too large: allowed, never wrong
          throw err;
        }
        compiled++;
        for (const p of packets) {
          assert.equal(dnfMatches(dnf, p), evalExpr(expr, p), `packet ${JSON.stringify(p, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
        }
      },
    ),
    { numRuns: 400 },
  );
  assert.ok(compiled > 300, `only ${compiled} of 400 expressions compiled`);
});

test("the seed's rule compiles to one nft rule", () => {
  const dnf = compileExpression(parseExpression('ip.dst == 203.0.113.100 and tcp.dstport in {20..21}'));
  assert.equal(dnf.length, 1);
  assert.deepEqual(dnf[0], [
    { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } },
    { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 6 } },
    { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '203.0.113.100' } },
    { match: { op: '==', left: { payload: { protocol: 'th', field: 'dport' } }, right: { range: [20, 21] } } },
  ]);
});

test('negation covers packets that lack the field', () => {
  const dnf = compileExpression(parseExpression('not tcp.dstport == 22'));
  // A UDP packet has no tcp.dstport: the test is false, its negation true.
  const udp: Packet = { family: 4, src: 1n, dst: 2n, proto: 17, len: 60, ttl: 64, sport: 1, dport: 22, b0: 0, b1: 0, tcpFlags: 0 };
  assert.equal(dnfMatches(dnf, udp), true);
  assert.equal(dnfMatches(dnf, { ...udp, proto: 6 }), false);
});

test('an expression that would explode is refused with a clear error', () => {
  const big = Array.from({ length: 10 }, (_, i) => `(tcp.dstport == ${i} or udp.dstport == ${i})`).join(' and ');
  assert.throws(() => compileExpression(parseExpression(big)), /expands to \d+ nftables rules \(limit 256\)/);
});
