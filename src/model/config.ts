/**
 * The declarative account document (`PUT /v1/accounts/{id}/config`) and its diff against what is stored.
 *
 * Applying matches the document's objects with the stored ones, so ids stay stable across applies:
 *  - an object that carries an `id` is that stored object (an unknown id is an error: it would otherwise be
 *    silently re-created with another id) — this is how a GET/edit/PUT renames a tunnel or moves a route;
 *  - otherwise by natural key: a prefix by cidr, a GRE tunnel by name, a route by (prefix, nexthop);
 *  - firewall rules (no natural key) by id, then by identical (action, expression) among the stored rules not yet
 *    matched, then by position (the stored rule at the same index, if still unmatched): editing a rule's
 *    expression in place keeps its id;
 *  - anything unmatched is created with a new id; stored objects left unmatched are deleted.
 * Everything optional takes its default, and what the document leaves out is removed (an omitted `firewall`
 * means allow-all with no rules). The document's `account`, when present, must be the account's name.
 */
import { isDeepStrictEqual } from 'node:util';
import { documentProblemToError, findProblems, type ConsistencyContext } from './consistency.js';
import { joinField, ValidationError } from './errors.js';
import { DEFAULT_FIREWALL, parseFirewallInput, type FirewallDraft } from './firewall.js';
import { parseGreTunnelInput } from './gre-tunnel.js';
import { newId as randomId } from './ids.js';
import { parsePrefixInput } from './prefix.js';
import { parseRouteInput, routeKey } from './route.js';
import {
  ConfigDocumentInput,
  type AccountDocument,
  type Firewall,
  type FirewallRule,
  type GreTunnel,
  type Prefix,
  type Route,
} from './schemas.js';
import { checkShape } from './shape.js';

export type ChangeOp = 'create' | 'update' | 'delete';
export type ChangeKind = 'prefix' | 'gre_tunnel' | 'route' | 'firewall_rule' | 'firewall';

/**
 * One difference. `key` is how people name the object: a prefix's cidr, a tunnel's name, a route's
 * "prefix via nexthop", a firewall rule's position "rules[i]" (in the new list for create/update, in the old one
 * for delete), "firewall" for the default action and the order of the rules.
 */
export interface Change {
  op: ChangeOp;
  kind: ChangeKind;
  key: string;
  before?: object;
  after?: object;
}

export interface ConfigDiff {
  changes: Change[];
}

interface Draft {
  id?: string;
}

/** Gives each draft the id of the stored object it stands for (see the module comment), or a new one. */
function matchIds<D extends Draft, S extends { id: string }>(
  stored: readonly S[],
  drafts: readonly D[],
  naturalKey: (o: D | S) => string,
  list: string,
  kind: string,
  newId: () => string,
): Array<D & { id: string }> {
  const byId = new Map(stored.map((s) => [s.id, s]));
  const claimed = new Set<string>();
  const ids: Array<string | undefined> = drafts.map((d, i) => {
    if (d.id === undefined) return undefined;
    const field = joinField(joinField(list, i), 'id');
    if (!byId.has(d.id)) {
      throw new ValidationError(field, `this account has no ${kind} with id ${d.id} (omit the id to create a new one)`);
    }
    if (claimed.has(d.id)) throw new ValidationError(field, `id ${d.id} appears twice in the document`);
    claimed.add(d.id);
    return d.id;
  });
  drafts.forEach((d, i) => {
    if (ids[i] !== undefined) return;
    const key = naturalKey(d);
    const match = stored.find((s) => !claimed.has(s.id) && naturalKey(s) === key);
    if (match) {
      claimed.add(match.id);
      ids[i] = match.id;
    }
  });
  return drafts.map((d, i) => ({ ...d, id: ids[i] ?? newId() }));
}

/**
 * Resolves a firewall written by a user against the stored one (ids by id, content, then position) — shared by
 * `PUT /firewall` and `PUT /config`. `base` is the path of the firewall in the input ("" or "firewall").
 */
export function resolveFirewall(stored: Firewall, draft: FirewallDraft, base: string, newId: () => string = randomId): Firewall {
  const list = joinField(base, 'rules');
  const byId = new Map(stored.rules.map((r) => [r.id, r]));
  const claimed = new Set<string>();
  const ids: Array<string | undefined> = draft.rules.map((r, i) => {
    if (r.id === undefined) return undefined;
    const field = joinField(joinField(list, i), 'id');
    if (!byId.has(r.id)) {
      throw new ValidationError(field, `this firewall has no rule with id ${r.id} (omit the id to create a new rule)`);
    }
    if (claimed.has(r.id)) throw new ValidationError(field, `id ${r.id} appears twice`);
    claimed.add(r.id);
    return r.id;
  });
  draft.rules.forEach((r, i) => {
    if (ids[i] !== undefined) return;
    const same = stored.rules.find((s) => !claimed.has(s.id) && s.action === r.action && s.expression === r.expression);
    if (same) {
      claimed.add(same.id);
      ids[i] = same.id;
    }
  });
  draft.rules.forEach((_r, i) => {
    if (ids[i] !== undefined) return;
    const atSamePosition = stored.rules[i];
    if (atSamePosition && !claimed.has(atSamePosition.id)) {
      claimed.add(atSamePosition.id);
      ids[i] = atSamePosition.id;
    }
  });
  return {
    default_action: draft.default_action,
    rules: draft.rules.map(
      (r, i): FirewallRule => ({
        id: ids[i] ?? newId(),
        action: r.action,
        expression: r.expression,
        description: r.description,
        enabled: r.enabled,
      }),
    ),
  };
}

/**
 * Validates a declarative document on its own and against the stored account (ids), and returns the account
 * document it describes. Throws ValidationError (400) naming the field as a path in the document
 * ("gre_tunnels[0].mtu"), or ConflictError (409) when it clashes with another account or the operator's settings.
 */
export function resolveConfig(
  stored: AccountDocument,
  input: unknown,
  ctx: ConsistencyContext,
  newId: () => string = randomId,
): AccountDocument {
  const cfg = checkShape(ConfigDocumentInput, input);
  if (cfg.account !== undefined && cfg.account !== stored.name) {
    throw new ValidationError('account', `the document is for account "${cfg.account}" but this account is "${stored.name}"`);
  }
  const prefixDrafts = (cfg.prefixes ?? []).map((p, i) => parsePrefixInput(p, joinField('prefixes', i)));
  const tunnelDrafts = (cfg.gre_tunnels ?? []).map((t, i) => parseGreTunnelInput(t, joinField('gre_tunnels', i)));
  const routeDrafts = (cfg.routes ?? []).map((r, i) => parseRouteInput(r, joinField('routes', i)));
  const firewallDraft: FirewallDraft =
    cfg.firewall === undefined ? structuredClone(DEFAULT_FIREWALL) : parseFirewallInput(cfg.firewall, 'firewall');

  const prefixes: Prefix[] = matchIds(stored.prefixes, prefixDrafts, (p) => p.cidr, 'prefixes', 'prefix', newId).map(
    (p) => ({ id: p.id, cidr: p.cidr, advertised: p.advertised, description: p.description }),
  );
  const gre_tunnels: GreTunnel[] = matchIds(
    stored.gre_tunnels,
    tunnelDrafts,
    (t) => t.name,
    'gre_tunnels',
    'GRE tunnel',
    newId,
  ).map((t) => ({
    id: t.id,
    name: t.name,
    customer_gre_endpoint: t.customer_gre_endpoint,
    edge_gre_endpoint: t.edge_gre_endpoint,
    interface_address: t.interface_address,
    ttl: t.ttl,
    mtu: t.mtu,
    health_check: t.health_check,
    description: t.description,
  }));
  const routes: Route[] = matchIds(stored.routes, routeDrafts, routeKey, 'routes', 'route', newId).map((r) => ({
    id: r.id,
    prefix: r.prefix,
    nexthop: r.nexthop,
    priority: r.priority,
    weight: r.weight,
    description: r.description,
  }));
  const firewall = resolveFirewall(stored.firewall, firewallDraft, 'firewall', newId);

  const next: AccountDocument = { ...stored, prefixes, gre_tunnels, routes, firewall };
  const problem = findProblems(next, ctx)[0];
  if (problem) throw documentProblemToError(problem);
  return next;
}

function diffList<T extends { id: string }>(
  kind: ChangeKind,
  before: readonly T[],
  after: readonly T[],
  keyOf: (o: T) => string,
): Change[] {
  const changes: Change[] = [];
  const old = new Map(before.map((o) => [o.id, o]));
  const kept = new Set<string>();
  for (const o of after) {
    const b = old.get(o.id);
    if (!b) {
      changes.push({ op: 'create', kind, key: keyOf(o), after: o });
      continue;
    }
    kept.add(o.id);
    if (!isDeepStrictEqual(b, o)) changes.push({ op: 'update', kind, key: keyOf(o), before: b, after: o });
  }
  for (const b of before) if (!kept.has(b.id)) changes.push({ op: 'delete', kind, key: keyOf(b), before: b });
  return changes;
}

/**
 * What changes between two versions of an account document, matched by id (resolveConfig gives stable ids).
 * Pure; order: prefixes, GRE tunnels, routes, firewall rules, firewall — within each, creates and updates in the
 * new document's order, then deletes.
 */
export function diffAccounts(before: AccountDocument, after: AccountDocument): ConfigDiff {
  const changes: Change[] = [
    ...diffList('prefix', before.prefixes, after.prefixes, (p) => p.cidr),
    ...diffList('gre_tunnel', before.gre_tunnels, after.gre_tunnels, (t) => t.name),
    ...diffList('route', before.routes, after.routes, routeKey),
  ];
  const oldRules = new Map(before.firewall.rules.map((r, i) => [r.id, { rule: r, index: i }]));
  const keptIds: string[] = [];
  after.firewall.rules.forEach((r, i) => {
    const b = oldRules.get(r.id);
    if (!b) {
      changes.push({ op: 'create', kind: 'firewall_rule', key: `rules[${i}]`, after: r });
      return;
    }
    keptIds.push(r.id);
    if (!isDeepStrictEqual(b.rule, r)) {
      changes.push({ op: 'update', kind: 'firewall_rule', key: `rules[${i}]`, before: b.rule, after: r });
    }
  });
  const kept = new Set(keptIds);
  before.firewall.rules.forEach((r, i) => {
    if (!kept.has(r.id)) changes.push({ op: 'delete', kind: 'firewall_rule', key: `rules[${i}]`, before: r });
  });
  // Creating or deleting rules shifts positions without reordering; only a change of the relative order of the
  // rules kept is a change of the firewall itself.
  const oldOrder = before.firewall.rules.map((r) => r.id).filter((id) => kept.has(id));
  const reordered = !isDeepStrictEqual(oldOrder, keptIds);
  if (reordered || before.firewall.default_action !== after.firewall.default_action) {
    changes.push({
      op: 'update',
      kind: 'firewall',
      key: 'firewall',
      before: { default_action: before.firewall.default_action, ...(reordered ? { rule_order: oldOrder } : {}) },
      after: { default_action: after.firewall.default_action, ...(reordered ? { rule_order: keptIds } : {}) },
    });
  }
  return { changes };
}

/**
 * Plans a `PUT /config`: the account document the input describes and the changes from `stored`. Pure apart from
 * the ids it draws for new objects. Throws like resolveConfig.
 */
export function planConfig(
  stored: AccountDocument,
  input: unknown,
  ctx: ConsistencyContext,
  newId: () => string = randomId,
): { doc: AccountDocument; changes: Change[] } {
  const doc = resolveConfig(stored, input, ctx, newId);
  return { doc, changes: diffAccounts(stored, doc).changes };
}

/** The diff of a desired declarative document against the stored account (an alias read as "desired vs stored"). */
export function diffConfig(stored: AccountDocument, desired: unknown, ctx: ConsistencyContext): ConfigDiff {
  return { changes: planConfig(stored, desired, ctx).changes };
}
