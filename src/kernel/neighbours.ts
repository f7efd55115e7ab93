/**
 * Permanent neighbour entries: one per tunnel peer, whose MAC encodes the tunnel for the tc program (DESIGN.md §2).
 * They vanish when their device goes down, so the reconciler re-asserts them (replace is idempotent).
 * Ownership: protocol RT_PROTO_OPENTRANSIT.
 */
import { ipJson, runIpOps, type IpOp } from './ip.js';
import type { NetnsRef } from './netns.js';
import { RT_PROTO_OPENTRANSIT } from './routes.js';
import { checkIfname, checkInt, checkIp, checkMac, familyOf, type IpFamily } from './validate.js';

export interface NeighbourSpec {
  dev: string;
  /** The neighbour's IP address. */
  address: string;
  lladdr: string;
  /** Default RT_PROTO_OPENTRANSIT. */
  protocol?: number;
}

export interface Neighbour {
  family: IpFamily;
  dev: string;
  address: string;
  /** Absent for incomplete/failed entries. */
  lladdr?: string;
  /** NUD states as the kernel names them: PERMANENT, REACHABLE, STALE… */
  state: string[];
  permanent: boolean;
  /** 0 when the entry carries none. */
  protocol: number;
}

/** Twin: `ip neigh replace ADDR lladdr MAC dev DEV nud permanent proto P` (idempotent). */
export function neighbourReplaceOp(n: NeighbourSpec): IpOp {
  return {
    args: ['neigh', 'replace', checkIp('address', n.address), 'lladdr', checkMac('lladdr', n.lladdr), 'dev', checkIfname('dev', n.dev),
      'nud', 'permanent', 'proto', String(checkInt('protocol', n.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255))],
  };
}

/**
 * Twin: `ip neigh delete ADDR dev DEV`, succeeding when absent. (`ip -batch` aborts on this command's failure;
 * runIpOps then re-runs the batch op by op, so prefer deleting only entries a listing showed.)
 */
export function neighbourDeleteOp(n: Pick<NeighbourSpec, 'dev' | 'address'>): IpOp {
  return { args: ['neigh', 'delete', checkIp('address', n.address), 'dev', checkIfname('dev', n.dev)], tolerate: ['ENOENT'] };
}

/** Twin: `ip -n NS neigh replace …` for each, one spawn. */
export async function replaceNeighbours(ns: NetnsRef, specs: readonly NeighbourSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(neighbourReplaceOp));
}

/** Twin: `ip -n NS neigh delete …` for each (delete-if-present). */
export async function deleteNeighboursIfPresent(ns: NetnsRef, specs: readonly Pick<NeighbourSpec, 'dev' | 'address'>[]): Promise<void> {
  await runIpOps(ns, specs.map(neighbourDeleteOp));
}

interface RawNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
  protocol?: string;
}

export function parseNeighbours(raw: unknown): Neighbour[] {
  return (raw as RawNeigh[]).map((r) => {
    const n: Neighbour = {
      family: familyOf(r.dst),
      dev: r.dev,
      address: r.dst,
      state: r.state ?? [],
      permanent: r.state?.includes('PERMANENT') ?? false,
      protocol: r.protocol === undefined ? 0 : Number(r.protocol),
    };
    if (r.lladdr !== undefined) n.lladdr = r.lladdr;
    return n;
  });
}

export interface NeighbourFilter {
  dev?: string;
  protocol?: number;
  permanentOnly?: boolean;
}

export function filterNeighbours(ns: readonly Neighbour[], f: NeighbourFilter): Neighbour[] {
  return ns.filter((n) => (f.dev === undefined || n.dev === f.dev) && (f.protocol === undefined || n.protocol === f.protocol) && (!f.permanentOnly || n.permanent));
}

/** Twin: `ip -N -j -n NS neigh show` (both families), filtered in code. */
export async function listNeighbours(ns: NetnsRef, filter: NeighbourFilter = {}): Promise<Neighbour[]> {
  return filterNeighbours(parseNeighbours(await ipJson(ns, ['neigh', 'show'])), filter);
}
