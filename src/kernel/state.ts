/**
 * One read of everything rtnetlink knows about a namespace that the reconcilers diff against: five in-process
 * dumps on the namespace's socket, no process. (nftables is read separately: nft.ts.)
 */
import { ADDRESS_DUMP_BODY, decodeAddresses, type Address } from './addresses.js';
import { netlinkRead, type NetnsRef } from './ip.js';
import { decodeLink, LINK_DUMP_BODY, type Link } from './links.js';
import { RTM } from './netlink/codec.js';
import { rtnlDump } from './netlink/socket.js';
import { decodeNeighbours, NEIGHBOUR_DUMP_BODY, type Neighbour } from './neighbours.js';
import { decodeRoutes, ROUTE_DUMP_BODY, type Route } from './routes.js';
import { decodeRules, RULE_DUMP_BODY, type Rule } from './rules.js';

export interface IpState {
  links: Link[];
  addresses: Address[];
  /** Every table, both families. */
  routes: Route[];
  /** IPv4 rules (IPv6 rules: listRules(ns, { family: 6 })); empty when not asked for. */
  rules: Rule[];
  neighbours: Neighbour[];
}

/**
 * Twin: `ip -N -j -d -n NS` `link show`, `address show`, `route show table all` (both families), `rule show`,
 * `neigh show` — as netlink dumps. A dump interrupted by a concurrent change is retried, then fails (EINTR).
 */
export async function readIpState(ns: NetnsRef, what: { rules?: boolean } = {}): Promise<IpState> {
  return netlinkRead(ns, ['link', 'show'], async () => {
    const linkBodies = await rtnlDump(ns, RTM.GETLINK, LINK_DUMP_BODY, RTM.NEWLINK);
    const links = linkBodies.map(decodeLink);
    const names = new Map(links.map((l) => [l.ifindex, l.name]));
    const addrs = await rtnlDump(ns, RTM.GETADDR, ADDRESS_DUMP_BODY, RTM.NEWADDR);
    const routes = await rtnlDump(ns, RTM.GETROUTE, ROUTE_DUMP_BODY, RTM.NEWROUTE);
    // A caller that diffs no rules (a customer netns holds none of ours) saves the dump.
    const rules = what.rules === false ? [] : await rtnlDump(ns, RTM.GETRULE, RULE_DUMP_BODY, RTM.NEWRULE);
    const neigh = await rtnlDump(ns, RTM.GETNEIGH, NEIGHBOUR_DUMP_BODY, RTM.NEWNEIGH);
    return {
      links,
      addresses: decodeAddresses(addrs, names),
      routes: decodeRoutes(routes, names),
      rules: decodeRules(rules).filter((r) => r.family === 4),
      neighbours: decodeNeighbours(neigh, names),
    };
  });
}
