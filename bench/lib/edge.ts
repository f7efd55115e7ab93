/**
 * An edge server for benchmarks: a "host" netns (lo up) with an uplink veth to a "wan" netns, and the agent's
 * NodeConfig for it with customer namespaces named under the bench's own prefix (so cleanup finds them).
 */
import { NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth, linkSetOp, macFromKey } from '../../src/kernel/links.js';
import type { BenchNetns } from './netns.js';

export interface EdgeHost {
  host: string;
  wan: string;
  node: NodeConfig;
}

export async function createEdgeHost(ns: BenchNetns, label: string, nodeId = 'bench'): Promise<EdgeHost> {
  const host = await ns.create(`${label}host`);
  const wan = await ns.create(`${label}wan`);
  await ensureVeth({ ns: host, name: 'up0', mac: macFromKey(`${host}/up0`), peerNs: wan, peerName: 'eth0', peerMac: macFromKey(`${host}/eth0`) });
  await runIpOps(host, [linkSetOp({ name: 'lo', up: true })]);
  await runIpOps(wan, [linkSetOp({ name: 'lo', up: true })]);
  const node: NodeConfig = { ...NODE_DEFAULTS, nodeId, hostNetns: host, uplink: 'up0', netnsPrefix: `${ns.prefix}${label}c-` };
  return { host, wan, node };
}
