/**
 * Reconciles one customer's objects on an edge server: reads what the kernel has (in-process netlink dumps of the
 * customer netns; the host side from a snapshot shared by all customers), diffs against CustomerDesired, and
 * writes only what differs — one in-order list of netlink requests per namespace, adds before removes. An object
 * that is already right is never rewritten, so a restart or a periodic resync drops no packet.
 *
 * Order matters when creating: the namespace, then the veth (it needs both namespaces), then addresses (an onlink
 * gateway is checked against the local table, which needs an address), neighbours (a route's tunnel MAC must be
 * there before traffic uses the route), then routes; removals last. The firewall table is replaced atomically.
 * The eBPF data plane's part of the account (tc on edge0 and its map entries) goes in before the routes.
 */
import type { CustomerDesired } from '../desired/customer.js';
import { CUSTOMER_VETH, type NodeConfig } from '../desired/node.js';
import { addressDeleteOp, addressReplaceOp, listAddresses, type Address, type AddressSpec } from '../../kernel/addresses.js';
import { KernelError } from '../../kernel/exec.js';
import { runIpOps, type IpOp } from '../../kernel/ip.js';
import { ensureVeth, getLink, linkDeleteOp, linkSetOp, readLinkFeatures, setLinkFeatures, type Link } from '../../kernel/links.js';
import { neighbourDeleteOp, neighbourReplaceOp, type Neighbour, type NeighbourSpec } from '../../kernel/neighbours.js';
import { createNetns, deleteNetnsIfPresent, netnsExists } from '../../kernel/netns.js';
import { createNftTable, readNftTableVersion, replaceNftTable } from '../../kernel/nft.js';
import {
  RT_PROTO_OPENTRANSIT,
  listRoutes,
  normalizeRoute,
  routeDeleteOp,
  routeKey,
  routeKeyString,
  routeReplaceOp,
  sameRoute,
  type Route,
  type RouteSpec,
} from '../../kernel/routes.js';
import { readIpState, type IpState } from '../../kernel/state.js';
import { diffObjects, errorText } from './engine.js';
import { reconcileSysctls } from './sysctls.js';

export interface CustomerReconcileOptions {
  /** Compute the changes without making them (`opentransit plan`). */
  dryRun?: boolean;
  /**
   * Read the sysctls and the peer's GRO setting of objects that already existed (default true). False: they are
   * left unread this pass (AgentOptions.slowCheckMs says why); objects this pass creates are set up in full anyway.
   */
  checkSlow?: boolean;
  /**
   * The account's part of the eBPF data plane (tc on edge0, its map entries): run once the namespace and the veth
   * exist, before routes point traffic at tunnel MACs. Returns problems (the account's errors); throws on failure.
   */
  dataplane?: (d: CustomerDesired, changes: string[]) => string[];
}

export interface CustomerReconcileResult {
  accountId: string;
  /** Human-readable changes, in the order they were (or would be) made; empty when the kernel was right. */
  changes: string[];
  /** Failures of this pass (the account's error status); empty when everything applied. */
  errors: string[];
}

const EMPTY_STATE: IpState = { links: [], addresses: [], routes: [], rules: [], neighbours: [] };

/** Addresses the kernel adds by itself (an EUI-64 IPv6 link-local on link up): not ours to prune. */
const isAutoLinkLocal = (a: Address, desired: readonly AddressSpec[]) =>
  a.family === 6 && a.local.startsWith('fe80:') && !desired.some((d) => d.cidr === a.cidr && d.dev === a.dev);

const addressKey = (a: AddressSpec) => `${a.dev} ${a.cidr}`;
const neighbourKey = (n: { dev: string; address: string }) => `${n.dev} ${n.address}`;

function vethIsRight(d: CustomerDesired, host: Link | undefined, peer: Link | undefined): boolean {
  return (
    host?.kind === 'veth' &&
    peer?.kind === 'veth' &&
    host.peerIfindex === peer.ifindex &&
    peer.peerIfindex === host.ifindex &&
    host.mac === d.veth.mac &&
    peer.mac === d.veth.peerMac &&
    host.up &&
    peer.up &&
    host.mtu === d.veth.mtu &&
    host.alias === d.veth.alias &&
    peer.alias === d.veth.alias
  );
}

/** The batch that makes `actual` addresses, neighbours and routes equal to the desired ones. */
function ipObjectOps(
  desired: { addresses: AddressSpec[]; neighbours: NeighbourSpec[]; routes: RouteSpec[] },
  actual: { addresses: Address[]; neighbours: Neighbour[]; routes: Route[] },
  changes: string[],
  where: string,
): IpOp[] {
  const addrs = diffObjects(
    desired.addresses,
    actual.addresses.filter((a) => !isAutoLinkLocal(a, desired.addresses)),
    addressKey,
    addressKey,
    () => true,
    'address',
  );
  const neighs = diffObjects(
    desired.neighbours,
    actual.neighbours.filter((n) => n.protocol === RT_PROTO_OPENTRANSIT),
    neighbourKey,
    neighbourKey,
    (d, a) => a.permanent && a.lladdr === d.lladdr.toLowerCase(),
    'neighbour',
  );
  const wantedRoutes = desired.routes.map(normalizeRoute);
  const routes = diffObjects(
    wantedRoutes,
    actual.routes.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT),
    (r) => routeKeyString(routeKey(r)),
    (r) => routeKeyString(routeKey(r)),
    sameRoute,
    'route',
  );
  const specByKey = new Map(desired.routes.map((s) => [routeKeyString(routeKey(normalizeRoute(s))), s]));
  const ops: IpOp[] = [];
  for (const a of addrs.apply) {
    changes.push(`${where}: add address ${a.key}`);
    ops.push(addressReplaceOp(a.desired));
  }
  for (const n of neighs.apply) {
    changes.push(`${where}: ${n.actual ? 'replace' : 'add'} neighbour ${n.key} lladdr ${n.desired.lladdr}`);
    ops.push(neighbourReplaceOp(n.desired));
  }
  for (const r of routes.apply) {
    changes.push(`${where}: ${r.actual ? 'replace' : 'add'} route ${r.key}`);
    ops.push(routeReplaceOp(specByKey.get(r.key)!));
  }
  // Removals after every add: traffic moving off an old route or tunnel already has its new path.
  for (const r of routes.remove) {
    changes.push(`${where}: delete route ${r.key}`);
    ops.push(routeDeleteOp(routeKey(r.actual)));
  }
  for (const n of neighs.remove) {
    changes.push(`${where}: delete neighbour ${n.key}`);
    ops.push(neighbourDeleteOp(n.actual));
  }
  for (const a of addrs.remove) {
    changes.push(`${where}: delete address ${a.key}`);
    ops.push(addressDeleteOp(a.actual));
  }
  return ops;
}

/** One customer's host-side objects: the addresses on its host veth and the customer-table routes into it. */
interface HostSide {
  addresses: Address[];
  routes: Route[];
}

/**
 * The host side of every customer from ONE read of the host netns (two dumps), shared by the customer passes that
 * run within HOST_SNAPSHOT_MAX_AGE_MS of it: reading the host per customer would cost O(customers) each time
 * (the kernel filters dumps only on strict-checking sockets), O(customers²) for a full pass. Our own successful
 * writes are applied to the snapshot; a failed write drops it. Drift made by others is seen at the next snapshot,
 * well within a resync period.
 */
interface HostSnapshot {
  /** When the read finished (a read slower than the maximum age must not make every pass start another). */
  takenAt: number;
  table: number;
  byDev: Map<string, HostSide>;
}

const HOST_SNAPSHOT_MAX_AGE_MS = 500;
const hostSnapshots = new Map<string, Promise<HostSnapshot>>();
const hostKey = (node: NodeConfig) => `${node.hostNetns}|${node.table}`;

async function takeHostSnapshot(node: NodeConfig): Promise<HostSnapshot> {
  const [addresses, routes] = [await listAddresses(node.hostNetns), await listRoutes(node.hostNetns, { table: node.table })];
  const takenAt = performance.now();
  const byDev = new Map<string, HostSide>();
  const side = (dev: string) => {
    let s = byDev.get(dev);
    if (!s) byDev.set(dev, (s = { addresses: [], routes: [] }));
    return s;
  };
  for (const a of addresses) side(a.dev).addresses.push(a);
  // A customer's routes are the ones into its veth (`ip route show table T dev D`).
  for (const r of routes) for (const dev of new Set(r.nexthops.map((h) => h.dev))) side(dev).routes.push(r);
  return { takenAt, table: node.table, byDev };
}

async function readHostSide(node: NodeConfig, dev: string): Promise<HostSide> {
  const key = hostKey(node);
  const pick = (snap: HostSnapshot): HostSide => {
    const s = snap.byDev.get(dev);
    return s ? { addresses: [...s.addresses], routes: [...s.routes] } : { addresses: [], routes: [] };
  };
  for (;;) {
    const p = hostSnapshots.get(key);
    if (p) {
      // A read in flight is joined; a finished one is reused while young.
      const snap = await p.catch(() => undefined);
      if (snap && performance.now() - snap.takenAt <= HOST_SNAPSHOT_MAX_AGE_MS) return pick(snap);
      if (hostSnapshots.get(key) !== p) continue; // another pass started a new read meanwhile: join that one
    }
    const taken = takeHostSnapshot(node);
    hostSnapshots.set(key, taken);
    taken.catch(() => hostSnapshots.get(key) === taken && hostSnapshots.delete(key));
    return pick(await taken);
  }
}

/** After a successful host write the kernel holds exactly the desired objects for `dev` (undefined: it is gone). */
async function patchHostSnapshot(node: NodeConfig, dev: string, now: HostSide | undefined): Promise<void> {
  const snap = await hostSnapshots.get(hostKey(node))?.catch(() => undefined);
  if (!snap) return;
  if (now) snap.byDev.set(dev, now);
  else snap.byDev.delete(dev);
}

/** Forgets the host snapshot (a host write failed, or the kernel watch saw the host's routes change). */
export function dropHostSnapshot(node: NodeConfig): void {
  hostSnapshots.delete(hostKey(node));
}

/** The kernel's view of addresses we just wrote (what a dump would show). */
function addressesAsKernel(dev: string, specs: readonly AddressSpec[]): Address[] {
  return specs.map((a) => {
    const [local, len] = a.cidr.split('/') as [string, string];
    return { dev, cidr: a.cidr, family: local.includes(':') ? 6 : 4, local, prefixlen: Number(len), scope: 0, ...(a.label ? { label: a.label } : {}) };
  });
}

/** Brings the kernel to `d` for one customer. Errors are collected, not thrown, so every step gets its chance. */
export async function reconcileCustomer(
  node: NodeConfig,
  d: CustomerDesired,
  options: CustomerReconcileOptions = {},
): Promise<CustomerReconcileResult> {
  const dryRun = options.dryRun ?? false;
  const checkSlow = options.checkSlow ?? true;
  const changes: string[] = [];
  const errors: string[] = [...d.problems];
  const step = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      errors.push(`${what}: ${err instanceof KernelError ? err.kernelMessage : errorText(err)}`);
      return false;
    }
  };

  // 1. The namespace.
  let exists = await netnsExists(d.netns);
  // Made by this pass: it holds nothing of ours but what this pass adds, so it is not read back (a cold start's
  // reads would only confirm that a new namespace is empty).
  let created = false;
  if (!exists) {
    changes.push(`create netns ${d.netns}`);
    if (!dryRun && !(await step('netns', () => createNetns(d.netns)))) return { accountId: d.accountId, changes, errors };
    exists = created = !dryRun;
  }

  // 2. The veth pair (host side in the host netns, peer in the customer netns). A namespace made by this pass holds
  // nothing but lo (down), as EMPTY_STATE says by lacking it.
  let state = exists && !created ? await readIpState(d.netns, { rules: false }) : EMPTY_STATE;
  const hostLink = await getLink(node.hostNetns, d.veth.name);
  const peer = state.links.find((l) => l.name === CUSTOMER_VETH);
  // A veth made or repaired here gets its sysctls checked whatever the tier.
  const vethTouched = !vethIsRight(d, hostLink, peer);
  if (vethTouched) {
    changes.push(`${hostLink || peer ? 'repair' : 'create'} veth ${d.veth.name} <-> ${d.netns}/${CUSTOMER_VETH}`);
    if (!dryRun) {
      const ok = await step('veth', async () => {
        await ensureVeth(d.veth);
        // XDP redirects decapsulated frames into the host side: the peer needs GRO on or they vanish (DESIGN §2).
        await setLinkFeatures(d.netns, CUSTOMER_VETH, { gro: true });
      });
      if (!ok) return { accountId: d.accountId, changes, errors };
      // In a namespace made by this pass the veth is all there is: its links are lo (down) and edge0, and it has no
      // address, neighbour or route of ours (the kernel's own local routes and link-local addresses are never
      // diffed). Anywhere else the repair may have kept objects: read them.
      state = created ? EMPTY_STATE : await readIpState(d.netns, { rules: false });
    }
  } else if (exists && !created && checkSlow) {
    // GRO on the peer is drift like any other: someone's `ethtool -K edge0 gro off` makes XDP-redirected frames
    // vanish (DESIGN §2). One in-process ethtool request per pass; a veth made or repaired above got GRO there.
    await step('gro', async () => {
      if ((await readLinkFeatures(d.netns, CUSTOMER_VETH)).gro) return;
      changes.push(`${d.netns}: set gro on ${CUSTOMER_VETH}`);
      if (!dryRun) await setLinkFeatures(d.netns, CUSTOMER_VETH, { gro: true });
    });
  }
  const lo = state.links.find((l) => l.name === 'lo');
  if (!lo?.up) {
    changes.push(`${d.netns}: set lo up`);
    if (!dryRun && exists) await step('lo', async () => void (await runIpOps(d.netns, [linkSetOp({ name: 'lo', up: true })])));
  }

  // 3. Sysctls on both sides.
  // A new namespace has the defaults: every key is written without reading them first.
  if (checkSlow || !exists || created || vethTouched)
    await step('sysctls', () => reconcileSysctls(d.netns, d.sysctls, changes, d.netns, { dryRun, exists: exists && !created, tolerateReadErrors: true }));
  // The host-side keys are the veth's own: a veth this pass made has the host's defaults, nothing to read.
  if (checkSlow || vethTouched)
    await step('host sysctls', () => reconcileSysctls(node.hostNetns, d.hostSysctls, changes, node.hostNetns, { dryRun, exists: hostLink !== undefined, tolerateReadErrors: true }));

  // 3b. The data plane: the encapsulation program and the tunnels' entries are in place before the first route
  // sends a packet towards a tunnel MAC (a frame that found no tunnel would be dropped, failing closed).
  if (options.dataplane && !dryRun && exists) {
    const problems: string[] = [];
    if (await step('data plane', async () => void problems.push(...options.dataplane!(d, changes)))) errors.push(...problems);
  }

  // 4. Inside the customer netns: addresses, tunnel neighbours, routes.
  const nsOps = ipObjectOps(
    { addresses: d.addresses, neighbours: d.neighbours, routes: d.routes },
    {
      addresses: state.addresses.filter((a) => a.dev === CUSTOMER_VETH),
      neighbours: state.neighbours,
      routes: state.routes.filter((r) => r.table === 254),
    },
    changes,
    d.netns,
  );
  if (!dryRun && exists && nsOps.length > 0) await step('routes', async () => void (await runIpOps(d.netns, nsOps)));

  // 5. The host side: link addresses on the veth and the prefixes' routes in the customer table.
  const host = hostLink ? await readHostSide(node, d.veth.name) : { addresses: [], routes: [] };
  const hostOps = ipObjectOps(
    { addresses: d.hostAddresses, neighbours: [], routes: d.hostRoutes },
    { ...host, neighbours: [] },
    changes,
    node.hostNetns,
  );
  if (!dryRun && hostOps.length > 0) {
    const ok = await step('host routes', async () => void (await runIpOps(node.hostNetns, hostOps)));
    if (ok) {
      // Link-local addresses the kernel adds itself are kept as they were: the diff never touches them.
      const auto = host.addresses.filter((a) => isAutoLinkLocal(a, d.hostAddresses));
      await patchHostSnapshot(node, d.veth.name, { addresses: [...auto, ...addressesAsKernel(d.veth.name, d.hostAddresses)], routes: d.hostRoutes.map(normalizeRoute) });
    } else dropHostSnapshot(node);
  }

  // 6. The firewall, atomically; kept as it is when a rule could not be compiled (never deploy a partial one).
  const firewallBroken = d.problems.some((p) => p.startsWith('firewall'));
  const current = exists && !created ? await readNftTableVersion(d.netns, d.firewall.family, d.firewall.name).catch(() => null) : null;
  if (current?.version !== d.firewall.version && !firewallBroken) {
    changes.push(`${d.netns}: ${current ? 'replace' : 'create'} nft table ${d.firewall.family} ${d.firewall.name}`);
    // A missing table is created rather than replaced: a replace deletes, and a delete costs every nft call after
    // it an RCU grace period (kernel/nft.ts). Should it exist after all (made meanwhile), create changes nothing
    // and fails EEXIST: replace it then.
    const write = async () => {
      if (current) return replaceNftTable(d.netns, d.firewall);
      await createNftTable(d.netns, d.firewall).catch((e: unknown) => {
        if (e instanceof KernelError && e.code === 'EEXIST') return replaceNftTable(d.netns, d.firewall);
        throw e;
      });
    };
    if (!dryRun && exists) await step('firewall', write);
  }

  return { accountId: d.accountId, changes, errors };
}

/**
 * Removes everything a customer had on this server: deleting its namespace takes the peer with it, the veth pair
 * goes with its peer, and the customer-table routes go with the veth.
 */
export async function removeCustomer(
  node: NodeConfig,
  netns: string,
  hostVeth: string,
  options: CustomerReconcileOptions = {},
): Promise<string[]> {
  const changes: string[] = [];
  if (await netnsExists(netns)) {
    changes.push(`delete netns ${netns}`);
    if (!options.dryRun) {
      await deleteNetnsIfPresent(netns); // closes our netlink socket there first
    }
  }
  if (await getLink(node.hostNetns, hostVeth)) {
    changes.push(`delete link ${hostVeth}`);
    if (!options.dryRun) await runIpOps(node.hostNetns, [linkDeleteOp(hostVeth)]);
  }
  if (!options.dryRun) await patchHostSnapshot(node, hostVeth, undefined);
  return changes;
}
