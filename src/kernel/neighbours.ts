/**
 * Permanent neighbour entries: one per tunnel peer, whose MAC encodes the tunnel for the tc program (DESIGN.md §2).
 * They vanish when their device goes down, so the reconciler re-asserts them (replace is idempotent).
 * Ownership: protocol RT_PROTO_OPENTRANSIT.
 */
import { netlinkRead, runIpOps, type IpOp } from './ip.js';
import { LINK_DUMP_BODY, linkNames } from './links.js';
import { AF_UNSPEC, attr, familyCode, getU8, ipBytes, ipText, macBytes, macText, ndmsg, NLM_F, parseAttrs, payload, RTM, u8 } from './netlink/codec.js';
import { rtnlDump } from './netlink/socket.js';
import type { NetnsRef } from './netns.js';
import { RT_PROTO_OPENTRANSIT } from './routes.js';
import { checkIfname, checkInt, checkIp, checkMac, familyOf, type IpFamily } from './validate.js';

const NDA = { DST: 1, LLADDR: 2, PROTOCOL: 12 } as const;
const NUD_NOARP = 0x40;
const NUD_PERMANENT = 0x80;
const NTF_PROXY = 0x08;
const NTF_EXT_LEARNED = 0x10;
/** NUD state bits as iproute2 names them. */
const NUD_NAMES: [number, string][] = [
  [0x01, 'INCOMPLETE'], [0x02, 'REACHABLE'], [0x04, 'STALE'], [0x08, 'DELAY'], [0x10, 'PROBE'], [0x20, 'FAILED'], [0x40, 'NOARP'], [0x80, 'PERMANENT'],
];

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
  const address = checkIp('address', n.address);
  const lladdr = checkMac('lladdr', n.lladdr);
  const dev = checkIfname('dev', n.dev);
  const protocol = checkInt('protocol', n.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255);
  return {
    args: ['neigh', 'replace', address, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent', 'proto', String(protocol)],
    nl: {
      type: RTM.NEWNEIGH,
      flags: NLM_F.CREATE | NLM_F.REPLACE,
      devs: [dev],
      build: (ctx) => payload(ndmsg({ family: familyCode(familyOf(address)), ifindex: ctx.ifindex(dev), state: NUD_PERMANENT }), [
        attr(NDA.DST, ipBytes(address)),
        attr(NDA.LLADDR, macBytes(lladdr)),
        attr(NDA.PROTOCOL, u8(protocol)),
      ]),
    },
  };
}

/**
 * Twin: `ip neigh delete ADDR dev DEV`, succeeding when absent.
 */
export function neighbourDeleteOp(n: Pick<NeighbourSpec, 'dev' | 'address'>): IpOp {
  const address = checkIp('address', n.address);
  const dev = checkIfname('dev', n.dev);
  return {
    args: ['neigh', 'delete', address, 'dev', dev],
    tolerate: ['ENOENT'],
    nl: {
      type: RTM.DELNEIGH,
      flags: 0,
      devs: [dev],
      build: (ctx) => payload(ndmsg({ family: familyCode(familyOf(address)), ifindex: ctx.ifindex(dev) }), [attr(NDA.DST, ipBytes(address))]),
    },
  };
}

/** Twin: `ip -n NS neigh replace …` for each (in-process requests, in order). */
export async function replaceNeighbours(ns: NetnsRef, specs: readonly NeighbourSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(neighbourReplaceOp));
}

/** Twin: `ip -n NS neigh delete …` for each (delete-if-present). */
export async function deleteNeighboursIfPresent(ns: NetnsRef, specs: readonly Pick<NeighbourSpec, 'dev' | 'address'>[]): Promise<void> {
  await runIpOps(ns, specs.map(neighbourDeleteOp));
}

/**
 * Decodes RTM_NEWNEIGH message bodies (ndmsg + attributes) of IPv4 and IPv6, keeping what `ip neigh show` lists
 * (it hides NOARP-only and stateless entries); `names` maps ifindex → device name.
 */
export function decodeNeighbours(bodies: readonly Buffer[], names: ReadonlyMap<number, string>): Neighbour[] {
  const out: Neighbour[] = [];
  for (const body of bodies) {
    const fam = body.readUInt8(0);
    if (fam !== 2 && fam !== 10) continue;
    const state = body.readUInt16LE(8);
    const flags = body.readUInt8(10);
    if (!(state & 0xff & ~NUD_NOARP) && !(flags & (NTF_PROXY | NTF_EXT_LEARNED))) continue;
    const a = parseAttrs(body, 12);
    const address = ipText(a.get(NDA.DST));
    if (address === undefined) continue;
    const ifindex = body.readInt32LE(4);
    const n: Neighbour = {
      family: fam === 2 ? 4 : 6,
      dev: names.get(ifindex) ?? `if${ifindex}`,
      address,
      state: NUD_NAMES.filter(([bit]) => state & bit).map(([, name]) => name),
      permanent: (state & NUD_PERMANENT) !== 0,
      protocol: getU8(a.get(NDA.PROTOCOL)) ?? 0,
    };
    const lladdr = macText(a.get(NDA.LLADDR));
    if (lladdr !== undefined) n.lladdr = lladdr;
    out.push(n);
  }
  return out;
}

/** The request body of a neighbour dump (both families). */
export const NEIGHBOUR_DUMP_BODY = ndmsg({ family: AF_UNSPEC });

export interface NeighbourFilter {
  dev?: string;
  protocol?: number;
  permanentOnly?: boolean;
}

export function filterNeighbours(ns: readonly Neighbour[], f: NeighbourFilter): Neighbour[] {
  return ns.filter((n) => (f.dev === undefined || n.dev === f.dev) && (f.protocol === undefined || n.protocol === f.protocol) && (!f.permanentOnly || n.permanent));
}

/** Twin: `ip -N -j -n NS neigh show` (both families; one in-process dump plus a link dump), filtered in code. */
export async function listNeighbours(ns: NetnsRef, filter: NeighbourFilter = {}): Promise<Neighbour[]> {
  return netlinkRead(ns, ['neigh', 'show'], async () => {
    const links = await rtnlDump(ns, RTM.GETLINK, LINK_DUMP_BODY, RTM.NEWLINK);
    const neigh = await rtnlDump(ns, RTM.GETNEIGH, NEIGHBOUR_DUMP_BODY, RTM.NEWNEIGH);
    return filterNeighbours(decodeNeighbours(neigh, linkNames(links)), filter);
  });
}
