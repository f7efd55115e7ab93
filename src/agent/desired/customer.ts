/**
 * What one customer (account) needs on an edge server, as kernel objects — pure, from the account document.
 *
 *   host netns:     veth <ot+id> (169.254.0.1/32) ──── edge0 (169.254.0.2/32) in netns <prefix+id>
 *                   table <node.table>: <prefix> via 169.254.0.2 dev <ot+id> onlink       (per customer prefix;
 *                     IPv6: <prefix6> via fe80::2 dev <ot+id> mtu <smallest tunnel MTU>)
 *   customer netns: edge0 also holds each tunnel's edge-side interface address;
 *                   <route prefix> metric <priority> mtu <tunnel mtu> nexthop via <tunnel peer> dev edge0 onlink
 *                     weight <w> …  (equal priorities = one multipath route; lower metric wins);
 *                   a permanent neighbour per tunnel peer whose MAC encodes the tunnel (the tc program maps
 *                     it to the tunnel's outer header; DESIGN.md §2);
 *                   IPv6 routes (IPv6 inside the IPv4 tunnel): `<prefix6> metric <priority> mtu <mtu> nexthop via
 *                     <tunnel link-local> dev edge0 weight <w> …`, where the tunnel link-local is the EUI-64 address
 *                     of the tunnel MAC with a permanent IPv6 neighbour entry to that MAC — an IPv6 route cannot
 *                     have the IPv4 peer as gateway, and the tc program only looks at the MAC anyway;
 *                   default via 169.254.0.1 dev edge0 onlink (traffic back to the internet);
 *                   the firewall table (firewall.ts).
 */
import type { AccountDocument } from '../../model/schemas.js';
import { tunnelAddresses } from '../../model/gre-tunnel.js';
import type { AddressSpec } from '../../kernel/addresses.js';
import type { NeighbourSpec } from '../../kernel/neighbours.js';
import type { NftTableSpec } from '../../kernel/nft.js';
import type { RouteSpec } from '../../kernel/routes.js';
import type { VethSpec } from '../../kernel/links.js';
import { firewallTable, type FirewallProblem } from './firewall.js';
import { accountMtu } from './host.js';
import {
  CUSTOMER_LINK_ADDRESS,
  CUSTOMER_LINK_ADDRESS6,
  CUSTOMER_VETH,
  HOST_LINK_ADDRESS,
  HOST_LINK_ADDRESS6,
  customerNetns,
  customerVethMac,
  hostVethMac,
  hostVethName,
  tunnelLinkLocal,
  tunnelMac,
  tunnelNumbers,
  type NodeConfig,
} from './node.js';

/** Alias on both veth ends: marks them as ours and names the account they belong to. */
export const vethAlias = (accountId: string) => `opentransit:${accountId}`;

export interface TunnelDesired {
  id: string;
  name: string;
  /** Low 4 octets of the tunnel MAC. */
  number: number;
  mac: string;
  /** Customer-side interface address: the nexthop of routes over this tunnel. */
  peer: string;
  /** Link-local IPv6 next hop of IPv6 routes over this tunnel (EUI-64 of `mac`; node.ts tunnelLinkLocal). */
  peer6: string;
  /** Edge-side interface address with its length, on edge0. */
  edgeCidr: string;
  outerSource: string;
  outerDestination: string;
  ttl: number;
  mtu: number;
}

export interface CustomerDesired {
  accountId: string;
  accountName: string;
  netns: string;
  veth: VethSpec;
  /** Sysctls in the host netns for the host side of the veth. */
  hostSysctls: Record<string, string | number>;
  /** Link addresses of the host side of the veth. */
  hostAddresses: AddressSpec[];
  /** Routes in the host's customer table, one per prefix. */
  hostRoutes: RouteSpec[];
  /** Sysctls inside the customer netns. */
  sysctls: Record<string, string | number>;
  addresses: AddressSpec[];
  neighbours: NeighbourSpec[];
  routes: RouteSpec[];
  firewall: NftTableSpec;
  tunnels: TunnelDesired[];
  /** Problems that keep part of the account from being applied (reported as the account's error status). */
  problems: string[];
}

/** Veth MTU: plain Ethernet; the GRE overhead is taken off with route MTUs inside the customer netns. */
const VETH_MTU = 1500;

export function customerDesired(node: NodeConfig, account: AccountDocument): CustomerDesired {
  const netns = customerNetns(node, account.id);
  const hostVeth = hostVethName(account.id);
  const problems: string[] = [];

  const numbers = tunnelNumbers(account.gre_tunnels.map((t) => t.id));
  const tunnels: TunnelDesired[] = account.gre_tunnels.map((t) => {
    const a = tunnelAddresses(t.interface_address);
    const number = numbers.get(t.id)!;
    const mac = tunnelMac(number);
    return {
      id: t.id,
      name: t.name,
      number,
      mac,
      peer: a.customer,
      peer6: tunnelLinkLocal(mac),
      edgeCidr: `${a.edge}/${a.length}`,
      outerSource: t.edge_gre_endpoint,
      outerDestination: t.customer_gre_endpoint,
      ttl: t.ttl,
      mtu: t.mtu,
    };
  });
  const tunnelByPeer = new Map(tunnels.map((t) => [t.peer, t]));

  // Equal (prefix, priority) → one multipath route; its MTU is the smallest of its tunnels'.
  const groups = new Map<string, { prefix: string; priority: number; hops: { tunnel: TunnelDesired; weight: number }[] }>();
  for (const r of account.routes) {
    const tunnel = tunnelByPeer.get(r.nexthop);
    if (!tunnel) {
      problems.push(`route ${r.prefix} via ${r.nexthop}: no tunnel has that customer-side address`);
      continue;
    }
    const key = `${r.prefix}|${r.priority}`;
    const g = groups.get(key) ?? { prefix: r.prefix, priority: r.priority, hops: [] };
    g.hops.push({ tunnel, weight: r.weight });
    groups.set(key, g);
  }
  const routes: RouteSpec[] = [
    { dst: 'default', nexthops: [{ via: HOST_LINK_ADDRESS, dev: CUSTOMER_VETH, onlink: true }] },
    { dst: 'default', family: 6, nexthops: [{ via: HOST_LINK_ADDRESS6, dev: CUSTOMER_VETH }] },
    ...[...groups.values()].map(
      (g): RouteSpec => ({
        dst: g.prefix,
        metric: g.priority,
        mtu: Math.min(...g.hops.map((h) => h.tunnel.mtu)),
        nexthops: g.prefix.includes(':')
          ? g.hops.map((h) => ({ via: h.tunnel.peer6, dev: CUSTOMER_VETH, weight: h.weight }))
          : g.hops.map((h) => ({ via: h.tunnel.peer, dev: CUSTOMER_VETH, onlink: true, weight: h.weight })),
      }),
    ),
  ];

  const { table, problems: fwProblems } = firewallTable(account);
  problems.push(...fwProblems.map((p: FirewallProblem) => `firewall rule ${p.ruleId}: ${p.message}`));

  return {
    accountId: account.id,
    accountName: account.name,
    netns,
    veth: {
      ns: node.hostNetns,
      name: hostVeth,
      mac: hostVethMac(node, account.id),
      peerNs: netns,
      peerName: CUSTOMER_VETH,
      peerMac: customerVethMac(node, account.id),
      mtu: VETH_MTU,
      alias: vethAlias(account.id),
      up: true,
    },
    hostSysctls: {
      // Encapsulated packets come back from the customer netns with the anycast endpoint (local here) as source.
      [`net.ipv4.conf.${hostVeth}.accept_local`]: 1,
      // Return traffic arrives with customer sources, which only the customer table routes: no reverse-path check.
      [`net.ipv4.conf.${hostVeth}.rp_filter`]: 0,
    },
    hostAddresses: [
      { dev: hostVeth, cidr: `${HOST_LINK_ADDRESS}/32` },
      { dev: hostVeth, cidr: `${HOST_LINK_ADDRESS6}/64` },
    ],
    hostRoutes: account.prefixes.map(
      (p): RouteSpec =>
        p.cidr.includes(':')
          ? {
              dst: p.cidr,
              table: node.table,
              // The tunnel MTU here too, for IPv6: the host (global source address) then answers too-big packets
              // with ICMPv6 Packet Too Big. The customer netns would answer from a link-local address, which the
              // host must not forward (seen: an IPv6 client never learnt the path MTU; IPv4 has no such scope rule).
              mtu: accountMtu(account),
              nexthops: [{ via: CUSTOMER_LINK_ADDRESS6, dev: hostVeth }],
            }
          : { dst: p.cidr, table: node.table, nexthops: [{ via: CUSTOMER_LINK_ADDRESS, dev: hostVeth, onlink: true }] },
    ),
    sysctls: {
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv4.fib_multipath_hash_policy': 1,
      'net.ipv6.fib_multipath_hash_policy': 1,
      // The namespace forwards back out of the interface packets came in on: no ICMP redirects for that.
      'net.ipv4.conf.all.send_redirects': 0,
      'net.ipv4.conf.default.send_redirects': 0,
      [`net.ipv4.conf.${CUSTOMER_VETH}.send_redirects`]: 0,
      'net.ipv4.conf.all.rp_filter': 0,
      [`net.ipv4.conf.${CUSTOMER_VETH}.rp_filter`]: 0,
    },
    addresses: [
      { dev: CUSTOMER_VETH, cidr: `${CUSTOMER_LINK_ADDRESS}/32` },
      { dev: CUSTOMER_VETH, cidr: `${CUSTOMER_LINK_ADDRESS6}/64` },
      ...tunnels.map((t) => ({ dev: CUSTOMER_VETH, cidr: t.edgeCidr })),
    ],
    // Both families' next hops of a tunnel resolve to its MAC, whether or not a route uses them yet.
    neighbours: tunnels.flatMap((t) => [
      { dev: CUSTOMER_VETH, address: t.peer, lladdr: t.mac },
      { dev: CUSTOMER_VETH, address: t.peer6, lladdr: t.mac },
    ]),
    routes,
    firewall: table,
    tunnels,
    problems,
  };
}
