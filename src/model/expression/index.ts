/**
 * Firewall rule expressions in Cloudflare's rule language (wirefilter), for the fields an edge server
 * filters on, so rules written for Magic Firewall work unchanged:
 *
 *   ip.dst == 203.0.113.100 and tcp.dstport in {20..21}
 *
 * parseExpression → typed AST (ast.ts) → the agent's nftables compiler; printExpression gives canonical text.
 */

export { parseExpression, MAX_NESTING_DEPTH } from './parser.js';
export { printExpression, expressionFields } from './printer.js';
export { ExpressionError } from './errors.js';
export {
  FIELDS,
  FIELD_NAMES,
  FIELD_ALIASES,
  PROTOCOLS,
  PROTO_NAMES,
  protocolName,
  isProtoName,
  resolveField,
  type FieldInfo,
  type FieldName,
  type FlagField,
  type IntField,
  type IpField,
  type ProtoField,
  type ProtoName,
} from './fields.js';
export type {
  And,
  BitAnd,
  Compare,
  CompareInt,
  CompareIp,
  CompareOp,
  CompareProto,
  Expr,
  Flag,
  In,
  InInt,
  InIp,
  InProto,
  IntRange,
  IpAddress,
  IpSetMember,
  Logical,
  Not,
  Or,
  Xor,
} from './ast.js';
