/**
 * Links: veth pairs across namespaces, up/down, MTU, MAC, alias, offload features; listing with what we need to
 * recognise our own objects.
 *
 * Ownership: a link we create carries the alias `opentransit:<owner>` (owner = account id, or another tag the agent
 * chooses). Prune only touches links whose alias parses with `ownerOfAlias`.
 */
import { createHash } from 'node:crypto';
import { KernelError, KernelInputError, run } from './exec.js';
import { asTwinError, netlinkRead, runIpOps, type IpOp } from './ip.js';
import { attr, attrList, getS32, getStr, getU32, getU8, ifinfomsg, linkByNameBody, macBytes, macText, nested, NLM_F, parseAttrs, payload, RTM, s32, str, u32 } from './netlink/codec.js';
import { genlGet, genlRequest, NetlinkRequestError, rtnlDump, rtnlGet } from './netlink/socket.js';
import { inNetns, type NetnsRef } from './netns.js';
import { checkIfname, checkInt, checkMac, checkNetnsName, checkToken } from './validate.js';

export const OWNER_ALIAS_PREFIX = 'opentransit:';

/** The alias that marks a link as ours: `opentransit:<owner>`. */
export function ownerAlias(owner: string): string {
  checkToken('owner', owner, 64);
  return `${OWNER_ALIAS_PREFIX}${owner}`;
}

/** The owner tag of an alias made by `ownerAlias`, or undefined for a link that is not ours. */
export function ownerOfAlias(alias: string | undefined): string | undefined {
  return alias?.startsWith(OWNER_ALIAS_PREFIX) && alias.length > OWNER_ALIAS_PREFIX.length
    ? alias.slice(OWNER_ALIAS_PREFIX.length)
    : undefined;
}

/**
 * A deterministic, locally administered, unicast MAC derived from `key` (SHA-256), so a re-created veth gets the
 * same address and neighbour entries / BPF maps keyed on it stay valid across agent restarts.
 */
export function macFromKey(key: string): string {
  const b = createHash('sha256').update(key).digest();
  b[0] = (b[0]! & 0xfc) | 0x02; // locally administered, unicast
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A link as the kernel reports it (`ip -d -j link show`). */
export interface Link {
  ifindex: number;
  name: string;
  /** linkinfo kind: 'veth', 'bridge'…; undefined for physical devices and loopback. */
  kind?: string;
  mac: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** operstate as the kernel says (UP, DOWN, LOWERLAYERDOWN, UNKNOWN…). */
  operstate: string;
  alias?: string;
  /** The owner tag when the alias marks the link as ours. */
  owner?: string;
  /** For a veth: the peer's ifindex (in the peer's namespace). */
  peerIfindex?: number;
  /** For a veth whose peer is in another namespace: that namespace's id as seen from this one. */
  linkNetnsId?: number;
}

// rtnetlink link attributes (linux/if_link.h) and flags.
const IFF_UP = 0x1;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, OPERSTATE: 16, LINKINFO: 18, IFALIAS: 20, NET_NS_FD: 28, EXT_MASK: 29, LINK_NETNSID: 37 } as const;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const RTEXT_FILTER_SKIP_STATS = 8;
const OPERSTATES = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'];

/** Decodes one RTM_NEWLINK message body (ifinfomsg + attributes) into a Link, as `ip -d -j link show` shows it. */
export function decodeLink(body: Buffer): Link {
  const a = parseAttrs(body, 16);
  const link: Link = {
    ifindex: body.readInt32LE(4),
    name: getStr(a.get(IFLA.IFNAME)) ?? '',
    mac: macText(a.get(IFLA.ADDRESS)) ?? '',
    mtu: getU32(a.get(IFLA.MTU)) ?? 0,
    up: (body.readUInt32LE(8) & IFF_UP) !== 0,
    operstate: OPERSTATES[getU8(a.get(IFLA.OPERSTATE)) ?? 0] ?? 'UNKNOWN',
  };
  const info = a.get(IFLA.LINKINFO);
  const kind = info ? getStr(parseAttrs(info).get(IFLA_INFO_KIND)) : undefined;
  if (kind) link.kind = kind;
  const alias = getStr(a.get(IFLA.IFALIAS));
  if (alias) {
    link.alias = alias;
    const owner = ownerOfAlias(alias);
    if (owner !== undefined) link.owner = owner;
  }
  // For a veth, IFLA_LINK is the peer's ifindex — it may equal our own (ifindexes are per namespace).
  const peer = getU32(a.get(IFLA.LINK));
  if (peer !== undefined && peer !== 0 && kind === 'veth') link.peerIfindex = peer;
  const netnsId = getS32(a.get(IFLA.LINK_NETNSID));
  if (netnsId !== undefined && netnsId >= 0) link.linkNetnsId = netnsId;
  return link;
}

/** The request body of a link dump; statistics are skipped (they are most of each message and we never read them). */
export const LINK_DUMP_BODY = payload(ifinfomsg(), [attr(IFLA.EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]);

/** ifindex → name from a link dump's bodies (other dumps name devices by ifindex only). */
export function linkNames(linkBodies: readonly Buffer[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const b of linkBodies) {
    const name = getStr(parseAttrs(b, 16).get(IFLA.IFNAME));
    if (name !== undefined) out.set(b.readInt32LE(4), name);
  }
  return out;
}

/** Twin: `ip -n NS -d -j link show` (one in-process dump). */
export async function listLinks(ns: NetnsRef): Promise<Link[]> {
  return netlinkRead(ns, ['link', 'show'], async () => (await rtnlDump(ns, RTM.GETLINK, LINK_DUMP_BODY, RTM.NEWLINK)).map(decodeLink));
}

/** Twin: `ip -n NS -d -j link show dev NAME`; undefined when there is no such link (or no such namespace). */
export async function getLink(ns: NetnsRef, name: string): Promise<Link | undefined> {
  checkIfname('name', name);
  try {
    const body = await netlinkRead(ns, ['link', 'show', 'dev', name], () =>
      rtnlGet(ns, RTM.GETLINK, linkByNameBody(name)),
    );
    return body ? decodeLink(body) : undefined;
  } catch (e) {
    if (e instanceof KernelError && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/** What `ip link set` changes on an existing link; fields left out are left as they are. */
export interface LinkSettings {
  name: string;
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Use `ownerAlias(owner)` to mark the link as ours. */
  alias?: string;
}

/** Twin: `ip link set dev NAME [address MAC] [mtu N] [alias A] [up|down]` (idempotent). */
export function linkSetOp(s: LinkSettings): IpOp {
  const args = ['link', 'set', 'dev', checkIfname('name', s.name)];
  if (s.mac !== undefined) args.push('address', checkMac('mac', s.mac));
  if (s.mtu !== undefined) args.push('mtu', String(checkInt('mtu', s.mtu, 68, 65535)));
  if (s.alias !== undefined) args.push('alias', checkToken('alias', s.alias, 128));
  if (s.up !== undefined) args.push(s.up ? 'up' : 'down');
  if (args.length === 4) throw new KernelInputError('link settings', `nothing to set on ${s.name}`);
  const attrs = [attr(IFLA.IFNAME, str(s.name))];
  if (s.mac !== undefined) attrs.push(attr(IFLA.ADDRESS, macBytes(s.mac.toLowerCase())));
  if (s.mtu !== undefined) attrs.push(attr(IFLA.MTU, u32(s.mtu)));
  if (s.alias !== undefined) attrs.push(attr(IFLA.IFALIAS, str(s.alias)));
  const head = ifinfomsg(s.up === undefined ? {} : { flags: s.up ? IFF_UP : 0, change: IFF_UP });
  const body = payload(head, attrs);
  return { args, nl: { type: RTM.SETLINK, flags: 0, build: () => body } };
}

/** Twin: `ip -n NS link set dev NAME …`. */
export async function setLink(ns: NetnsRef, s: LinkSettings): Promise<void> {
  await runIpOps(ns, [linkSetOp(s)]);
}

/** Twin: `ip link delete dev NAME`, succeeding when it is absent. Deleting one end of a veth deletes both. */
export function linkDeleteOp(name: string): IpOp {
  const body = payload(ifinfomsg(), [attr(IFLA.IFNAME, str(checkIfname('name', name)))]);
  return { args: ['link', 'delete', 'dev', name], tolerate: ['ENOENT'], nl: { type: RTM.DELLINK, flags: 0, changesLinks: true, build: () => body } };
}

/** Twin: `ip -n NS link delete dev NAME` (delete-if-present). */
export async function deleteLinkIfPresent(ns: NetnsRef, name: string): Promise<void> {
  await runIpOps(ns, [linkDeleteOp(name)]);
}

/** A veth pair: `name` in namespace `ns` (the host side), `peerName` in `peerNs` (the customer side). */
export interface VethSpec {
  ns: NetnsRef;
  name: string;
  mac: string;
  peerNs: string;
  peerName: string;
  peerMac: string;
  /** Both ends (default 1500). */
  mtu?: number;
  /** Alias for both ends; use `ownerAlias(owner)`. */
  alias?: string;
  /** Bring both ends up (default true). */
  up?: boolean;
}

/**
 * The ops that make a veth pair as specified, split by namespace (run `host` in spec.ns BEFORE `peer` in
 * spec.peerNs: the peer end only exists once the host batch created it). Fold them into larger batches for the
 * same namespaces.
 *
 * Twin: `ip -n NS link add NAME address MAC mtu M up type veth peer name PEER address PMAC mtu M netns PEERNS`
 * (tolerating "exists"), then `ip link set … alias A up` on each end: the kernel ignores an alias given at
 * creation. In-process, the peer is created directly in PEERNS (IFLA_NET_NS_FD inside VETH_INFO_PEER).
 */
export function vethOps(spec: VethSpec): { host: IpOp[]; peer: IpOp[] } {
  const name = checkIfname('name', spec.name);
  const peerName = checkIfname('peerName', spec.peerName);
  const peerNs = checkNetnsName('peerNs', spec.peerNs);
  if (spec.ns === peerNs) throw new KernelInputError('peerNs', 'must differ from ns (both ends would share one namespace)');
  const mac = checkMac('mac', spec.mac);
  const peerMac = checkMac('peerMac', spec.peerMac);
  const mtu = String(checkInt('mtu', spec.mtu ?? 1500, 68, 65535));
  const up = spec.up ?? true;
  const add: IpOp = {
    args: ['link', 'add', name, 'address', mac, 'mtu', mtu, ...(up ? ['up'] : []), 'type', 'veth',
      'peer', 'name', peerName, 'address', peerMac, 'mtu', mtu, 'netns', peerNs],
    tolerate: ['EEXIST'],
    nl: {
      type: RTM.NEWLINK,
      flags: NLM_F.CREATE | NLM_F.EXCL,
      netnsFds: [peerNs],
      changesLinks: true,
      build: (ctx) => {
        const upFlags = up ? { flags: IFF_UP, change: IFF_UP } : {};
        // The peer cannot be set up here: it is configured before the pair is linked (veth_open: ENOTCONN). The
        // peer's set op brings it up.
        const peer = payload(ifinfomsg(), [
          attr(IFLA.IFNAME, str(peerName)),
          attr(IFLA.ADDRESS, macBytes(peerMac)),
          attr(IFLA.MTU, u32(Number(mtu))),
          attr(IFLA.NET_NS_FD, s32(ctx.netnsFd(peerNs))),
        ]);
        const linkinfo = nested(IFLA.LINKINFO, [attr(IFLA_INFO_KIND, str('veth')), nested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])]);
        return payload(ifinfomsg(upFlags), [attr(IFLA.IFNAME, str(name)), attr(IFLA.ADDRESS, macBytes(mac)), attr(IFLA.MTU, u32(Number(mtu))), linkinfo]);
      },
    },
  };
  // The set ops converge an existing pair (after a tolerated EEXIST) to the spec.
  const set = (n: string, m: string) => linkSetOp({ name: n, mac: m, mtu: Number(mtu), up, ...(spec.alias !== undefined ? { alias: spec.alias } : {}) });
  return { host: [add, set(name, mac)], peer: [set(peerName, peerMac)] };
}

/**
 * Creates the veth pair, or converges an existing one (MAC, MTU, alias, up). Throws (code EEXIST) when a link of
 * that name exists but is not a veth whose peer is `peerName` in `peerNs`. In-process: 3 requests when created, more when it existed (the pair is checked).
 */
export async function ensureVeth(spec: VethSpec): Promise<'created' | 'existing'> {
  const { host, peer } = vethOps(spec);
  const [added] = await runIpOps(spec.ns, host);
  if (added === 'unchanged') await checkVethPair(spec);
  await runIpOps(spec.peerNs, peer);
  return added === 'done' ? 'created' : 'existing';
}

async function checkVethPair(spec: VethSpec): Promise<void> {
  const [a, b] = await Promise.all([getLink(spec.ns, spec.name), getLink(spec.peerNs, spec.peerName)]);
  const ok = a?.kind === 'veth' && b?.kind === 'veth' && a.peerIfindex === b.ifindex && b.peerIfindex === a.ifindex;
  if (!ok)
    throw new KernelError({
      argv: ['ip', 'link', 'add', spec.name, 'type', 'veth', 'peer', 'name', spec.peerName],
      exitCode: 2,
      stderr: '',
      code: 'EEXIST',
      kernelMessage: `${spec.name} exists but is not a veth paired with ${spec.peerName} in netns ${spec.peerNs}`,
    });
}

// --- offload features (ethtool) ----------------------------------------------------------------------------------

/**
 * Our feature names (the short names `ethtool -K` accepts) → the kernel features (netdev_features_strings) each
 * stands for, as ethtool(8) groups them (its off_flag_def patterns, one '*' at most): a flag is on when ANY of its
 * features is active. A name without '*' is ONE bit: set in-process through the ethtool netlink family; `tso` and
 * `tx` stand for several bits and are set by spawning ethtool.
 */
export const LINK_FEATURES = {
  gro: 'rx-gro',
  gso: 'tx-generic-segmentation',
  tso: 'tx-tcp*-segmentation',
  rx: 'rx-checksum',
  tx: 'tx-checksum-*',
  'rx-gro-list': 'rx-gro-list',
  'rx-udp-gro-forwarding': 'rx-udp-gro-forwarding',
} as const;
export type LinkFeature = keyof typeof LINK_FEATURES;

/** The kernel's name of a feature that is one bit, undefined for tso/tx (several bits). */
const singleBit = (f: LinkFeature): string | undefined => (LINK_FEATURES[f].includes('*') ? undefined : LINK_FEATURES[f]);
const ETHTOOL_MSG_FEATURES_SET = 12;
const ETHTOOL = { FEATURES_HEADER: 1, FEATURES_WANTED: 3, HEADER_DEV_NAME: 2, BITSET_BITS: 3, BITS_BIT: 1, BIT_NAME: 2, BIT_VALUE: 3 } as const;

/**
 * Twin: `ip netns exec NS ethtool -K DEV gro on …`. Idempotent. Single-bit features go in-process (ETHTOOL_MSG_
 * FEATURES_SET with a verbose bitset naming only those bits, so no other feature changes); tso/tx spawn ethtool.
 * DESIGN.md §2: the customer end of the veth needs GRO on, or XDP-redirected frames vanish.
 */
export async function setLinkFeatures(ns: NetnsRef, dev: string, features: Partial<Record<LinkFeature, boolean>>): Promise<void> {
  checkIfname('dev', dev);
  const args: string[] = [];
  for (const [k, v] of Object.entries(features)) {
    if (!(k in LINK_FEATURES)) throw new KernelInputError(`features.${k}`, `unknown; known: ${Object.keys(LINK_FEATURES).join(', ')}`);
    if (typeof v !== 'boolean') throw new KernelInputError(`features.${k}`, 'must be a boolean');
    args.push(k, v ? 'on' : 'off');
  }
  if (args.length === 0) return;
  const entries = Object.entries(features) as [LinkFeature, boolean][];
  if (!entries.every(([k]) => singleBit(k))) {
    await run(inNetns(ns, ['ethtool', '-K', dev, ...args]));
    return;
  }
  const bits = entries.map(([k, on]) =>
    nested(ETHTOOL.BITS_BIT, [attr(ETHTOOL.BIT_NAME, str(singleBit(k)!)), ...(on ? [attr(ETHTOOL.BIT_VALUE, Buffer.alloc(0))] : [])], true),
  );
  await asTwinError(inNetns(ns, ['ethtool', '-K', dev, ...args]), () =>
    genlRequest(ns, 'ethtool', ETHTOOL_MSG_FEATURES_SET, 1, [
      nested(ETHTOOL.FEATURES_HEADER, [attr(ETHTOOL.HEADER_DEV_NAME, str(dev))], true),
      nested(ETHTOOL.FEATURES_WANTED, [nested(ETHTOOL.BITSET_BITS, bits, true)], true),
    ]),
  );
}

function featurePatternMatch(name: string, pattern: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return name === pattern;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return name.length >= head.length + tail.length && name.startsWith(head) && name.endsWith(tail);
}

const ETHTOOL_MSG_STRSET_GET = 1;
const ETHTOOL_MSG_FEATURES_GET = 11;
const ETH_SS_FEATURES = 4;
const ETHTOOL_FLAG_COMPACT_BITSETS = 1;
const STRSET = { HEADER: 1, STRINGSETS: 2, STRINGSETS_STRINGSET: 1, STRINGSET_ID: 1, STRINGSET_STRINGS: 3, STRINGS_STRING: 1, STRING_INDEX: 1, STRING_VALUE: 2 } as const;
const FEATURES_ACTIVE = 4;
const HEADER_FLAGS = 3;
const BITSET = { SIZE: 2, VALUE: 4 } as const;

/**
 * The kernel's feature names by bit index (string set ETH_SS_FEATURES): the same for every device and namespace of
 * this kernel, so read once per process.
 */
let featureNames: Promise<string[]> | undefined;

function readFeatureNames(ns: NetnsRef): Promise<string[]> {
  featureNames ??= (async () => {
    // No device: the global set. The kernel refuses the request without a header, even an empty one.
    const reply = await genlGet(ns, 'ethtool', ETHTOOL_MSG_STRSET_GET, 1, [
      nested(STRSET.HEADER, [], true),
      nested(STRSET.STRINGSETS, [nested(STRSET.STRINGSETS_STRINGSET, [attr(STRSET.STRINGSET_ID, u32(ETH_SS_FEATURES))], true)], true),
    ]);
    const names: string[] = [];
    for (const set of attrList(parseAttrs(reply).get(STRSET.STRINGSETS) ?? Buffer.alloc(0))) {
      const a = parseAttrs(set[1]);
      if (getU32(a.get(STRSET.STRINGSET_ID)) !== ETH_SS_FEATURES) continue;
      for (const [type, s] of attrList(a.get(STRSET.STRINGSET_STRINGS) ?? Buffer.alloc(0))) {
        if (type !== STRSET.STRINGS_STRING) continue;
        const sa = parseAttrs(s);
        const index = getU32(sa.get(STRSET.STRING_INDEX));
        if (index !== undefined) names[index] = getStr(sa.get(STRSET.STRING_VALUE)) ?? '';
      }
    }
    if (!names.includes('rx-gro')) throw new NetlinkRequestError(61, 'ethtool string set "features" lacks rx-gro');
    return names;
  })();
  featureNames.catch(() => (featureNames = undefined));
  return featureNames;
}

/**
 * The names of the features active on DEV (kernel names: rx-gro, tx-tcp-segmentation…), in-process: one ethtool
 * netlink request (ETHTOOL_MSG_FEATURES_GET, compact bitsets) once the kernel's feature names are known (one
 * string-set request per process). Twin: the lines `ip netns exec NS ethtool -k DEV` shows as "on".
 */
export async function readActiveFeatures(ns: NetnsRef, dev: string): Promise<Set<string>> {
  checkIfname('dev', dev);
  return asTwinError(inNetns(ns, ['ethtool', '-k', dev]), async () => {
    const names = await readFeatureNames(ns);
    const reply = await genlGet(ns, 'ethtool', ETHTOOL_MSG_FEATURES_GET, 1, [
      nested(ETHTOOL.FEATURES_HEADER, [attr(ETHTOOL.HEADER_DEV_NAME, str(dev)), attr(HEADER_FLAGS, u32(ETHTOOL_FLAG_COMPACT_BITSETS))], true),
    ]);
    const active = parseAttrs(parseAttrs(reply).get(FEATURES_ACTIVE) ?? Buffer.alloc(0));
    const size = getU32(active.get(BITSET.SIZE));
    const words = active.get(BITSET.VALUE);
    if (size === undefined || !words) throw new NetlinkRequestError(61, `ethtool features of ${dev}: no active bitset in the reply`);
    const out = new Set<string>();
    for (let i = 0; i < size && i < words.length * 8; i++) {
      if ((words.readUInt32LE((i >> 5) * 4) >>> (i & 31)) & 1 && names[i]) out.add(names[i]!);
    }
    return out;
  });
}

/**
 * Twin: `ip netns exec NS ethtool --json -k DEV`: the active state of the features we know, in-process (one
 * request, see readActiveFeatures). tso and tx are on when any of their kernel features is, as ethtool shows them.
 */
export async function readLinkFeatures(ns: NetnsRef, dev: string): Promise<Record<LinkFeature, boolean>> {
  const active = [...(await readActiveFeatures(ns, dev))];
  const out = {} as Record<LinkFeature, boolean>;
  for (const [short, pattern] of Object.entries(LINK_FEATURES) as [LinkFeature, string][]) out[short] = active.some((n) => featurePatternMatch(n, pattern));
  return out;
}
