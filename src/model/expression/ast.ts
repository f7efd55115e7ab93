/**
 * Typed AST of a firewall expression, as parseExpression returns it and the nftables compiler consumes it.
 *
 * Canonical form (parseExpression always returns it; printExpression expects it):
 * - `and`/`or`/`xor` have at least two terms, and no term has the same kind as its parent: `a and (b and c)`
 *   becomes one `and` of three terms (all three operators are associative, so this changes no meaning).
 * - Parentheses leave no node; `not` applies to exactly one operand.
 * - Values are already validated against their field (a port is 0-65535, a CIDR has zero host bits, a
 *   protocol name is in PROTOCOLS) and IP addresses are in canonical text form (see IpAddress).
 *
 * Semantics follow wirefilter: `and` binds tighter than `xor`, which binds tighter than `or`; `xor` of n terms
 * is true when an odd number of them are. This module does not decide what a comparison on a field the packet
 * lacks (`tcp.dstport` of a UDP packet) yields: wirefilter leaves that to its scheme, so the compiler owns it.
 */

import type { FieldName, FlagField, IntField, IpField, ProtoField, ProtoName } from './fields.js';

/** Ordering and equality operators; words `eq ne lt le gt ge` parse to the same. */
export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * One IP address. `address` is canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase hex,
 * longest zero run as `::`, no embedded dotted quad — `::ffff:1.2.3.4` becomes `::ffff:102:304`, family 6).
 */
export interface IpAddress {
  family: 4 | 6;
  address: string;
}

/** A member of an IP set: one address, a CIDR (host bits zero), or an inclusive range of one family. */
export type IpSetMember =
  | { type: 'address'; family: 4 | 6; address: string }
  /** prefix < 32 (IPv4) / < 128 (IPv6); a full-length prefix is an 'address'. `address` is the network. */
  | { type: 'cidr'; family: 4 | 6; address: string; prefix: number }
  /** first < last (a range of one address is an 'address'); written `a..b` (no spaces) inside a set. */
  | { type: 'range'; family: 4 | 6; first: string; last: string };

/** A member of an integer set: `from == to` for a single value, else an inclusive range `from..to`. */
export interface IntRange {
  from: number;
  to: number;
}

/** `field op value` on an integer field, e.g. `tcp.dstport >= 1024`. */
export interface CompareInt {
  kind: 'compare';
  field: IntField;
  op: CompareOp;
  value: number;
}

/**
 * `field op address` on an IP field. Ordering compares addresses of the same family numerically; as in
 * wirefilter, an address of the other family is unordered, so only `!=` matches it.
 */
export interface CompareIp {
  kind: 'compare';
  field: IpField;
  op: CompareOp;
  value: IpAddress;
}

/** `ip.proto == "tcp"` / `ip.proto != "udp"` (ordering and string-matching operators are not supported). */
export interface CompareProto {
  kind: 'compare';
  field: ProtoField;
  op: '==' | '!=';
  value: ProtoName;
}

export type Compare = CompareInt | CompareIp | CompareProto;

/** `field in {…}` on an integer field. The set may be empty (wirefilter accepts `{}`; it matches nothing). */
export interface InInt {
  kind: 'in';
  field: IntField;
  set: IntRange[];
}

export interface InIp {
  kind: 'in';
  field: IpField;
  set: IpSetMember[];
}

export interface InProto {
  kind: 'in';
  field: ProtoField;
  set: ProtoName[];
}

export type In = InInt | InIp | InProto;

/** `field & mask` (or `bitwise_and`): true when `(value & mask) != 0`, as in wirefilter. */
export interface BitAnd {
  kind: 'bitand';
  field: IntField;
  mask: number;
}

/** A boolean field standing alone: true when the TCP flag is set (false for non-TCP packets). */
export interface Flag {
  kind: 'flag';
  field: FlagField;
}

export interface Not {
  kind: 'not';
  expr: Expr;
}

export interface And {
  kind: 'and';
  terms: Expr[];
}

export interface Xor {
  kind: 'xor';
  terms: Expr[];
}

export interface Or {
  kind: 'or';
  terms: Expr[];
}

export type Logical = And | Xor | Or;

export type Expr = Compare | In | BitAnd | Flag | Not | Logical;

export type { FieldName };
