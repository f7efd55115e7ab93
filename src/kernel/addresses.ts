/**
 * Interface addresses. iproute2 6.1 cannot tag an address with a protocol, so ownership follows the device:
 * an address on a link we own (see links.ts ownerOfAlias) is ours. On a device we do not own (lo), an IPv4
 * address can carry a label (`lo:ot`) that marks it as ours.
 */
import { netlinkRead, runIpOps, type IpOp } from './ip.js';
import { LINK_DUMP_BODY, linkNames } from './links.js';
import type { NetnsRef } from './netns.js';
import { KernelInputError } from './exec.js';
import { AF_INET, AF_UNSPEC, attr, familyCode, getStr, getU8, ifaddrmsg, ipBytes, ipText, NLM_F, parseAttrs, payload, RTM, str, u32 } from './netlink/codec.js';
import { rtnlDump } from './netlink/socket.js';
import { checkCidr, checkIfname, type IpFamily } from './validate.js';

const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, FLAGS: 8 } as const;
const IFA_F_NODAD = 0x02;
const RT_SCOPE_HOST = 254;

export interface AddressSpec {
  dev: string;
  /** `addr/len`, e.g. 10.0.0.0/31 (host bits are the address itself). */
  cidr: string;
  /** IPv4 only: `<dev>:<tag>` (≤ 15 characters), e.g. `lo:ot`. Listed only when it differs from the device name. */
  label?: string;
  /**
   * IPv6: skip duplicate address detection (`nodad`). Even with accept_dad=0 a new address is tentative until the
   * kernel's addrconf work runs, and a route naming it as `src` fails with EINVAL meanwhile (seen on a loaded
   * machine); `nodad` makes it usable at once.
   */
  nodad?: boolean;
}

const LABEL_TAG_RE = /^[A-Za-z0-9_-]+$/;

function checkLabel(dev: string, label: string, family: IpFamily): string {
  const tag = label.startsWith(`${dev}:`) ? label.slice(dev.length + 1) : '';
  if (family !== 4) throw new KernelInputError('label', 'only IPv4 addresses carry a label');
  if (!LABEL_TAG_RE.test(tag) || label.length > 15)
    throw new KernelInputError('label', `must be "${dev}:" followed by [A-Za-z0-9_-], at most 15 characters in all, got ${JSON.stringify(label)}`);
  return label;
}

export interface Address extends AddressSpec {
  family: IpFamily;
  /** The address without its length. */
  local: string;
  prefixlen: number;
  /** Numeric scope (0 global, 253 link, 254 host), as `ip -N` prints it. */
  scope: number;
}

/** Twin: `ip address replace ADDR/LEN dev DEV [label LABEL]` (idempotent). */
export function addressReplaceOp(a: AddressSpec): IpOp {
  const { addr, len, family } = checkCidr('cidr', a.cidr);
  const dev = checkIfname('dev', a.dev);
  const label = a.label === undefined ? [] : ['label', checkLabel(dev, a.label, family)];
  // iproute2's default scope: host for 127/8, global otherwise.
  const scope = family === 4 && addr.startsWith('127.') ? RT_SCOPE_HOST : 0;
  if (a.nodad && family !== 6) throw new KernelInputError('nodad', 'only IPv6 addresses have duplicate address detection');
  const flags = a.nodad ? IFA_F_NODAD : 0;
  return {
    args: ['address', 'replace', `${addr}/${len}`, 'dev', dev, ...label, ...(a.nodad ? ['nodad'] : [])],
    nl: {
      type: RTM.NEWADDR,
      flags: NLM_F.CREATE | NLM_F.REPLACE,
      devs: [dev],
      build: (ctx) => payload(ifaddrmsg({ family: familyCode(family), prefixlen: len, flags, scope, index: ctx.ifindex(dev) }), [
        attr(IFA.LOCAL, ipBytes(addr)),
        attr(IFA.ADDRESS, ipBytes(addr)),
        ...(a.label !== undefined ? [attr(IFA.LABEL, str(a.label))] : []),
        ...(flags ? [attr(IFA.FLAGS, u32(flags))] : []),
      ]),
    },
  };
}

/** Twin: `ip address delete ADDR/LEN dev DEV`, succeeding when the address (or the device) is absent. */
export function addressDeleteOp(a: AddressSpec): IpOp {
  const { addr, len, family } = checkCidr('cidr', a.cidr);
  const dev = checkIfname('dev', a.dev);
  return {
    args: ['address', 'delete', `${addr}/${len}`, 'dev', dev],
    tolerate: ['ENOENT'],
    nl: {
      type: RTM.DELADDR,
      flags: 0,
      devs: [dev],
      build: (ctx) => payload(ifaddrmsg({ family: familyCode(family), prefixlen: len, index: ctx.ifindex(dev) }), [attr(IFA.LOCAL, ipBytes(addr)), attr(IFA.ADDRESS, ipBytes(addr))]),
    },
  };
}

/** Twin: `ip -n NS address replace …` for each (in-process requests, in order). */
export async function replaceAddresses(ns: NetnsRef, addrs: readonly AddressSpec[]): Promise<void> {
  await runIpOps(ns, addrs.map(addressReplaceOp));
}

/** Twin: `ip -n NS address delete …` for each (delete-if-present). */
export async function deleteAddressesIfPresent(ns: NetnsRef, addrs: readonly AddressSpec[]): Promise<void> {
  await runIpOps(ns, addrs.map(addressDeleteOp));
}

/**
 * Decodes RTM_NEWADDR message bodies (ifaddrmsg + attributes), one entry per address as `ip -j address show`
 * flattened; `names` maps ifindex → device name (from a link dump of the same namespace).
 */
export function decodeAddresses(bodies: readonly Buffer[], names: ReadonlyMap<number, string>): Address[] {
  const out: Address[] = [];
  for (const body of bodies) {
    const fam = getU8(body);
    if (fam !== 2 && fam !== 10) continue;
    const a = parseAttrs(body, 8);
    // IFA_LOCAL is the address itself (IFA_ADDRESS is the peer on point-to-point links); IPv6 has only IFA_ADDRESS.
    const local = ipText(a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS));
    if (local === undefined) continue;
    const dev = names.get(body.readUInt32LE(4)) ?? `if${body.readUInt32LE(4)}`;
    const prefixlen = body.readUInt8(1);
    const label = getStr(a.get(IFA.LABEL));
    out.push({
      dev,
      cidr: `${local}/${prefixlen}`,
      family: fam === AF_INET ? 4 : 6,
      local,
      prefixlen,
      scope: body.readUInt8(3),
      ...(label !== undefined && label !== dev ? { label } : {}),
    });
  }
  return out;
}

/** The request body of an address dump (both families). */
export const ADDRESS_DUMP_BODY = ifaddrmsg({ family: AF_UNSPEC });

/** Twin: `ip -n NS -j address show`, flattened to one entry per address; optionally only those on `dev`. */
export async function listAddresses(ns: NetnsRef, filter: { dev?: string; family?: IpFamily } = {}): Promise<Address[]> {
  if (filter.dev !== undefined) checkIfname('dev', filter.dev);
  const all = await netlinkRead(ns, ['address', 'show'], async () => {
    const [links, addrs] = [await rtnlDump(ns, RTM.GETLINK, LINK_DUMP_BODY, RTM.NEWLINK), await rtnlDump(ns, RTM.GETADDR, ADDRESS_DUMP_BODY, RTM.NEWADDR)];
    return decodeAddresses(addrs, linkNames(links));
  });
  return all.filter((a) => (filter.dev === undefined || a.dev === filter.dev) && (filter.family === undefined || a.family === filter.family));
}
