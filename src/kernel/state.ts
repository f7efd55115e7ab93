/**
 * One read of everything iproute2 knows about a namespace, in ONE spawn — what a reconciler diffs against.
 * (nftables is read separately: nft.ts.)
 */
import { parseAddresses, type Address } from './addresses.js';
import { ipJsonBatch } from './ip.js';
import { parseLinks, type Link } from './links.js';
import type { NetnsRef } from './netns.js';
import { parseNeighbours, type Neighbour } from './neighbours.js';
import { parseRoutes, ROUTE_SHOW_COMMANDS, type Route } from './routes.js';
import { parseRules, type Rule } from './rules.js';

export interface IpState {
  links: Link[];
  addresses: Address[];
  /** Every table, both families. */
  routes: Route[];
  /** IPv4 rules (IPv6 rules: listRules(ns, { family: 6 })). */
  rules: Rule[];
  neighbours: Neighbour[];
}

/**
 * Twin: `ip -N -j -d -n NS -batch -` with `link show`, `address show`, `route show table all root 0.0.0.0/0`,
 * `route show table all root ::/0`, `rule show`, `neigh show`.
 */
export async function readIpState(ns: NetnsRef): Promise<IpState> {
  const [links, addrs, r4, r6, rules, neigh] = await ipJsonBatch(ns, [
    ['link', 'show'],
    ['address', 'show'],
    ...ROUTE_SHOW_COMMANDS,
    ['rule', 'show'],
    ['neigh', 'show'],
  ]);
  return {
    links: parseLinks(links),
    addresses: parseAddresses(addrs),
    routes: [...parseRoutes(r4, 4), ...parseRoutes(r6, 6)],
    rules: parseRules(rules, 4),
    neighbours: parseNeighbours(neigh),
  };
}
