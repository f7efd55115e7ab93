/**
 * The edge agents of the lab: one `opentransit agent` process per edge server, each programming its own edge
 * namespace (--host-netns) and making its customer namespaces under `otl-<lab>-<edge>-`, so `lab down` finds them.
 * The agents run in the machine's own namespace, like the API, and reach the lab's embedded store directly.
 */
import path from 'node:path';
import type { LabState } from './state.js';
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

/** The customer-namespace prefix of one edge's agent. */
export const edgeNetnsPrefix = (state: LabState, edge: string) => `${state.plan.netnsPrefix}${edge}-`;

export async function startAgents(
  state: LabState,
  paths: LabPaths,
  record: Record_,
  waitReported: (nodeId: string, proc: LabProcess) => Promise<void>,
): Promise<void> {
  const procs: Array<[string, LabProcess]> = [];
  for (const e of state.plan.edges) {
    const proc = await record(
      await spawnLabProcess({
        lab: state.name,
        role: 'agent',
        host: e.name,
        argv: [
          ...nodeEntryArgv('main'),
          'agent',
          '--node-id', e.nodeId,
          '--host-netns', e.netns,
          '--uplink', e.uplink.dev,
          '--store', `lmdb:${paths.storeDir}`,
          '--data-dir', path.join(paths.agentsDir, e.name),
          '--netns-prefix', edgeNetnsPrefix(state, e.name),
        ],
        log: path.join(paths.logDir, `agent-${e.name}.log`),
        cwd: packageRoot(),
      }),
    );
    procs.push([e.nodeId, proc]);
  }
  for (const [nodeId, proc] of procs) await waitReported(nodeId, proc);
}
