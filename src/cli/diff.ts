/**
 * Printing the change list of `PUT /v1/accounts/{id}/config` the way people read diffs:
 *   + prefix 203.0.113.0/24
 *   ~ route 203.0.113.0/24 via 10.200.0.1 (priority: 100 → 200)
 *   - gre_tunnel acme-chi
 */

export type ChangeOp = 'create' | 'update' | 'delete';

export interface Change {
  op: ChangeOp;
  kind: string;
  key: string;
  before?: unknown;
  after?: unknown;
}

const SYMBOL: Record<ChangeOp, string> = { create: '+', update: '~', delete: '-' };

/** One line per change; "no changes" when the list is empty. Ends with a newline. */
export function formatChanges(changes: readonly Change[]): string {
  if (changes.length === 0) return 'no changes\n';
  return changes.map(formatChange).join('\n') + '\n';
}

export function formatChange(change: Change): string {
  const symbol = SYMBOL[change.op] ?? '?';
  // The firewall itself is keyed "firewall": "~ firewall firewall" would say it twice.
  const head = change.key === change.kind ? `${symbol} ${change.kind}` : `${symbol} ${change.kind} ${change.key}`;
  if (change.op !== 'update') {
    // A rule's key is only its position: show what the rule does.
    const rule = change.kind === 'firewall_rule' ? ruleText(change.op === 'create' ? change.after : change.before) : '';
    return rule ? `${head}: ${rule}` : head;
  }
  const fields = changedFields(change.before, change.after);
  return fields.length > 0 ? `${head} (${fields.join(', ')})` : head;
}

/** The tally under a diff: "3 to create, 1 to update, 0 to delete", or "3 created, …" once applied. */
export function summarizeChanges(changes: readonly Change[], applied = false): string {
  const count = (op: ChangeOp): number => changes.filter((c) => c.op === op).length;
  const [c, u, d] = applied ? ['created', 'updated', 'deleted'] : ['to create', 'to update', 'to delete'];
  return `${count('create')} ${c}, ${count('update')} ${u}, ${count('delete')} ${d}`;
}

/**
 * The top-level fields that differ between two versions of an object, as `field: old → new`. Ids are the
 * server's business and never shown as a change.
 */
export function changedFields(before: unknown, after: unknown): string[] {
  if (!isRecord(before) || !isRecord(after)) {
    return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${show(before)} → ${show(after)}`];
  }
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => k !== 'id');
  return names
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => `${k}: ${show(before[k])} → ${show(after[k])}`);
}

function ruleText(rule: unknown): string {
  if (!isRecord(rule) || typeof rule.action !== 'string' || typeof rule.expression !== 'string') return '';
  return `${rule.action} ${rule.expression}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
