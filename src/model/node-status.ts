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
  dataplane?: { state: 'ok' | 'error' | 'pending'; error?: string; xdp_prog_id?: number; tc_prog_id?: number; pins?: string; accounts?: number };
  accounts: Record<string, AccountStatus>;
  last_reconcile_at: string | null;
  updated_at: string;
}
