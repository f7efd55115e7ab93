/** The account's firewall: a default action and ordered rules in a wirefilter-style expression language. */
import { joinField, ValidationError } from './errors.js';
import { parseExpression } from './expression/index.js';
import { ExpressionError } from './expression/errors.js';
import { FirewallInput, type Firewall } from './schemas.js';
import { checkShape } from './shape.js';

/** A new account lets everything through until its owner writes rules. */
export const DEFAULT_FIREWALL: Firewall = { default_action: 'allow', rules: [] };

export interface FirewallRuleDraft {
  id?: string;
  action: 'allow' | 'block';
  expression: string;
  description: string;
  enabled: boolean;
}

export interface FirewallDraft {
  default_action: 'allow' | 'block';
  rules: FirewallRuleDraft[];
}

/** Throws ValidationError(field) with the parser's position and what it expected. */
export function checkExpression(text: string, field: string): void {
  try {
    parseExpression(text);
  } catch (err) {
    if (err instanceof ExpressionError) throw new ValidationError(field, `invalid expression ${err.message}`);
    throw err;
  }
}

export function parseFirewallInput(input: unknown, base = ''): FirewallDraft {
  const f = checkShape(FirewallInput, input, base);
  const rules = (f.rules ?? []).map((r, i): FirewallRuleDraft => {
    const at = joinField(joinField(base, 'rules'), i);
    checkExpression(r.expression, joinField(at, 'expression'));
    return {
      ...(r.id !== undefined ? { id: r.id } : {}),
      action: r.action,
      expression: r.expression,
      description: r.description ?? '',
      enabled: r.enabled ?? true,
    };
  });
  return { default_action: f.default_action, rules };
}
