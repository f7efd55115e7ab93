/**
 * Key layout of the store — the same for LMDB and etcd, so either backend is a drop-in.
 *
 * Why one document per account: an account's prefixes, tunnels, routes and firewall are validated together
 * (a route's prefix lies in the account's prefixes, a nexthop in one of its tunnels' subnets), so storing them
 * as one JSON document makes every API write — and `PUT /config` — a single compare-and-swap on one key, and
 * gives every agent a consistent snapshot of an account in one watch event (never a route without its tunnel).
 * Cross-account invariants (unique names, no prefix overlap between tenants) live in one small `registry`
 * document that every write touching names or prefixes compares too. Secrets (token hashes) live apart from the
 * documents agents watch, so an edge server never holds a tenant's credentials.
 */

export const ROOT = '/opentransit/v1/';
/**
 * Everything an edge agent needs, and nothing else, lives under DESIRED: an agent lists-and-watches exactly this
 * prefix into its local replica. API-only data (the registry, token hashes) and what agents report (status) live
 * beside it, so an edge server never receives another tenant's credentials.
 */
export const DESIRED = `${ROOT}desired/`;

export const keys = {
  /** What agents watch (one prefix, one replica). */
  desiredPrefix: DESIRED,
  /** Operator settings: anycast endpoints, BGP peers, global blocklist. */
  settings: `${DESIRED}settings`,
  /** Prefix under which every account document lives. */
  accountsPrefix: `${DESIRED}accounts/`,
  account: (id: string) => `${DESIRED}accounts/${id}`,
  /** Operator-wide DoS mitigation rules (XDP), one key each so rules expire independently. */
  mitigationsPrefix: `${DESIRED}mitigations/`,
  mitigation: (id: string) => `${DESIRED}mitigations/${id}`,
  /** Set by operators (`opentransit node drain`): the node withdraws its announcements. */
  nodeDrainPrefix: `${DESIRED}drain/`,
  nodeDrain: (nodeId: string) => `${DESIRED}drain/${nodeId}`,
  /** Per-node configuration (operator): its BGP router id, AS and peers (src/model/node-config.ts). */
  nodeConfigPrefix: `${DESIRED}nodes/`,
  nodeConfig: (nodeId: string) => `${DESIRED}nodes/${nodeId}`,
  /** Names and prefixes of every account: the cross-tenant uniqueness/overlap index (API only). */
  registry: `${ROOT}registry`,
  /** Account tokens, by the SHA-256 of the token (hex); value names the account (API only). */
  tokensPrefix: `${ROOT}tokens/`,
  token: (sha256hex: string) => `${ROOT}tokens/${sha256hex}`,
  /** Per-node state reported by agents. */
  nodesPrefix: `${ROOT}nodes/`,
  nodeStatus: (nodeId: string) => `${ROOT}nodes/${nodeId}/status`,
  /**
   * Liveness: put by the agent under a store lease of three heartbeats, so the store itself deletes it when the
   * agent dies, hangs or loses the store (the status document stays: a dead node shows as stale, not vanished).
   */
  nodeAlive: (nodeId: string) => `${ROOT}nodes/${nodeId}/alive`,
  /** Data-plane counters an agent publishes periodically (src/model/counters.ts). */
  nodeCounters: (nodeId: string) => `${ROOT}nodes/${nodeId}/counters`,
} as const;

/** The account id of an account document key, or undefined for any other key. */
export function accountIdOfKey(key: string): string | undefined {
  if (!key.startsWith(keys.accountsPrefix)) return undefined;
  const id = key.slice(keys.accountsPrefix.length);
  return id.length > 0 && !id.includes('/') ? id : undefined;
}
