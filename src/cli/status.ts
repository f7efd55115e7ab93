/**
 * `opentransit status`: what every edge node has made real — the revision it applied, when it last reconciled
 * and how that went, and each account's state on it — from `GET /v1/nodes` (agents report it to the store).
 * The node status document is the agent's (src/model/node-status.ts).
 */
import type { Command } from 'commander';
import type { NodeStatus, NodeStoreStatus } from '../model/node-status.js';
import { listAccounts, type AccountRef } from './accounts.js';
import { verbContext, type CliIo } from './context.js';
import { renderObjects, type Column } from './table.js';


export interface NodeRow {
  node: unknown;
  revision: unknown;
  lastReconcile: unknown;
  result: unknown;
  bgp: unknown;
}

export interface BgpRow {
  node: unknown;
  announced: unknown;
  sessions: unknown;
}

export interface AccountStateRow {
  node: unknown;
  account: unknown;
  state: unknown;
  revision: unknown;
  message: unknown;
}

export function registerStatusCommand(program: Command, io: CliIo): void {
  program
    .command('status')
    .description("each edge node's applied revision, per-account state and last reconcile")
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const body = await ctx.client.get<{ items?: NodeItem[] }>('/v1/nodes');
      if (ctx.settings.output === 'json') return ctx.printJson(body);
      const nodes = Array.isArray(body?.items) ? body.items : [];
      if (nodes.length === 0) return io.stdout('no nodes have reported yet\n');
      // Names read better than ids; an account token may not list accounts, so this is best effort.
      const accounts = await listAccounts(ctx.client).catch((): AccountRef[] => []);
      io.stdout(formatStatus(nodes, accounts, Date.now()));
    });
}

/** A node as `GET /v1/nodes` lists it: the agent's status document plus its id and liveness. */
export type NodeItem = Omit<Partial<NodeStatus>, 'store'> & {
  store?: Partial<NodeStoreStatus>;
  id?: string;
  /** Its liveness key exists (the agent holds a live lease). */
  alive?: boolean;
  stale?: boolean;
  age_ms?: number | null;
};

export function formatStatus(nodes: readonly NodeItem[], accounts: readonly AccountRef[], now: number): string {
  const nameOf = (id: string, reported: string | undefined) => reported || accounts.find((a) => a.id === id)?.name || id;
  const nodeRows: NodeRow[] = nodes.map((n) => ({
    node: n.id ?? n.node_id,
    revision: n.applied_revision ?? undefined,
    lastReconcile: formatTime(n.last_reconcile_at, now),
    result: nodeResult(n),
    bgp: bgpSummary(n),
  }));
  const accountRows: AccountStateRow[] = nodes.flatMap((n) =>
    Object.entries(n.accounts ?? {}).map(([id, a]) => ({
      node: n.id ?? n.node_id,
      account: nameOf(id, a.name),
      state: a.state,
      revision: a.applied_revision,
      message: a.error,
    })),
  );
  const nodeCols: Column<NodeRow>[] = [
    { header: 'node', value: (r) => r.node },
    { header: 'applied_revision', value: (r) => r.revision },
    { header: 'last_reconcile', value: (r) => r.lastReconcile },
    { header: 'result', value: (r) => r.result },
    { header: 'bgp', value: (r) => r.bgp, optional: true },
  ];
  let out = renderObjects(nodeCols, nodeRows);
  const bgpRows: BgpRow[] = nodes
    .filter((n) => n.bgp && n.bgp.state !== 'off')
    .map((n) => ({
      node: n.id ?? n.node_id,
      announced: n.bgp!.announced?.length ? n.bgp!.announced.join(' ') : n.bgp!.withheld ? `nothing (${n.bgp!.withheld})` : 'nothing',
      sessions: (n.bgp!.sessions ?? []).map((s) => `${s.peer} ${s.bgp_state ?? s.state}`).join(', ') || undefined,
    }));
  if (bgpRows.length > 0) {
    out +=
      '\n' +
      renderObjects<BgpRow>(
        [
          { header: 'node', value: (r) => r.node },
          { header: 'announced', value: (r) => r.announced },
          { header: 'bgp_sessions', value: (r) => r.sessions },
        ],
        bgpRows,
      );
  }
  if (accountRows.length > 0) {
    const accountCols: Column<AccountStateRow>[] = [
      { header: 'node', value: (r) => r.node },
      { header: 'account', value: (r) => r.account },
      { header: 'state', value: (r) => r.state },
      { header: 'revision', value: (r) => r.revision },
      { header: 'message', value: (r) => r.message },
    ];
    out += '\n' + renderObjects(accountCols, accountRows);
  }
  return out;
}

/** The node's BGP in a few words: ok, drained, off, pending or the error; with how much it announces. */
export function bgpSummary(n: NodeItem): string | undefined {
  const b = n.bgp;
  if (!b) return undefined;
  if (b.state === 'off') return 'off (no peers)';
  const count = `${b.announced?.length ?? 0} announced`;
  if (b.state === 'error') return `error: ${b.error ?? ''} (${count})`;
  if (b.state === 'pending') return 'pending';
  if (b.drained) return `drained (${count})`;
  const up = (b.sessions ?? []).filter((s) => s.bgp_state === 'Established').length;
  return `ok, ${count}, ${up}/${(b.sessions ?? []).length} sessions up`;
}

/** One word for a node: its host objects' state, and whether it can reach the store. */
function nodeResult(n: NodeItem): string | undefined {
  const age = n.age_ms === null || n.age_ms === undefined ? '?' : formatAge(n.age_ms).replace(' ago', '');
  if (n.stale && n.alive === false && n.age_ms !== null && n.age_ms !== undefined && n.age_ms <= 3 * (n.heartbeat_ms ?? 5000))
    // The report is recent but the store expired the agent's lease: it died or lost the store since.
    return `STALE: liveness lease expired (last report ${age} ago)`;
  if (n.stale) return `STALE: no report for ${age}`;
  if (!n.host) return undefined;
  const host = n.host.state === 'error' ? `error: ${n.host.error ?? ''}` : n.host.state;
  return n.store && !n.store.reachable ? `${host} (store unreachable)` : host;
}

/** An ISO time with its age, e.g. "2026-11-22T19:00:00.000Z (12s ago)"; other values as they are. */
export function formatTime(value: unknown, now: number): unknown {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) return value;
  return `${new Date(ms).toISOString()} (${formatAge(now - ms)})`;
}

export function formatAge(ms: number): string {
  if (ms < 0) return 'in the future';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}


