/**
 * Reconciles the host netns objects shared by all customers (HostDesired), and prunes customers that are gone.
 *
 * Prune rules (DESIGN.md §3): only objects we own — namespaces named <netnsPrefix><12 hex>, links whose alias is
 * `opentransit:<account>`, rules and routes with our protocol number — and only when the caller passes the
 * complete set of desired accounts (after the store's initial sync; never from a half-received list).
 */
import { customerNetns, hostVethName, type NodeConfig } from '../desired/node.js';
import type { HostDesired } from '../desired/host.js';
import { KernelError } from '../../kernel/exec.js';
import { runIpOps, type IpOp } from '../../kernel/ip.js';
import { linkDeleteOp, listLinks, ownerOfAlias } from '../../kernel/links.js';
import { listNetns } from '../../kernel/netns.js';
import { reconcileSysctls } from './sysctls.js';
import { readNftTableVersion, replaceNftTable } from '../../kernel/nft.js';
import {
  RT_PROTO_OPENTRANSIT,
  listRoutes,
  normalizeRoute,
  routeDeleteOp,
  routeKey,
  routeKeyString,
  routeReplaceOp,
  sameRoute,
} from '../../kernel/routes.js';
import { listAllRules, normalizeRule, ruleAddOp, ruleDeleteOp, sameRule } from '../../kernel/rules.js';
import { diffObjects, errorText } from './engine.js';
import { removeCustomer } from './customer.js';

export interface HostReconcileResult {
  changes: string[];
  errors: string[];
}

export interface HostReconcileOptions {
  dryRun?: boolean;
  /** The complete set of account ids desired on this node; prune only when given. */
  accountIds?: ReadonlySet<string>;
}

const ruleKey = (r: { family: number; priority: number; fwmark?: number; table?: number }) =>
  `${r.family} pref ${r.priority} fwmark ${r.fwmark ?? '-'} table ${r.table ?? '-'}`;

export async function reconcileHost(node: NodeConfig, d: HostDesired, options: HostReconcileOptions = {}): Promise<HostReconcileResult> {
  const dryRun = options.dryRun ?? false;
  const changes: string[] = [];
  const errors: string[] = [];
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${err instanceof KernelError ? err.kernelMessage : errorText(err)}`);
    }
  };
  const ns = node.hostNetns;

  await step('sysctls', () => reconcileSysctls(ns, d.sysctls, changes, ns, { dryRun, exists: true, tolerateReadErrors: false }));

  // Policy rules: the kernel has no "rule replace", so a changed rule is added, then the old one deleted.
  await step('rules', async () => {
    const actual = (await listAllRules(ns)).filter((r) => r.protocol === RT_PROTO_OPENTRANSIT);
    const wanted = d.rules.map(normalizeRule);
    const diff = diffObjects(wanted, actual, ruleKey, ruleKey, sameRule, 'rule');
    const ops: IpOp[] = [];
    for (const a of diff.apply) {
      changes.push(`${ns}: add rule ${a.key}`);
      ops.push(ruleAddOp(d.rules[wanted.indexOf(a.desired)]!));
    }
    for (const r of diff.remove) {
      changes.push(`${ns}: delete rule ${r.key}`);
      ops.push(ruleDeleteOp({ ...r.actual, protocol: RT_PROTO_OPENTRANSIT }));
    }
    if (!dryRun && ops.length) await runIpOps(ns, ops);
  });

  // The customer table's own routes (unreachable defaults); customer prefixes are each account's.
  await step('table', async () => {
    const wanted = d.routes.map(normalizeRoute);
    const actual = (await listRoutes(ns, { table: node.table, protocol: RT_PROTO_OPENTRANSIT })).filter((r) => r.type !== 'unicast');
    const diff = diffObjects(wanted, actual, (r) => routeKeyString(routeKey(r)), (r) => routeKeyString(routeKey(r)), sameRoute, 'route');
    const ops: IpOp[] = [];
    for (const a of diff.apply) {
      changes.push(`${ns}: add route ${a.key}`);
      ops.push(routeReplaceOp(d.routes[wanted.indexOf(a.desired)]!));
    }
    for (const r of diff.remove) {
      changes.push(`${ns}: delete route ${r.key}`);
      ops.push(routeDeleteOp(routeKey(r.actual)));
    }
    if (!dryRun && ops.length) await runIpOps(ns, ops);
  });

  await step('nft', async () => {
    // The version alone, and only read again once something was committed in the host netns (nft.ts): the table
    // holds every customer prefix, so a listing grows with the customers.
    const current = await readNftTableVersion(ns, d.nft.family, d.nft.name);
    if (current?.version === d.nft.version) return;
    changes.push(`${ns}: ${current ? 'replace' : 'create'} nft table ${d.nft.family} ${d.nft.name}`);
    if (!dryRun) await replaceNftTable(ns, d.nft);
  });

  if (options.accountIds) await step('prune', () => pruneCustomers(node, options.accountIds!, changes, dryRun));
  return { changes, errors };
}

const SHORT_ID = /^[0-9a-f]{12}$/;

/** Deletes customer namespaces and veths of accounts no longer desired on this node. */
async function pruneCustomers(node: NodeConfig, accountIds: ReadonlySet<string>, changes: string[], dryRun: boolean): Promise<void> {
  const wantedNetns = new Set([...accountIds].map((id) => customerNetns(node, id)));
  const wantedVeths = new Set([...accountIds].map((id) => hostVethName(id)));
  const staleNetns = (await listNetns(node.netnsPrefix)).filter(
    (n) => SHORT_ID.test(n.slice(node.netnsPrefix.length)) && !wantedNetns.has(n),
  );
  const staleVeths = (await listLinks(node.hostNetns)).filter((l) => ownerOfAlias(l.alias) !== undefined && !wantedVeths.has(l.name));
  for (const n of staleNetns) {
    const shortId = n.slice(node.netnsPrefix.length);
    changes.push(...(await removeCustomer(node, n, hostVethName(shortId), { dryRun })));
  }
  for (const l of staleVeths) {
    if (staleNetns.some((n) => hostVethName(n.slice(node.netnsPrefix.length)) === l.name)) continue;
    changes.push(`delete link ${l.name}`);
    if (!dryRun) await runIpOps(node.hostNetns, [linkDeleteOp(l.name)]);
  }
}
