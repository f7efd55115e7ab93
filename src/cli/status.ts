/**
 * `opentransit status`: what every edge node has made real — the revision it applied, when it last reconciled
 * and how that went, and each account's state on it — from `GET /v1/nodes` (agents report it to the store).
 * The node status document is written by the agent; this reader accepts the plausible spellings of each field
 * (snake_case first) so a renamed field shows as "-" rather than breaking the command.
 */
import type { Command } from 'commander';
import { listAccounts, type AccountRef } from './accounts.js';
import { verbContext, type CliIo } from './context.js';
import { renderObjects, type Column } from './table.js';

type Item = Record<string, unknown>;

export interface NodeRow {
  node: unknown;
  revision: unknown;
  lastReconcile: unknown;
  result: unknown;
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
      const body = await ctx.client.get<{ items?: Item[] }>('/v1/nodes');
      if (ctx.settings.output === 'json') return ctx.printJson(body);
      const nodes = Array.isArray(body?.items) ? body.items : [];
      if (nodes.length === 0) return io.stdout('no nodes have reported yet\n');
      // Names read better than ids; an account token may not list accounts, so this is best effort.
      const accounts = await listAccounts(ctx.client).catch((): AccountRef[] => []);
      io.stdout(formatStatus(nodes, accounts, Date.now()));
    });
}

export function formatStatus(nodes: readonly Item[], accounts: readonly AccountRef[], now: number): string {
  const nameOf = (id: unknown): unknown => accounts.find((a) => a.id === id)?.name ?? id;
  const nodeRows: NodeRow[] = nodes.map((n) => {
    const last = pick(n, 'last_reconcile', 'lastReconcile', 'reconciled_at');
    const lastObj = isRecord(last) ? last : undefined;
    const at = lastObj ? pick(lastObj, 'at', 'finished_at', 'time', 'timestamp') : last;
    return {
      node: nodeName(n),
      revision: pick(n, 'applied_revision', 'appliedRevision', 'revision'),
      lastReconcile: formatTime(at, now),
      result: lastObj ? resultOf(lastObj) : pick(n, 'state', 'status'),
    };
  });
  const accountRows: AccountStateRow[] = nodes.flatMap((n) =>
    accountEntries(pick(n, 'accounts')).map(([key, a]) => ({
      node: nodeName(n),
      account: nameOf(pick(a, 'account', 'account_id', 'id', 'name') ?? key),
      state: pick(a, 'state', 'status'),
      revision: pick(a, 'applied_revision', 'revision', 'appliedRevision'),
      message: pick(a, 'error', 'message', 'reason'),
    })),
  );
  const nodeCols: Column<NodeRow>[] = [
    { header: 'node', value: (r) => r.node },
    { header: 'applied_revision', value: (r) => r.revision },
    { header: 'last_reconcile', value: (r) => r.lastReconcile },
    { header: 'result', value: (r) => r.result },
  ];
  let out = renderObjects(nodeCols, nodeRows);
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

function nodeName(n: Item): unknown {
  return pick(n, 'id', 'node', 'node_id', 'name');
}

function resultOf(last: Item): unknown {
  const error = pick(last, 'error', 'message');
  if (error !== undefined && error !== null && error !== '') return `error: ${String(error)}`;
  const ok = pick(last, 'ok', 'success');
  if (ok === true) return 'ok';
  if (ok === false) return 'failed';
  return pick(last, 'result', 'state', 'status');
}

/** Accounts may come as a list of objects or as a map keyed by account id. */
function accountEntries(value: unknown): Array<[string | undefined, Item]> {
  if (Array.isArray(value)) return value.filter(isRecord).map((a) => [undefined, a]);
  if (isRecord(value)) {
    return Object.entries(value).map(([k, v]) => [k, isRecord(v) ? v : { state: v }]);
  }
  return [];
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

function pick(obj: Item, ...names: string[]): unknown {
  for (const name of names) if (obj[name] !== undefined) return obj[name];
  return undefined;
}

function isRecord(v: unknown): v is Item {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
