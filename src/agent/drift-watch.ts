/**
 * Event-driven drift repair: which reconcile keys a batch of kernel notifications (kernel/netlink/watch.ts) calls
 * for. The rule is to react to anything that may have touched an object we own, and to nothing else — traffic
 * (neighbour state changes, carrier flaps), other daemons (BIRD's routes) and our own writes are not drift.
 *
 *   customer namespace (known by the id the host gives it, from its veth's peer):
 *     a link deleted or changed by a request, a route of our protocol, an nftables commit
 *     by someone else, an address or neighbour a request changed, a tc filter or qdisc deleted → that account
 *   host namespace:
 *     an account's host veth (link, address, tc deleted)                  → that account
 *     a route of our protocol in the customer table                       → the accounts it points into, or host
 *     a rule                                                              → host, dataplane (its fast-path check)
 *     an nftables commit by someone else                                  → host
 *     an address elsewhere (anycast endpoints on lo; local routes)        → host, bgp, dataplane
 *     the uplink (link, tc deleted)                                       → dataplane
 *   /run/netns: an account's namespace name removed                       → that account
 *
 * A link notification never names its sender, so an account's veth end that changed "by the kernel" (our own
 * creation, someone's `ip link set … down`) is handed back as a link check: the caller looks at the link once the
 * burst has settled and reconciles only if it is not as desired.
 *
 * Pure: the context answers the lookups.
 */
import type { KernelChange } from '../kernel/netlink/watch.js';
import type { Link } from '../kernel/links.js';
import { RT_PROTO_OPENTRANSIT } from '../kernel/routes.js';

export interface DriftContext {
  uplink: string;
  /** The customer table in the host netns. */
  table: number;
  /** The account whose host-side veth has this name. */
  accountOfHostVeth(name: string): string | undefined;
  /** The account whose namespace has this name. */
  accountOfNetns(name: string): string | undefined;
  /** The account whose namespace the host knows by this id. */
  accountOfNsid(nsid: number): string | undefined;
  /** A host link by ifindex (as last seen: a deleted link's own notification still names it). */
  hostLink(ifindex: number): Link | undefined;
}

/** A link of an account (its host veth, or a link in its namespace) to judge by how it looks. */
export interface LinkCheck {
  account: string;
  /** null: the host netns. */
  nsid: number | null;
  ifindex: number;
}

export interface DriftKeys {
  accounts: Set<string>;
  host: boolean;
  dataplane: boolean;
  bgp: boolean;
  /** The host's addresses or customer-table routes changed: a cached read of them is stale. */
  hostRoutes: boolean;
  /** Account veth ends to look at once a burst of notifications has settled (see the module comment). */
  linkChecks: LinkCheck[];
  /** What was seen, for the log: "route deleted in a customer netns", "rule added in the host netns"… (distinct). */
  seen: string[];
}

export function driftKeys(changes: readonly KernelChange[], ctx: DriftContext): DriftKeys {
  const out: DriftKeys = { accounts: new Set(), host: false, dataplane: false, bgp: false, hostRoutes: false, linkChecks: [], seen: [] };
  const seen = new Set<string>();
  const note = (c: KernelChange) => {
    if (c.kind === 'netns') seen.add(`namespace ${c.name} ${c.deleted ? 'removed' : 'added'}`);
    else seen.add(`${c.kind} ${c.kind === 'nft' ? 'commit' : c.deleted ? 'deleted' : 'changed'} in ${c.nsid === null ? 'the host' : 'a customer'} netns`);
  };
  const account = (c: KernelChange, id: string | undefined) => {
    if (id === undefined) return;
    out.accounts.add(id);
    note(c);
  };
  const shared = (c: KernelChange, ...keys: Array<'host' | 'dataplane' | 'bgp'>) => {
    for (const k of keys) out[k] = true;
    note(c);
  };
  const byIfindex = (ifindex: number | undefined) => {
    const name = ifindex === undefined ? undefined : ctx.hostLink(ifindex)?.name;
    return name === undefined ? undefined : ctx.accountOfHostVeth(name);
  };
  for (const c of changes) {
    if (c.own) continue;
    if (c.kind === 'netns') {
      if (c.deleted) account(c, ctx.accountOfNetns(c.name ?? ''));
      continue;
    }
    const softLink = c.kind === 'link' && !c.deleted && c.byKernel;
    if (c.nsid !== null) {
      const id = ctx.accountOfNsid(c.nsid);
      if (id === undefined || !customerMatters(c)) continue;
      if (softLink) out.linkChecks.push({ account: id, nsid: c.nsid, ifindex: c.ifindex! });
      else account(c, id);
      continue;
    }
    switch (c.kind) {
      case 'link': {
        const name = c.link?.name ?? ctx.hostLink(c.ifindex ?? -1)?.name;
        if (name === undefined) break;
        const id = ctx.accountOfHostVeth(name);
        if (name === ctx.uplink) shared(c, 'dataplane');
        else if (id !== undefined && softLink) out.linkChecks.push({ account: id, nsid: null, ifindex: c.ifindex! });
        else account(c, id);
        break;
      }
      case 'address': {
        // The kernel's own addresses (IPv6 autoconf when a link comes up) are not ours.
        if (c.byKernel) break;
        out.hostRoutes = true;
        const id = byIfindex(c.ifindex);
        if (id !== undefined) account(c, id);
        else shared(c, 'host', 'bgp', 'dataplane');
        break;
      }
      case 'route': {
        if (c.protocol !== RT_PROTO_OPENTRANSIT) break;
        out.hostRoutes = true;
        const ids = (c.oifs ?? []).map(byIfindex).filter((id): id is string => id !== undefined);
        if (c.table === ctx.table && ids.length > 0) for (const id of ids) account(c, id);
        else shared(c, 'host', 'bgp');
        break;
      }
      case 'rule':
        shared(c, 'host', 'dataplane');
        break;
      case 'nft':
        shared(c, 'host');
        break;
      case 'tc': {
        if (!c.deleted) break;
        if (ctx.hostLink(c.ifindex ?? -1)?.name === ctx.uplink) shared(c, 'dataplane');
        else account(c, byIfindex(c.ifindex));
        break;
      }
      case 'neighbour':
        break; // the host netns holds no neighbour of ours
    }
  }
  out.seen = [...seen];
  return out;
}

/** Whether a change inside a customer namespace may touch what the account's pass owns there. */
function customerMatters(c: KernelChange): boolean {
  switch (c.kind) {
    case 'link':
    case 'nft':
      return true;
    case 'address':
      return !c.byKernel;
    case 'route':
      return c.protocol === RT_PROTO_OPENTRANSIT;
    case 'neighbour':
      // A request's (ours are permanent; `ip neigh del` of one reports it FAILED by then). ARP's own resolution
      // and garbage collection come from the kernel.
      return !c.byKernel;
    case 'tc':
      return c.deleted;
    default:
      return false; // rules: none of ours live in a customer namespace
  }
}
