/**
 * The status document an edge agent reports under keys.nodeStatus(nodeId): written by the agent, served by
 * `GET /v1/nodes` (with the node id added as `id`), shown by `opentransit status`.
 */
import { keys } from './keys.js';

export interface AccountStatus {
  name: string;
  state: 'ok' | 'error' | 'pending';
  error?: string;
  /** modRevision of the account document last applied without error. */
  applied_revision?: number;
  reconciled_at?: string;
}

/** One BGP session of the node's BIRD, as BIRD reports it. */
export interface BgpSessionStatus {
  /** The router's address. */
  peer: string;
  peer_asn: number;
  /** BIRD's protocol state ('up', 'start', 'down'…) and BGP state ('Established', 'Active', 'Connect'…). */
  state: string;
  bgp_state?: string;
  /** Since when the session is in this state (BIRD's time). */
  since?: string;
  /** Routes this session exports (what the router hears from this node). */
  exported?: number;
  /** BIRD's last error for it, e.g. "Received: Hold timer expired". */
  info?: string;
}

/** The node's BGP: what it announces and why, its sessions, its BIRD. */
export interface NodeBgpStatus {
  /**
   * ok: BIRD runs with the desired announcements; off: no peers configured (no BIRD); pending: waiting for the
   * first complete reconcile; error: see `error` (announcements may be stale or withdrawn).
   */
  state: 'ok' | 'off' | 'pending' | 'error';
  error?: string;
  /** An operator drain is in effect (keys.nodeDrain): nothing is announced, sessions stay up. */
  drained: boolean;
  router_id?: string;
  asn?: number;
  /** Every network announced now (customer prefixes, then anycast endpoints as /32). */
  announced: string[];
  /** Why nothing is announced for a node-wide reason. */
  withheld?: 'drained' | 'data-plane-not-ready';
  /** Prefixes of accounts that are not ready here (withdrawn from this node alone): account id → prefixes. */
  not_ready?: Record<string, string[]>;
  /** Announcements refused by the agent's own checks, with the reason. */
  refused?: { account_id?: string; value: string; reason: string }[];
  sessions: BgpSessionStatus[];
  bird?: { pid?: number; restarts: number; adopted?: boolean };
}

/**
 * Whether the agent can reach the store, as the agent sees it (watch errors, failed status writes, lease loss).
 * Also written locally, with the rest of the status, to `<data-dir>/local-status.json` (LOCAL_STATUS_FILE), which
 * is the only place a reader finds `reachable: false` while the store is gone.
 */
export interface NodeStoreStatus {
  kind: string;
  reachable: boolean;
  /** Since when `reachable` has had its current value (ISO-8601). */
  since: string;
  /** Why the store is unreachable (the last error seen). */
  error?: string;
}

/** The agent's local copy of its status (the document it would publish), rewritten atomically every heartbeat. */
export const LOCAL_STATUS_FILE = 'local-status.json';

export interface NodeStatus {
  node_id: string;
  host_netns: string;
  store: NodeStoreStatus;
  /** Revision of the desired state the replica holds. */
  replica_revision: number | null;
  /** Every account is applied up to this revision (null until a full pass succeeded). */
  applied_revision: number | null;
  host: { state: 'ok' | 'error' | 'pending'; error?: string };
  /** The eBPF data plane (its errors are also in `host`): program ids, pins, accounts numbered. */
  dataplane?: {
    state: 'ok' | 'error' | 'pending';
    error?: string;
    /** What does not work without stopping the node (a rule without room, a key two accounts want). */
    warnings?: string[];
    xdp_prog_id?: number;
    tc_prog_id?: number;
    pins?: string;
    /** The fast path's shortcuts on this node (in, gre, all, src) and why the others are off (dataplane-fib.ts). */
    fast_path_shortcuts?: { on: string[]; off: Record<string, string> };
    accounts?: number;
  };
  accounts: Record<string, AccountStatus>;
  /** BGP announcements and sessions (absent until the agent's first BGP pass). */
  bgp?: NodeBgpStatus;
  last_reconcile_at: string | null;
  /** When the agent wrote this document; it writes at least every heartbeat_ms. */
  updated_at: string;
  heartbeat_ms: number;
}

/**
 * A node whose last report is older than this many heartbeats is stale: its agent died or lost the store. The
 * agent's liveness lease (keys.nodeAlive) has the same TTL, so the store deletes its liveness key at about the
 * same moment.
 */
export const STALE_AFTER_HEARTBEATS = 3;

export const DEFAULT_HEARTBEAT_MS = 5000;

/** The TTL of an agent's liveness lease for a heartbeat period. */
export function livenessTtlMs(heartbeatMs: number): number {
  return STALE_AFTER_HEARTBEATS * heartbeatMs;
}

/**
 * Age of a status document and whether the node is stale, at time `now` (ms): stale when its liveness key is gone
 * (`alive: false` — the store expired its lease) OR its status is older than three heartbeats. `alive` undefined
 * (not looked up) judges on age alone.
 */
export function nodeFreshness(
  status: { updated_at?: unknown; heartbeat_ms?: unknown },
  now: number,
  alive?: boolean,
): { age_ms: number | null; stale: boolean } {
  const at = typeof status.updated_at === 'string' ? Date.parse(status.updated_at) : Number.NaN;
  if (Number.isNaN(at)) return { age_ms: null, stale: true };
  const heartbeat = typeof status.heartbeat_ms === 'number' && status.heartbeat_ms > 0 ? status.heartbeat_ms : DEFAULT_HEARTBEAT_MS;
  const age = Math.max(0, now - at);
  return { age_ms: age, stale: alive === false || age > STALE_AFTER_HEARTBEATS * heartbeat };
}

/**
 * The nodes as `GET /v1/nodes` lists them, from the keys under keys.nodesPrefix (one list, one revision):
 * `{id, ...status, alive, age_ms, stale}` per status document. `alive`: the node's liveness key exists (its agent
 * holds a live lease). A node that stopped reporting (dead agent, lost store) shows as stale, never as its last
 * "ok": its lease expired, or its status is older than three heartbeats.
 */
export function nodeItems(items: readonly { key: string; value: string }[], now: number): Array<Record<string, unknown>> {
  const present = new Set(items.map((kv) => kv.key));
  const out: Array<Record<string, unknown>> = [];
  for (const kv of items) {
    if (!kv.key.startsWith(keys.nodesPrefix)) continue;
    const rest = kv.key.slice(keys.nodesPrefix.length);
    if (!rest.endsWith('/status')) continue;
    const id = rest.slice(0, -'/status'.length);
    let status: unknown;
    try {
      status = JSON.parse(kv.value);
    } catch {
      status = { error: 'unreadable status document' };
    }
    const doc = typeof status === 'object' && status !== null && !Array.isArray(status) ? (status as Record<string, unknown>) : { status };
    const alive = present.has(keys.nodeAlive(id));
    out.push({ id, ...doc, alive, ...nodeFreshness(doc, now, alive) });
  }
  return out;
}
