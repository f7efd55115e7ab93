/**
 * Input checks for everything that ends up in an argv or a batch line. The kernel layer re-checks even values the
 * model already validated: a batch line is tokenised by iproute2 (whitespace, quotes, '#'), so one stray character
 * would change the command. Each check throws KernelInputError naming the field and the reason.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { KernelInputError } from './exec.js';

/** Linux IFNAMSIZ-1. Also excludes '.', '/', ':' so names stay valid in sysctl paths and alias syntax. */
const IFNAME_RE = /^[A-Za-z0-9_-]{1,15}$/;
/** A netns name is a file name under /run/netns. */
const NETNS_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function checkIfname(field: string, v: unknown): string {
  if (typeof v !== 'string' || !IFNAME_RE.test(v))
    throw new KernelInputError(field, `must be 1–15 characters of [A-Za-z0-9_-], got ${JSON.stringify(v)}`);
  return v;
}

export function checkNetnsName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NETNS_RE.test(v))
    throw new KernelInputError(field, `must be 1–64 characters of [A-Za-z0-9_.-] not starting with '.' or '-', got ${JSON.stringify(v)}`);
  return v;
}

/** Lower-case colon form, unicast (the group bit set would make the kernel refuse it as a device address). */
export function checkMac(field: string, v: unknown): string {
  const s = typeof v === 'string' ? v.toLowerCase() : v;
  if (typeof s !== 'string' || !MAC_RE.test(s)) throw new KernelInputError(field, `must be a MAC like 02:00:5e:00:00:01, got ${JSON.stringify(v)}`);
  if (parseInt(s.slice(0, 2), 16) & 1) throw new KernelInputError(field, `must be a unicast MAC (first octet even), got ${s}`);
  return s;
}

export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new KernelInputError(field, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

export type IpFamily = 4 | 6;

/** An IPv4 or IPv6 address (no prefix length). */
export function checkIp(field: string, v: unknown): string {
  if (typeof v !== 'string' || !(isIPv4(v) || isIPv6(v))) throw new KernelInputError(field, `must be an IP address, got ${JSON.stringify(v)}`);
  return v;
}

export function familyOf(ip: string): IpFamily {
  return isIPv4(ip) ? 4 : 6;
}

/** `addr/len` with len in range for the family. Host bits may be set (interface addresses like 10.0.0.1/31). */
export function checkCidr(field: string, v: unknown): { addr: string; len: number; family: IpFamily } {
  if (typeof v !== 'string') throw new KernelInputError(field, `must be a CIDR like 203.0.113.0/24, got ${JSON.stringify(v)}`);
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const lenText = slash < 0 ? '' : v.slice(slash + 1);
  if (!(isIPv4(addr) || isIPv6(addr)) || !/^[0-9]{1,3}$/.test(lenText))
    throw new KernelInputError(field, `must be a CIDR like 203.0.113.0/24, got ${JSON.stringify(v)}`);
  const family = familyOf(addr);
  const len = Number(lenText);
  if (len > (family === 4 ? 32 : 128)) throw new KernelInputError(field, `prefix length ${len} is too long for IPv${family}`);
  return { addr, len, family };
}

/** Route destination: a CIDR whose host bits are zero (the kernel refuses others), or 'default'. */
export function checkRouteDst(field: string, v: unknown): string {
  if (v === 'default') return v;
  const { addr, len, family } = checkCidr(field, v);
  if (family === 4) {
    const n = ipv4ToInt(addr);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if ((n & ~mask) >>> 0 !== 0) throw new KernelInputError(field, `host bits set in ${addr}/${len}`);
  }
  return `${addr}/${len}`;
}

export function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

/**
 * A free-form value that must survive iproute2's batch tokenizer unchanged: no whitespace, quotes, backslashes,
 * '#', or control characters.
 */
export function checkToken(field: string, v: unknown, maxLen = 64): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLen || !/^[A-Za-z0-9_.:\/@+=,%-]+$/.test(v))
    throw new KernelInputError(field, `must be 1–${maxLen} characters of [A-Za-z0-9_.:/@+=,%-], got ${JSON.stringify(v)}`);
  return v;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
