/**
 * The anycast GRE endpoints as local addresses of the host netns: each one a /32 on `lo` labelled `lo:ot` (the
 * label is how we know an address on lo is ours). The edge announces an endpoint only once it is local: GRE from
 * customer routers and anything else sent to it (health checks, probes) is then addressed to this host. XDP takes
 * the GRE before the stack; the rest is delivered locally.
 *
 * Addresses stay while the node is drained (packets in flight still arrive) and when the agent stops; they are
 * removed only when the operator drops an endpoint from the settings (prune, from a complete state only).
 */
import { addressDeleteOp, addressReplaceOp, listAddresses, type AddressSpec } from '../../kernel/addresses.js';
import { runIpOps, type IpOp } from '../../kernel/ip.js';
import { getLink, linkSetOp } from '../../kernel/links.js';
import { publicIpv4Field } from '../../model/gre-tunnel.js';

export const ANYCAST_LABEL = 'lo:ot';

/** The lo addresses for the endpoints (invalid ones are skipped: edgeAnnouncements reports them). Pure. */
export function anycastLoopbackDesired(endpoints: readonly string[]): AddressSpec[] {
  const out: AddressSpec[] = [];
  for (const e of endpoints) {
    let ip: string;
    try {
      ip = publicIpv4Field(e, 'anycast_endpoint');
    } catch {
      continue;
    }
    if (!out.some((a) => a.cidr === `${ip}/32`)) out.push({ dev: 'lo', cidr: `${ip}/32`, label: ANYCAST_LABEL });
  }
  return out;
}

/**
 * Makes lo hold exactly the desired endpoint addresses among ours (`prune`: also delete ours that are no longer
 * wanted). Returns the endpoints (addresses without /32) that are local after the pass.
 */
export async function reconcileAnycastLoopback(
  ns: string,
  desired: readonly AddressSpec[],
  prune: boolean,
  changes: string[],
  o: { dryRun?: boolean } = {},
): Promise<string[]> {
  const ops: IpOp[] = [];
  const lo = await getLink(ns, 'lo');
  if (lo && !lo.up) {
    changes.push(`${ns}: set lo up`);
    ops.push(linkSetOp({ name: 'lo', up: true }));
  }
  const actual = await listAddresses(ns, { dev: 'lo', family: 4 });
  for (const d of desired) {
    // Present without our label: someone else put it there; it is local either way, and stays theirs.
    if (actual.some((a) => a.cidr === d.cidr)) continue;
    changes.push(`${ns}: add anycast endpoint ${d.cidr} on lo`);
    ops.push(addressReplaceOp(d));
  }
  if (prune) {
    for (const a of actual) {
      if (a.label !== ANYCAST_LABEL || desired.some((d) => d.cidr === a.cidr)) continue;
      changes.push(`${ns}: delete anycast endpoint ${a.cidr} from lo`);
      ops.push(addressDeleteOp({ dev: 'lo', cidr: a.cidr }));
    }
  }
  // Dry run (`opentransit plan`): the ops are only described; every desired endpoint counts as local, as it would be.
  if (o.dryRun) return desired.map((d) => d.cidr.slice(0, -3));
  if (ops.length) await runIpOps(ns, ops);
  const after = ops.length ? await listAddresses(ns, { dev: 'lo', family: 4 }) : actual;
  return desired.filter((d) => after.some((a) => a.cidr === d.cidr)).map((d) => d.cidr.slice(0, -3));
}
