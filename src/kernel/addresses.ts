/**
 * Interface addresses. iproute2 6.1 cannot tag an address with a protocol, so ownership follows the device:
 * an address on a link we own (see links.ts ownerOfAlias) is ours. On a device we do not own (lo), an IPv4
 * address can carry a label (`lo:ot`) that marks it as ours.
 */
import { ipJson, runIpOps, type IpOp } from './ip.js';
import type { NetnsRef } from './netns.js';
import { KernelInputError } from './exec.js';
import { checkCidr, checkIfname, type IpFamily } from './validate.js';

export interface AddressSpec {
  dev: string;
  /** `addr/len`, e.g. 10.0.0.0/31 (host bits are the address itself). */
  cidr: string;
  /** IPv4 only: `<dev>:<tag>` (≤ 15 characters), e.g. `lo:ot`. Listed only when it differs from the device name. */
  label?: string;
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
  return { args: ['address', 'replace', `${addr}/${len}`, 'dev', dev, ...label] };
}

/** Twin: `ip address delete ADDR/LEN dev DEV`, succeeding when the address (or the device) is absent. */
export function addressDeleteOp(a: AddressSpec): IpOp {
  const { addr, len } = checkCidr('cidr', a.cidr);
  return { args: ['address', 'delete', `${addr}/${len}`, 'dev', checkIfname('dev', a.dev)], tolerate: ['ENOENT'] };
}

/** Twin: `ip -n NS address replace …` for each, in one spawn. */
export async function replaceAddresses(ns: NetnsRef, addrs: readonly AddressSpec[]): Promise<void> {
  await runIpOps(ns, addrs.map(addressReplaceOp));
}

/** Twin: `ip -n NS address delete …` for each, in one spawn (delete-if-present). */
export async function deleteAddressesIfPresent(ns: NetnsRef, addrs: readonly AddressSpec[]): Promise<void> {
  await runIpOps(ns, addrs.map(addressDeleteOp));
}

interface RawAddrLink {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number; scope: string | number; label?: string }[];
}

export function parseAddresses(raw: unknown): Address[] {
  const out: Address[] = [];
  for (const l of raw as RawAddrLink[]) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      out.push({
        dev: l.ifname,
        cidr: `${a.local}/${a.prefixlen}`,
        family: a.family === 'inet' ? 4 : 6,
        local: a.local,
        prefixlen: a.prefixlen,
        scope: scopeNumber(a.scope),
        ...(a.label !== undefined && a.label !== l.ifname ? { label: a.label } : {}),
      });
    }
  }
  return out;
}

function scopeNumber(s: string | number): number {
  if (typeof s === 'number') return s;
  return ({ global: 0, site: 200, link: 253, host: 254, nowhere: 255 } as Record<string, number>)[s] ?? Number(s);
}

/** Twin: `ip -n NS -j address show`, flattened to one entry per address; optionally only those on `dev`. */
export async function listAddresses(ns: NetnsRef, filter: { dev?: string; family?: IpFamily } = {}): Promise<Address[]> {
  if (filter.dev !== undefined) checkIfname('dev', filter.dev);
  const all = parseAddresses(await ipJson(ns, ['address', 'show']));
  return all.filter((a) => (filter.dev === undefined || a.dev === filter.dev) && (filter.family === undefined || a.family === filter.family));
}
