/**
 * One-object changes to an account document, as the imperative API endpoints make them. Each is pure (apart from
 * drawing ids): it returns the next document, or throws a ModelError — ValidationError (bad input or a reference
 * to nothing), ConflictError (duplicate, overlap with another account, or the change would break another object,
 * e.g. deleting a tunnel a route uses), NotFoundError (no such object in this account).
 */
import { findProblems, introducedProblems, objectChangeError, type ConsistencyContext } from './consistency.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import { parseFirewallInput } from './firewall.js';
import { parseGreTunnelInput, type GreTunnelDraft } from './gre-tunnel.js';
import { newId as randomId } from './ids.js';
import { parsePrefixInput, parsePrefixPatch } from './prefix.js';
import { parseRouteInput, type RouteDraft } from './route.js';
import { resolveFirewall } from './config.js';
import {
  MAX_PREFIXES,
  MAX_ROUTES,
  MAX_TUNNELS,
  type AccountDocument,
  type Firewall,
  type GreTunnel,
  type Prefix,
  type Route,
} from './schemas.js';

export interface ModelContext extends ConsistencyContext {
  /** Draws ids for new objects (tests pass a deterministic one). */
  newId?: () => string;
}

export interface Changed<T> {
  doc: AccountDocument;
  item: T;
}

/** Throws the first problem `next` has that `before` did not. */
function checkChange(before: AccountDocument, next: AccountDocument, subjectId: string | undefined, ctx: ModelContext): void {
  const introduced = introducedProblems(findProblems(before, ctx), findProblems(next, ctx));
  const err = objectChangeError(introduced, subjectId);
  if (err) throw err;
}

/** New objects get their id from the server: an id in a create body is a mistake worth saying so. */
function refuseId(draft: { id?: string }): void {
  if (draft.id !== undefined) throw new ValidationError('id', 'is assigned by the server; omit it');
}

/** A replacement body may repeat the object's id (GET, edit, PUT) but not name another one. */
function sameId(draft: { id?: string }, id: string): void {
  if (draft.id !== undefined && draft.id !== id) {
    throw new ValidationError('id', `does not match the id in the path (${id}); ids cannot be changed`);
  }
}

function find<T extends { id: string }>(list: readonly T[], id: string, what: string): { item: T; index: number } {
  const index = list.findIndex((o) => o.id === id);
  if (index < 0) throw new NotFoundError(`this account has no ${what} with id ${id}`);
  return { item: list[index]!, index };
}

function full(count: number, max: number, what: string): void {
  if (count >= max) throw new ConflictError(undefined, `this account already has ${max} ${what}, the most allowed`);
}

// --- prefixes --------------------------------------------------------------------------------------------------

export function addPrefix(doc: AccountDocument, input: unknown, ctx: ModelContext): Changed<Prefix> {
  const draft = parsePrefixInput(input);
  refuseId(draft);
  full(doc.prefixes.length, MAX_PREFIXES, 'prefixes');
  const item: Prefix = { id: (ctx.newId ?? randomId)(), cidr: draft.cidr, advertised: draft.advertised, description: draft.description };
  const next = { ...doc, prefixes: [...doc.prefixes, item] };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

/** PATCH: only `advertised` and `description` change; a prefix's cidr never does (delete and add instead). */
export function updatePrefix(doc: AccountDocument, prefixId: string, input: unknown, ctx: ModelContext): Changed<Prefix> {
  const { item: old, index } = find(doc.prefixes, prefixId, 'prefix');
  const patch = parsePrefixPatch(input);
  const item: Prefix = {
    ...old,
    ...(patch.advertised !== undefined ? { advertised: patch.advertised } : {}),
    ...(patch.description !== undefined ? { description: patch.description } : {}),
  };
  const prefixes = doc.prefixes.slice();
  prefixes[index] = item;
  const next = { ...doc, prefixes };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

export function deletePrefix(doc: AccountDocument, prefixId: string, ctx: ModelContext): Changed<Prefix> {
  const { item } = find(doc.prefixes, prefixId, 'prefix');
  const next = { ...doc, prefixes: doc.prefixes.filter((p) => p.id !== prefixId) };
  checkChange(doc, next, undefined, ctx);
  return { doc: next, item };
}

// --- GRE tunnels -----------------------------------------------------------------------------------------------

function tunnelOf(id: string, d: GreTunnelDraft): GreTunnel {
  return {
    id,
    name: d.name,
    customer_gre_endpoint: d.customer_gre_endpoint,
    edge_gre_endpoint: d.edge_gre_endpoint,
    interface_address: d.interface_address,
    ttl: d.ttl,
    mtu: d.mtu,
    health_check: d.health_check,
    description: d.description,
  };
}

export function addGreTunnel(doc: AccountDocument, input: unknown, ctx: ModelContext): Changed<GreTunnel> {
  const draft = parseGreTunnelInput(input);
  refuseId(draft);
  full(doc.gre_tunnels.length, MAX_TUNNELS, 'GRE tunnels');
  const item = tunnelOf((ctx.newId ?? randomId)(), draft);
  const next = { ...doc, gre_tunnels: [...doc.gre_tunnels, item] };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

/** PUT: replaces every field (omitted optional fields take their defaults again). */
export function replaceGreTunnel(doc: AccountDocument, tunnelId: string, input: unknown, ctx: ModelContext): Changed<GreTunnel> {
  const { index } = find(doc.gre_tunnels, tunnelId, 'GRE tunnel');
  const draft = parseGreTunnelInput(input);
  sameId(draft, tunnelId);
  const item = tunnelOf(tunnelId, draft);
  const gre_tunnels = doc.gre_tunnels.slice();
  gre_tunnels[index] = item;
  const next = { ...doc, gre_tunnels };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

export function deleteGreTunnel(doc: AccountDocument, tunnelId: string, ctx: ModelContext): Changed<GreTunnel> {
  const { item } = find(doc.gre_tunnels, tunnelId, 'GRE tunnel');
  const next = { ...doc, gre_tunnels: doc.gre_tunnels.filter((t) => t.id !== tunnelId) };
  checkChange(doc, next, undefined, ctx);
  return { doc: next, item };
}

// --- routes ----------------------------------------------------------------------------------------------------

function routeOf(id: string, d: RouteDraft): Route {
  return { id, prefix: d.prefix, nexthop: d.nexthop, priority: d.priority, weight: d.weight, description: d.description };
}

export function addRoute(doc: AccountDocument, input: unknown, ctx: ModelContext): Changed<Route> {
  const draft = parseRouteInput(input);
  refuseId(draft);
  full(doc.routes.length, MAX_ROUTES, 'routes');
  const item = routeOf((ctx.newId ?? randomId)(), draft);
  const next = { ...doc, routes: [...doc.routes, item] };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

export function replaceRoute(doc: AccountDocument, routeId: string, input: unknown, ctx: ModelContext): Changed<Route> {
  const { index } = find(doc.routes, routeId, 'route');
  const draft = parseRouteInput(input);
  sameId(draft, routeId);
  const item = routeOf(routeId, draft);
  const routes = doc.routes.slice();
  routes[index] = item;
  const next = { ...doc, routes };
  checkChange(doc, next, item.id, ctx);
  return { doc: next, item };
}

export function deleteRoute(doc: AccountDocument, routeId: string, ctx: ModelContext): Changed<Route> {
  const { item } = find(doc.routes, routeId, 'route');
  const next = { ...doc, routes: doc.routes.filter((r) => r.id !== routeId) };
  checkChange(doc, next, undefined, ctx);
  return { doc: next, item };
}

// --- firewall --------------------------------------------------------------------------------------------------

/**
 * PUT: replaces the firewall. Rules keep their ids when matched (by id, then identical action and expression,
 * then position; see config.ts); an unknown id is refused.
 */
export function replaceFirewall(doc: AccountDocument, input: unknown, ctx: ModelContext): Changed<Firewall> {
  const draft = parseFirewallInput(input);
  const item = resolveFirewall(doc.firewall, draft, '', ctx.newId ?? randomId);
  return { doc: { ...doc, firewall: item }, item };
}
