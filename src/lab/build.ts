/**
 * Builds the lab's network from its plan (topology.ts), and sweeps it away. Everything lives in `otl-<name>-*`
 * namespaces; no veth ever has an end in the machine's own namespace (every link joins two lab hosts).
 *
 * Cost: one `ip -batch` for all namespaces, then per host one sysctl spawn and two `ip -batch` spawns
 * (creating its downstream veths, then configuring its own side), run in parallel across hosts.
 */
import type { IpOp } from '../kernel/ip.js';
import { runIpOps } from '../kernel/ip.js';
import { addressReplaceOp } from '../kernel/addresses.js';
import { linkSetOp, macFromKey, setLinkFeatures, vethOps } from '../kernel/links.js';
import { listNetns, netnsAddOp, netnsDeleteOp, setSysctls } from '../kernel/netns.js';
import { routeReplaceOp } from '../kernel/routes.js';
import type { LabHostPlan, LabPlan } from './topology.js';

/** Lab kernel routes use the `static` protocol: never our agent's (247), which an edge agent would prune. */
export const RT_PROTO_STATIC = 4;

function macOf(netns: string, dev: string): string {
  return macFromKey(`${netns}/${dev}`);
}

/** Runs `fn` over `items` with at most `limit` in flight (a 2-core VM stalls on hundreds of parallel spawns). */
async function inParallel<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const PARALLEL = 8;

/** The ops that configure one host once its veths exist: its ends up, addresses, bridge, routes. */
export function hostConfigOps(plan: LabPlan, h: LabHostPlan): IpOp[] {
  const ops: IpOp[] = [linkSetOp({ name: 'lo', up: true })];
  for (const l of plan.links.filter((l) => l.b.host === h.name)) {
    const a = plan.hosts.find((x) => x.name === l.a.host)!;
    ops.push(...vethOps(vethSpec(a, l.a.dev, h, l.b.dev)).peer);
  }
  // IPv6 without DAD: routes below name these addresses as their source before addrconf would clear "tentative".
  for (const lo of h.loopback) ops.push(addressReplaceOp({ dev: 'lo', cidr: lo, ...(lo.includes(':') ? { nodad: true } : {}) }));
  if (h.bridge) {
    ops.push({ args: ['link', 'add', h.bridge.name, 'type', 'bridge'], tolerate: ['EEXIST'] });
    ops.push(linkSetOp({ name: h.bridge.name, up: true }));
    for (const m of h.bridge.members) ops.push({ args: ['link', 'set', 'dev', m, 'master', h.bridge.name] });
    ops.push(addressReplaceOp({ dev: h.bridge.name, cidr: h.bridge.address }));
    if (h.bridge.address6) ops.push(addressReplaceOp({ dev: h.bridge.name, cidr: h.bridge.address6, nodad: true }));
  }
  for (const i of h.interfaces) {
    if (i.address) ops.push(addressReplaceOp({ dev: i.name, cidr: i.address }));
    if (i.address6) ops.push(addressReplaceOp({ dev: i.name, cidr: i.address6, nodad: true }));
  }
  for (const r of h.routes) {
    ops.push(
      routeReplaceOp({
        dst: r.dst,
        ...(r.family === 6 ? { family: 6 as const } : {}),
        nexthops: [{ via: r.via, dev: r.dev }],
        protocol: RT_PROTO_STATIC,
        ...(r.src !== undefined ? { src: r.src } : {}),
      }),
    );
  }
  return ops;
}

function vethSpec(a: LabHostPlan, aDev: string, b: LabHostPlan, bDev: string) {
  return { ns: a.netns, name: aDev, mac: macOf(a.netns, aDev), peerNs: b.netns, peerName: bDev, peerMac: macOf(b.netns, bDev) };
}

/** Creates every namespace, link, address, sysctl and static route of the plan. Idempotent. */
export async function buildNetwork(plan: LabPlan): Promise<void> {
  await runIpOps(null, plan.hosts.map((h) => netnsAddOp(h.netns)));
  // Sysctls first: `conf.default.*` applies to the interfaces created afterwards.
  await inParallel(plan.hosts, PARALLEL, (h) => setSysctls(h.netns, h.sysctls));
  const byName = new Map(plan.hosts.map((h) => [h.name, h]));
  // Veths are created from their upstream end, straight into the downstream namespace.
  await inParallel(plan.hosts, PARALLEL, async (h) => {
    const ops = plan.links.filter((l) => l.a.host === h.name).flatMap((l) => vethOps(vethSpec(h, l.a.dev, byName.get(l.b.host)!, l.b.dev)).host);
    if (ops.length) await runIpOps(h.netns, ops);
  });
  await inParallel(plan.hosts, PARALLEL, async (h) => {
    await runIpOps(h.netns, hostConfigOps(plan, h));
  });
  // Hosts that originate traffic put complete checksums on the "wire", as a real NIC does. A veth would otherwise
  // hand on CHECKSUM_PARTIAL packets across namespaces; that survives encapsulation in skb land but not an XDP
  // redirect (an xdp_frame has no checksum state), so a reply decapsulated at an edge reached the client with a
  // bad TCP checksum (DESIGN.md §2: "veth leaves inner checksums partial").
  const originating = plan.hosts.filter((h) => h.role === 'client' || h.role === 'customer-host');
  await inParallel(originating, PARALLEL, async (h) => {
    for (const i of h.interfaces) await setLinkFeatures(h.netns, i.name, { tx: false });
  });
}

/** The namespaces of lab `name` that exist now (`otl-<name>-*`). */
export function labNamespaces(netnsPrefix: string): Promise<string[]> {
  return listNetns(netnsPrefix);
}

/** Deletes the given namespaces (their links, addresses and routes go with them). One spawn. */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  if (names.length) await runIpOps(null, names.map(netnsDeleteOp));
}
