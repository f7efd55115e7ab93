/**
 * Cross-object rules of an account document, checked as a whole so that the imperative endpoints (one object at
 * a time), `PUT /config` (a whole document) and operator settings changes share one definition of "consistent":
 *
 *  - prefixes: no exact duplicates in the account (nested prefixes ARE allowed: a /22 and a /24 inside it, e.g.
 *    to advertise the /24 on its own); no overlap with any prefix of another account; no prefix holding one of the
 *    operator's anycast endpoints;
 *  - GRE tunnels: unique names; the edge endpoint is one of the operator's anycast endpoints and the customer
 *    endpoint is not; the (customer, edge) endpoint pair is unique across all accounts (decap tells tunnels apart
 *    by it); interface subnets do not overlap within the account (a nexthop must name one tunnel);
 *  - routes: the prefix lies inside one of the account's prefixes; the nexthop is the customer-side address of one
 *    of the account's tunnels; one route per (prefix, nexthop).
 *
 * findProblems lists every violation; callers decide how to report it (problemToError, introducedProblems).
 */
import { ConflictError, ModelError, ValidationError, joinField } from './errors.js';
import { tunnelAddresses } from './gre-tunnel.js';
import { cidrContains, cidrContainsIp, cidrsOverlap, parseCidr, parseIp, type Cidr } from './ip.js';
import { greEndpointKey } from './registry.js';
import { routeKey } from './route.js';
import type { AccountDocument, Registry, Settings } from './schemas.js';

export type ObjectKind = 'prefix' | 'gre_tunnel' | 'route';

export const LIST_OF: Record<ObjectKind, 'prefixes' | 'gre_tunnels' | 'routes'> = {
  prefix: 'prefixes',
  gre_tunnel: 'gre_tunnels',
  route: 'routes',
};

/**
 * - duplicate: clashes with another object of the same account;
 * - reference: names something that does not exist (a nexthop, an anycast endpoint, a covering prefix);
 * - global: clashes with another account or with the operator's settings.
 */
export type ProblemNature = 'duplicate' | 'reference' | 'global';

export interface Problem {
  nature: ProblemNature;
  kind: ObjectKind;
  /** Index of the object in its list, and its id. */
  index: number;
  id: string;
  /** The field inside the object, e.g. "nexthop". */
  field: string;
  /** The reason, e.g. "10.200.0.9 is not the customer-side address of any of this account's GRE tunnels". */
  message: string;
  /** How people name the object: "route 203.0.113.0/24 via 10.200.0.1". */
  label: string;
}

export interface ConsistencyContext {
  settings: Settings;
  /** Every account's names, prefixes and endpoints; the entry of the account being checked is ignored. */
  registry: Registry;
}

/** The path of a problem in an account/config document: "routes[2].nexthop". */
export function problemPath(p: Problem): string {
  return joinField(joinField(LIST_OF[p.kind], p.index), p.field);
}

/** How many times each key occurs (duplicate checks in one pass, not pairwise). */
function counts<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const item of items) m.set(keyOf(item), (m.get(keyOf(item)) ?? 0) + 1);
  return m;
}

export function findProblems(doc: AccountDocument, ctx: ConsistencyContext): Problem[] {
  const problems: Problem[] = [];
  const add = (p: Problem) => problems.push(p);

  // --- prefixes ---
  const prefixCidrs: Cidr[] = doc.prefixes.map((p) => parseCidr(p.cidr));
  const others: Array<{ cidr: Cidr; text: string }> = [];
  const otherEndpoints = new Set<string>();
  const otherSubnets: Array<{ cidr: Cidr; text: string }> = [];
  for (const [id, entry] of Object.entries(ctx.registry.accounts)) {
    if (id === doc.id) continue;
    for (const text of entry.prefixes) others.push({ cidr: parseCidr(text), text });
    for (const key of entry.gre_endpoints) otherEndpoints.add(key);
    for (const text of entry.tunnel_subnets ?? []) otherSubnets.push({ cidr: parseCidr(text), text });
  }
  const anycast = ctx.settings.anycast_endpoints.map((text) => ({ text, ip: parseIp(text) }));
  const cidrCounts = counts(doc.prefixes, (p) => p.cidr);
  doc.prefixes.forEach((p, i) => {
    const c = prefixCidrs[i]!;
    const base = { kind: 'prefix' as const, index: i, id: p.id, field: 'cidr', label: `prefix ${p.cidr}` };
    if (cidrCounts.get(p.cidr)! > 1) {
      add({ ...base, nature: 'duplicate', message: `${p.cidr} is already a prefix of this account` });
    }
    const clash = others.find((o) => cidrsOverlap(o.cidr, c));
    if (clash) {
      const how = clash.text === p.cidr ? 'belongs to' : `overlaps ${clash.text} of`;
      add({ ...base, nature: 'global', message: `${p.cidr} ${how} another account` });
    }
    const endpoint = anycast.find((a) => cidrContainsIp(c, a.ip));
    if (endpoint) {
      add({ ...base, nature: 'global', message: `${p.cidr} holds the operator's anycast endpoint ${endpoint.text}` });
    }
  });

  // --- GRE tunnels ---
  const subnets = doc.gre_tunnels.map((t) => tunnelAddresses(t.interface_address));
  const subnetCidrs = subnets.map((s) => parseCidr(s.subnet));
  const nameCounts = counts(doc.gre_tunnels, (t) => t.name);
  const pairCounts = counts(doc.gre_tunnels, greEndpointKey);
  doc.gre_tunnels.forEach((t, i) => {
    const base = { kind: 'gre_tunnel' as const, index: i, id: t.id, label: `GRE tunnel ${t.name}` };
    if (nameCounts.get(t.name)! > 1) {
      add({ ...base, nature: 'duplicate', field: 'name', message: `another GRE tunnel of this account is named ${t.name}` });
    }
    if (!ctx.settings.anycast_endpoints.includes(t.edge_gre_endpoint)) {
      const pool = ctx.settings.anycast_endpoints.join(', ') || 'none configured';
      add({
        ...base,
        nature: 'reference',
        field: 'edge_gre_endpoint',
        message: `${t.edge_gre_endpoint} is not one of the operator's anycast endpoints (${pool})`,
      });
    }
    if (ctx.settings.anycast_endpoints.includes(t.customer_gre_endpoint)) {
      add({
        ...base,
        nature: 'global',
        field: 'customer_gre_endpoint',
        message: `${t.customer_gre_endpoint} is one of the operator's anycast endpoints, not a customer router`,
      });
    }
    const pair = greEndpointKey(t);
    if (pairCounts.get(pair)! > 1) {
      add({
        ...base,
        nature: 'duplicate',
        field: 'customer_gre_endpoint',
        message: `another GRE tunnel of this account already runs between ${t.customer_gre_endpoint} and ${t.edge_gre_endpoint}`,
      });
    } else if (otherEndpoints.has(pair)) {
      add({
        ...base,
        nature: 'global',
        field: 'customer_gre_endpoint',
        message: `a GRE tunnel of another account already runs between ${t.customer_gre_endpoint} and ${t.edge_gre_endpoint}`,
      });
    }
    const foreign = otherSubnets.find((o) => cidrsOverlap(o.cidr, subnetCidrs[i]!));
    if (foreign) {
      add({
        ...base,
        nature: 'global',
        field: 'interface_address',
        message: `${subnets[i]!.subnet} overlaps the tunnel subnet ${foreign.text} of another account (edges tell accounts' tunnel sources apart by subnet)`,
      });
    }
    const overlapping = doc.gre_tunnels.findIndex((_u, j) => j !== i && cidrsOverlap(subnetCidrs[j]!, subnetCidrs[i]!));
    if (overlapping >= 0) {
      add({
        ...base,
        nature: 'duplicate',
        field: 'interface_address',
        message: `${subnets[i]!.subnet} overlaps the interface subnet of GRE tunnel ${doc.gre_tunnels[overlapping]!.name}`,
      });
    }
  });

  // --- routes ---
  const peers = new Map<string, string>(); // customer-side address → tunnel name
  const edges = new Map<string, { name: string; customer: string }>();
  doc.gre_tunnels.forEach((t, i) => {
    peers.set(subnets[i]!.customer, t.name);
    edges.set(subnets[i]!.edge, { name: t.name, customer: subnets[i]!.customer });
  });
  const routeCounts = counts(doc.routes, routeKey);
  doc.routes.forEach((r, i) => {
    const key = routeKey(r);
    const base = { kind: 'route' as const, index: i, id: r.id, label: `route ${key}` };
    const c = parseCidr(r.prefix);
    if (!prefixCidrs.some((p) => cidrContains(p, c))) {
      const list = doc.prefixes.map((p) => p.cidr).join(', ') || 'none yet';
      add({
        ...base,
        nature: 'reference',
        field: 'prefix',
        message: `${r.prefix} is not inside any of this account's prefixes (${list})`,
      });
    }
    if (!peers.has(r.nexthop)) {
      const edge = edges.get(r.nexthop);
      const hint = edge
        ? `: it is the edge side of GRE tunnel ${edge.name}, whose customer side is ${edge.customer}`
        : peers.size > 0
          ? ` (${[...peers].map(([addr, name]) => `${addr} for ${name}`).join(', ')})`
          : ' (the account has no GRE tunnels yet)';
      add({
        ...base,
        nature: 'reference',
        field: 'nexthop',
        message: `${r.nexthop} is not the customer-side address of any of this account's GRE tunnels${hint}`,
      });
    }
    if (routeCounts.get(key)! > 1) {
      add({ ...base, nature: 'duplicate', field: 'prefix', message: `another route of this account is ${key}` });
    }
  });

  return problems;
}

/**
 * Error for a problem of a whole document (`PUT /config`): the document contradicts itself → 400; it clashes
 * with another account or the operator's settings → 409.
 */
export function documentProblemToError(p: Problem): ModelError {
  const field = problemPath(p);
  return p.nature === 'global' ? new ConflictError(field, p.message) : new ValidationError(field, p.message);
}

function problemKey(p: Problem): string {
  return `${p.kind}\u0000${p.id}\u0000${p.field}\u0000${p.message}`;
}

/** Problems of `after` that `before` did not have (so a change never blames what was already there). */
export function introducedProblems(before: Problem[], after: Problem[]): Problem[] {
  const old = new Set(before.map(problemKey));
  return after.filter((p) => !old.has(problemKey(p)));
}

/**
 * Error for a one-object change (POST/PUT/PATCH/DELETE of one object) that introduced `problems`. A problem of the
 * object itself names its field (relative to the request body): a bad reference is a 400, a clash a 409. A
 * problem the change causes elsewhere (deleting a tunnel a route uses) is a 409 naming what would break.
 */
export function objectChangeError(problems: Problem[], subjectId: string | undefined): ModelError | undefined {
  const own = problems.find((p) => p.id === subjectId);
  if (own) {
    return own.nature === 'reference' ? new ValidationError(own.field, own.message) : new ConflictError(own.field, own.message);
  }
  const other = problems[0];
  if (!other) return undefined;
  return new ConflictError(undefined, `this change would break ${other.label}: ${other.message}`);
}
