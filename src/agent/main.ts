/**
 * `opentransit agent …` and `opentransit plan …`: option parsing and process lifecycle around Agent.
 */
import path from 'node:path';
import { decodeAccountDocument } from '../model/account.js';
import { accountIdOfKey, keys } from '../model/keys.js';
import type { AccountDocument } from '../model/schemas.js';
import { openStore } from '../store/open.js';
import { netnsExists } from '../kernel/netns.js';
import { Agent } from './agent.js';
import { customerDesired } from './desired/customer.js';
import { hostDesired } from './desired/host.js';
import { NODE_DEFAULTS, NODE_ID_PATTERN, type NodeConfig } from './desired/node.js';
import { reconcileCustomer } from './reconcile/customer.js';
import { reconcileHost } from './reconcile/host.js';
import { DataplaneManager } from './reconcile/dataplane.js';
import { errorText } from './reconcile/engine.js';
import { activeMitigations, decodeMitigations, type DataplanePlan } from './desired/dataplane.js';
import { customerNetns, hostVethName } from './desired/node.js';
import { planBgp, type BgpPlan } from './bgp/plan-node.js';
import { decodeSettings } from '../model/settings.js';
import { decodeNodeConfig } from '../model/node-config.js';

export interface AgentCliOptions {
  nodeId: string;
  hostNetns: string;
  uplink: string;
  store: string;
  dataDir?: string;
  netnsPrefix?: string;
  resyncMs?: number;
  /** `on` (default) | `off`: kernel notifications for drift repair (AgentOptions.watchKernel). */
  kernelWatch?: string;
  accountResyncMs?: number;
  /** Status republish period (default 5000 ms); the liveness lease lasts three of them. */
  heartbeatMs?: number;
  /** bpffs directory for the data plane's pins (default /sys/fs/bpf/opentransit). */
  bpfPinBase?: string;
  /** `on` (default) | `off`: the eBPF fast path for customer traffic (NodeConfig.fastPath). */
  fastPath?: string;
}

export class AgentOptionError extends Error {
  constructor(
    readonly option: string,
    reason: string,
  ) {
    super(`--${option}: ${reason}`);
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Validates the command line into a NodeConfig; the host netns must exist (it stands for this server). */
export async function nodeConfig(o: AgentCliOptions): Promise<NodeConfig> {
  if (!NODE_ID_PATTERN.test(o.nodeId)) throw new AgentOptionError('node-id', 'use 1–32 of [a-z0-9-], starting with a letter or digit');
  if (!NETNS_NAME.test(o.hostNetns)) throw new AgentOptionError('host-netns', 'must be a network namespace name');
  if (!(await netnsExists(o.hostNetns))) throw new AgentOptionError('host-netns', `namespace ${o.hostNetns} does not exist`);
  if (!IFNAME.test(o.uplink)) throw new AgentOptionError('uplink', 'must be an interface name (1–15 characters)');
  const netnsPrefix = o.netnsPrefix ?? NODE_DEFAULTS.netnsPrefix;
  if (!/^[a-z0-9-]{1,40}-$/.test(netnsPrefix)) throw new AgentOptionError('netns-prefix', 'use [a-z0-9-] and end with "-"');
  const fastPath = o.fastPath ?? 'on';
  if (fastPath !== 'on' && fastPath !== 'off') throw new AgentOptionError('fast-path', `must be on or off, got ${JSON.stringify(fastPath)}`);
  return {
    nodeId: o.nodeId,
    hostNetns: o.hostNetns,
    uplink: o.uplink,
    netnsPrefix,
    fwmark: NODE_DEFAULTS.fwmark,
    table: NODE_DEFAULTS.table,
    rulePriority: NODE_DEFAULTS.rulePriority,
    fastPath: fastPath === 'on',
  };
}

/** The agent's data dir (default /var/lib/opentransit/agent-<node>) and bpffs pin base, checked. */
function agentPaths(o: AgentCliOptions, node: NodeConfig): { dataDir: string; pinBase?: string } {
  if (o.bpfPinBase !== undefined && !/^\/sys\/fs\/bpf\/[A-Za-z0-9_\/-]+$/.test(o.bpfPinBase))
    throw new AgentOptionError('bpf-pin-base', 'must be a directory under /sys/fs/bpf/ of [A-Za-z0-9_/-]');
  return { dataDir: path.resolve(o.dataDir ?? `/var/lib/opentransit/agent-${node.nodeId}`), ...(o.bpfPinBase !== undefined ? { pinBase: o.bpfPinBase } : {}) };
}

export async function runAgent(o: AgentCliOptions): Promise<void> {
  const node = await nodeConfig(o);
  if (o.heartbeatMs !== undefined && !(Number.isSafeInteger(o.heartbeatMs) && o.heartbeatMs >= 100 && o.heartbeatMs <= 3_600_000))
    throw new AgentOptionError('heartbeat-ms', 'must be an integer from 100 to 3600000');
  for (const [option, v] of [['resync-ms', o.resyncMs], ['account-resync-ms', o.accountResyncMs]] as const)
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 100 && v <= 86_400_000)) throw new AgentOptionError(option, 'must be an integer from 100 to 86400000');
  const kernelWatch = o.kernelWatch ?? 'on';
  if (kernelWatch !== 'on' && kernelWatch !== 'off') throw new AgentOptionError('kernel-watch', `must be on or off, got ${JSON.stringify(kernelWatch)}`);
  // The agent must start while the store is unreachable (it serves its local replica): no connection required.
  const { dataDir } = agentPaths(o, node);
  const store = await openStore(o.store, { etcd: { requireConnection: false } });
  const agent = new Agent({
    node,
    store,
    dataDir,
    ...(o.resyncMs !== undefined ? { resyncMs: o.resyncMs } : {}),
    ...(o.accountResyncMs !== undefined ? { accountResyncMs: o.accountResyncMs } : {}),
    watchKernel: kernelWatch === 'on',
    ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.bpfPinBase !== undefined ? { bpf: { pinBase: o.bpfPinBase } } : {}),
  });
  await agent.start();
  process.stderr.write(`agent ${node.nodeId}: host netns ${node.hostNetns}, store ${store.kind}, data ${dataDir}\n`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // BGP first: every announcement is withdrawn (and BIRD stopped) before anything else; the kernel stays as it is.
    process.stderr.write(`agent ${node.nodeId}: ${signal}, withdrawing BGP announcements, then stopping (the kernel is left as it is)\n`);
    await agent.stop({ bgp: 'withdraw' });
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

export interface PlanResult {
  node_id: string;
  revision: number;
  /** Scopes: "host", "dataplane" (XDP, global maps, prunes), "account <name>" (netns, nft, routes AND its map entries), "bgp". */
  changes: { scope: string; changes: string[]; errors: string[]; warnings?: string[] }[];
  /** The BGP part in detail: announcements and the BIRD config diff (bgp/plan-node.ts). */
  bgp?: BgpPlan;
}

/**
 * What the agent would change right now (desired vs actual), changing nothing: the host and every customer
 * namespace (dry-run reconcilers), the eBPF data plane (a DataplaneManager in dry-run mode: loads, attachments,
 * numbers and every map entry it would write or delete) and BGP (BIRD config, announcements).
 */
export async function planNode(o: AgentCliOptions): Promise<PlanResult> {
  const node = await nodeConfig(o);
  const { dataDir, pinBase } = agentPaths(o, node);
  const store = await openStore(o.store);
  try {
    const { items, revision } = await store.list(keys.desiredPrefix);
    const docs = new Map<string, { doc: AccountDocument; revision: number }>();
    const result: PlanResult = { node_id: node.nodeId, revision, changes: [] };
    for (const kv of items) {
      const id = accountIdOfKey(kv.key);
      if (id) docs.set(id, { doc: decodeAccountDocument(kv.value), revision: kv.modRevision });
    }
    // A rule that does not decode is left out, as the agent leaves it out; both say so (a warning, not an error:
    // every other rule and account still applies).
    const { mitigations, problems: mitigationProblems } = decodeMitigations(items);
    const value = (key: string) => items.find((kv) => kv.key === key)?.value;
    const settings = decodeSettings(value(keys.settings));
    const accounts = [...docs.values()].map((d) => d.doc);
    const host = await reconcileHost(node, hostDesired(node, accounts), { dryRun: true, accountIds: new Set(docs.keys()) });
    result.changes.push({ scope: 'host', ...host });

    // The data plane, as the agent's passes would do it (agent.ts): numbers, global maps, each account's entries,
    // then what no account wants any more. Its writes only land in the plan's overlays.
    const dp = new DataplaneManager({ node, dataDir, dryRun: true, ...(pinBase ? { pinBase } : {}) });
    const dpScope = { scope: 'dataplane', changes: [] as string[], errors: [] as string[], warnings: mitigationProblems.map((p) => `mitigation ${p}: left out`) };
    let dpPlan: DataplanePlan | undefined;
    try {
      dp.open(dpScope.changes);
      const nowMs = Date.now();
      const activeRuleIds = activeMitigations(mitigations, nowMs).map((m) => m.id);
      dpPlan = dp.desiredPlan({ node, accounts, settings, mitigations, activeRuleIds, nowMs, sampleEvery: 0 }, dpScope.changes);
      dp.syncGlobal(dpPlan.global, { force: true, prune: true }, dpScope.changes);
      await dp.syncHostRouting(dpScope.changes);
      await dp.ensureGro(dpScope.changes);
    } catch (err) {
      dpScope.errors.push(errorText(err));
    }
    const failing = new Set<string>();
    for (const a of accounts) {
      const r = await reconcileCustomer(node, customerDesired(node, a), { dryRun: true });
      const ad = dpPlan?.accounts.get(a.id);
      if (ad) {
        try {
          dp.applyAccount(ad, customerNetns(node, a.id), hostVethName(a.id), r.changes);
        } catch (err) {
          r.errors.push(`data plane: ${errorText(err)}`);
        }
      }
      if (r.errors.length) failing.add(a.id);
      result.changes.push({ scope: `account ${a.name}`, changes: r.changes, errors: r.errors });
    }
    if (dpPlan) {
      try {
        // After the accounts' own entries: what is left to do here is deleting what nobody wants.
        dp.pruneAccounts(dpPlan, dpScope.changes);
      } catch (err) {
        dpScope.errors.push(errorText(err));
      }
    }
    dp.close();
    result.changes.splice(1, 0, dpScope);

    try {
      const bgp = await planBgp({
        node,
        dataDir,
        settings,
        nodeConfig: decodeNodeConfig(value(keys.nodeConfig(node.nodeId))),
        drained: value(keys.nodeDrain(node.nodeId)) !== undefined,
        docs,
        failing,
        hostReady: host.errors.length === 0 && dpScope.errors.length === 0,
      });
      result.bgp = bgp;
      result.changes.push({ scope: 'bgp', changes: bgp.changes, errors: bgp.errors });
    } catch (err) {
      result.changes.push({ scope: 'bgp', changes: [], errors: [errorText(err)] });
    }
    return result;
  } finally {
    await store.close();
  }
}

export function formatPlan(p: PlanResult): string {
  const lines: string[] = [];
  for (const c of p.changes) {
    const warnings = c.warnings ?? [];
    if (c.changes.length === 0 && c.errors.length === 0 && warnings.length === 0) continue;
    lines.push(`${c.scope}:`);
    for (const ch of c.changes) lines.push(`  ~ ${ch}`);
    for (const e of c.errors) lines.push(`  ! ${e}`);
    for (const w of warnings) lines.push(`  ? ${w}`);
  }
  const diff = p.bgp?.bird.diff ?? [];
  if (diff.length && p.bgp?.bird.action !== 'none') {
    lines.push(`bgp: ${p.bgp!.bird.config} would change:`);
    for (const l of diff) lines.push(`    ${l}`);
  }
  if (lines.length === 0) lines.push(`node ${p.node_id}: no changes (the kernel matches revision ${p.revision})`);
  return lines.join('\n') + '\n';
}
