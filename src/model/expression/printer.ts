/**
 * printExpression: canonical text for an AST, such that parseExpression(printExpression(e)) deep-equals e
 * for every canonical AST (see ast.ts). Uses symbol operators, `and`/`or`/`xor`/`not` words, decimal numbers
 * and canonical addresses, and only the parentheses precedence requires.
 */

import type { Expr, IntRange, IpSetMember } from './ast.js';
import type { FieldName } from './fields.js';

/** Binding strength of the logical operators; operands that bind no tighter need parentheses. */
const PRECEDENCE = { or: 1, xor: 2, and: 3 } as const;

export function printExpression(expr: Expr): string {
  switch (expr.kind) {
    case 'flag':
      return expr.field;
    case 'compare':
      if (expr.field === 'ip.proto') return `${expr.field} ${expr.op} "${expr.value}"`;
      if (typeof expr.value === 'number') return `${expr.field} ${expr.op} ${expr.value}`;
      return `${expr.field} ${expr.op} ${expr.value.address}`;
    case 'bitand':
      return `${expr.field} & ${expr.mask}`;
    case 'in':
      return `${expr.field} in {${printSet(expr)}}`;
    case 'not': {
      const inner = printExpression(expr.expr);
      return isLogical(expr.expr) ? `not (${inner})` : `not ${inner}`;
    }
    case 'and':
    case 'or':
    case 'xor': {
      const own = PRECEDENCE[expr.kind];
      return expr.terms
        .map((t) => {
          const text = printExpression(t);
          return isLogical(t) && PRECEDENCE[t.kind] <= own ? `(${text})` : text;
        })
        .join(` ${expr.kind} `);
    }
  }
}

function isLogical(e: Expr): e is Extract<Expr, { kind: 'and' | 'or' | 'xor' }> {
  return e.kind === 'and' || e.kind === 'or' || e.kind === 'xor';
}

function printSet(expr: Extract<Expr, { kind: 'in' }>): string {
  switch (expr.field) {
    case 'ip.proto':
      return expr.set.map((p) => `"${p}"`).join(' ');
    case 'ip.src':
    case 'ip.dst':
      return (expr.set as IpSetMember[]).map(printIpMember).join(' ');
    default:
      return (expr.set as IntRange[]).map((r) => (r.from === r.to ? `${r.from}` : `${r.from}..${r.to}`)).join(' ');
  }
}

function printIpMember(m: IpSetMember): string {
  switch (m.type) {
    case 'address':
      return m.address;
    case 'cidr':
      return `${m.address}/${m.prefix}`;
    case 'range':
      return `${m.first}..${m.last}`;
  }
}

/** The distinct fields an expression uses, in order of first appearance. */
export function expressionFields(expr: Expr): FieldName[] {
  const seen = new Set<FieldName>();
  const walk = (e: Expr): void => {
    switch (e.kind) {
      case 'not':
        walk(e.expr);
        return;
      case 'and':
      case 'or':
      case 'xor':
        e.terms.forEach(walk);
        return;
      default:
        seen.add(e.field);
    }
  };
  walk(expr);
  return [...seen];
}
