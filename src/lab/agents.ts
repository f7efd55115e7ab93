/**
 * The edge agents of the lab: one `opentransit agent` process per edge server, each programming its own edge
 * namespace (--host-netns) and making its customer namespaces under `otl-<lab>-<edge>-`, so `lab down` finds them.
 * The agents run in the machine's own namespace, like the API, and reach the lab's store directly (the embedded
 * store's directory, or every member of the etcd cluster).
 *
 * BGP: before the agents start, each edge's node config is written through the API (router id = its uplink
 * address, AS 64512, one peer: its site router, with BFD and the lab's short timers; in an IPv6 lab a second
 * session to the same router over IPv6). Each agent then runs its own
 * BIRD in the edge namespace (files under agents/<edge>/bird/), which the site router's passive session waits for.
 */
import path from 'node:path';
// A cycle (lab.ts starts the agents), harmless: the constant is read only when an agent is spawned.
import { LAB_BPF_PIN_ROOT } from './lab.js';
import { labStoreSpec, type LabState } from './state.js';
import type { LabEdgePlan } from './topology.js';
import type { LabPaths } from './paths.js';
import { nodeEntryArgv, packageRoot } from './paths.js';
import { spawnLabProcess, type LabProcess } from './processes.js';

type Record_ = (p: LabProcess) => Promise<LabProcess>;

/** Writes the lab's anycast endpoints into the operator settings (the customers' tunnels name them). */
export async function configureSettings(state: LabState): Promise<void> {
  const api = state.api!;
  const auth = { authorization: `Bearer ${api.operatorToken}`, 'content-type': 'application/json' };
  const current = (await (await fetch(`${api.url}/v1/settings`, { headers: auth })).json()) as Record<string, unknown>;
  const res = await fetch(`${api.url}/v1/settings`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify({ ...current, anycast_endpoints: state.plan.anycastEndpoints }),
  });
  if (!res.ok) throw new Error(`setting the anycast endpoints: ${res.status} ${await res.text()}`);
}

/** Timers of the edge ↔ site router sessions: as the site routers' side (routing.ts), BFD 50 ms × 3 on top. */
export const LAB_EDGE_BGP = { hold_time: 3, keepalive: 1, bfd: true } as const;

/** The node config of one edge (PUT /v1/nodes/{id}/config): it peers with its own site router. Pure. */
export function edgeNodeConfig(e: LabEdgePlan): { bgp: { router_id: string; asn: number; peers: object[] } } {
  return {
    bgp: {
      router_id: e.uplink.address.split('/')[0]!,
      asn: e.asn,
      peers: [
        { address: e.router.address, asn: e.router.asn, local_address: e.uplink.address.split('/')[0]!, ...LAB_EDGE_BGP },
        // IPv6 labs: a second session over the link's IPv6 addresses, which carries the IPv6 customer prefixes.
        ...(e.uplink6 && e.router.address6
          ? [{ address: e.router.address6, asn: e.router.asn, local_address: e.uplink6.address.split('/')[0]!, ...LAB_EDGE_BGP }]
          : []),
      ],
    },
  };
}

/** Writes every edge's node config (its BGP router id, AS and site router) through the API. */
export async function configureNodes(state: LabState): Promise<void> {
  const api = state.api!;
  const headers = { authorization: `Bearer ${api.operatorToken}`, 'content-type': 'application/json' };
  for (const e of state.plan.edges) {
    const res = await fetch(`${api.url}/v1/nodes/${e.nodeId}/config`, { method: 'PUT', headers, body: JSON.stringify(edgeNodeConfig(e)) });
    if (!res.ok) throw new Error(`configuring node ${e.nodeId}: ${res.status} ${await res.text()}`);
  }
}

/**
 * Where the lab's agents pin their data planes: under the lab's own bpffs directory, which `lab down` removes (the
 * default /sys/fs/bpf/opentransit/<node> would be shared by two labs' "chi-edge1" and outlive both).
 */
export const labAgentPinBase = (lab: string) => `${LAB_BPF_PIN_ROOT}/${lab}/agents`;

/** The agent's data directory of one edge (its replica, BIRD files under bird/). */
export const edgeAgentDir = (paths: LabPaths, edge: string) => path.join(paths.agentsDir, edge);

/** The pid file of an edge agent's BIRD (see src/agent/bgp/manager.ts: instance "edge" under <data dir>/bird). */
export const edgeBirdPidFile = (paths: LabPaths, edge: string) => path.join(edgeAgentDir(paths, edge), 'bird', 'edge.pid');

/** The customer-namespace prefix of one edge's agent. */
export const edgeNetnsPrefix = (state: LabState, edge: string) => `${state.plan.netnsPrefix}${edge}-`;

export async function startAgents(
  state: LabState,
  paths: LabPaths,
  record: Record_,
  waitReported: (nodeId: string, proc: LabProcess) => Promise<void>,
): Promise<void> {
  await configureNodes(state);
  const procs: Array<[string, LabProcess]> = [];
  for (const e of state.plan.edges) {
    const proc = await record(await spawnEdgeAgent(state, paths, e));
    procs.push([e.nodeId, proc]);
  }
  for (const [nodeId, proc] of procs) await waitReported(nodeId, proc);
}

/** Starts the agent of one edge (`opentransit agent …`, detached, logging to logs/agent-<edge>.log). */
export function spawnEdgeAgent(state: LabState, paths: LabPaths, e: LabEdgePlan): Promise<LabProcess> {
  return spawnLabProcess({
    lab: state.name,
    role: 'agent',
    host: e.name,
    argv: [
      ...nodeEntryArgv('main'),
      'agent',
      '--node-id', e.nodeId,
      '--host-netns', e.netns,
      '--uplink', e.uplink.dev,
      '--store', labStoreSpec(state),
      '--data-dir', edgeAgentDir(paths, e.name),
      '--netns-prefix', edgeNetnsPrefix(state, e.name),
      '--bpf-pin-base', labAgentPinBase(state.name),
    ],
    log: path.join(paths.logDir, `agent-${e.name}.log`),
    cwd: packageRoot(),
  });
}
