/**
 * The status document an edge agent reports under keys.nodeStatus(nodeId): written by the agent, served by
 * `GET /v1/nodes` (with the node id added as `id`), shown by `opentransit status`.
 */

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

export interface NodeStatus {
  node_id: string;
  host_netns: string;
  store: { kind: string; reachable: boolean };
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

/** A node whose last report is older than this many heartbeats is stale: its agent died or lost the store. */
export const STALE_AFTER_HEARTBEATS = 3;

/** Age of a status document and whether it is stale, at time `now` (ms). */
export function nodeFreshness(status: { updated_at?: unknown; heartbeat_ms?: unknown }, now: number): { age_ms: number | null; stale: boolean } {
  const at = typeof status.updated_at === 'string' ? Date.parse(status.updated_at) : Number.NaN;
  if (Number.isNaN(at)) return { age_ms: null, stale: true };
  const heartbeat = typeof status.heartbeat_ms === 'number' && status.heartbeat_ms > 0 ? status.heartbeat_ms : 5000;
  const age = Math.max(0, now - at);
  return { age_ms: age, stale: age > STALE_AFTER_HEARTBEATS * heartbeat };
}
