/**
 * Small, pure IPv4/IPv6 address and CIDR helpers, shared by the model (validation), the API and the agent.
 *
 * Addresses are held as bigints so both families use the same arithmetic (contains, overlaps, n-th address).
 * Parsing is strict on purpose: no IPv4 leading zeros (010.0.0.1 is octal to some tools and decimal to others),
 * no IPv6 zone ids, no prefix-length leading zeros. Formatting is canonical (IPv6 per RFC 5952), so a normalised
 * string can be compared with === and used as a key.
 */
import { isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A network: `network` has every host bit zero. */
export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly length: number;
}

/** Thrown by the parse functions; the message is the reason, fit to follow a field name. */
export class IpFormatError extends Error {
  override name = 'IpFormatError';
}

export function bitsOf(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

function maskOf(family: IpFamily, length: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all >> BigInt(length)) ^ all;
}

// --- parsing ---------------------------------------------------------------------------------------------------

const V4_RE = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function parseV4(text: string): bigint | undefined {
  const m = V4_RE.exec(text);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    v = (v << 8n) | BigInt(octet);
  }
  return v;
}

function parseV6(text: string): bigint | undefined {
  if (text.includes('%') || !isIPv6(text)) return undefined;
  let s = text.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    // Embedded IPv4 (e.g. ::ffff:192.0.2.1): rewrite as two hex groups.
    const v4 = parseV4(tail);
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  let groups: string[];
  if (halves.length === 2) {
    const rest = halves[1] ? halves[1].split(':') : [];
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<string>(missing).fill('0'), ...rest];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

/** Parses an IPv4 or IPv6 address; undefined if it is not one. */
export function tryParseIp(text: string): IpAddress | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const v = parseV6(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(text);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** Parses an IPv4 or IPv6 address; throws IpFormatError. */
export function parseIp(text: string): IpAddress {
  const a = tryParseIp(text);
  if (!a) throw new IpFormatError(`"${text}" is not an IPv4 or IPv6 address`);
  return a;
}

/** Parses an IPv4 address only; throws IpFormatError. */
export function parseIpv4(text: string): IpAddress {
  const a = tryParseIp(text);
  if (!a || a.family !== 4) throw new IpFormatError(`"${text}" is not an IPv4 address (dotted quad, no leading zeros)`);
  return a;
}

/**
 * Parses "address/length" keeping the address as written (host bits allowed): for interface addresses such as
 * 10.200.0.1/30, where the address itself matters.
 */
export function parseAddressWithLength(text: string): { address: IpAddress; length: number } {
  if (typeof text !== 'string') throw new IpFormatError('must be a string in CIDR notation');
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw new IpFormatError(
      tryParseIp(text) ? `"${text}" is missing a prefix length (e.g. /24)` : `"${text}" is not in CIDR notation (address/length)`,
    );
  }
  const address = tryParseIp(text.slice(0, slash));
  if (!address) throw new IpFormatError(`"${text}" is not in CIDR notation (address/length)`);
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(lenText)) throw new IpFormatError(`"${text}" has a bad prefix length`);
  const length = Number(lenText);
  if (length > bitsOf(address.family)) {
    throw new IpFormatError(`"${text}": prefix length must be at most ${bitsOf(address.family)} for IPv${address.family}`);
  }
  return { address, length };
}

/** Parses a network in CIDR notation; host bits must be zero (the message suggests the right network). */
export function parseCidr(text: string): Cidr {
  const { address, length } = parseAddressWithLength(text);
  const network = address.value & maskOf(address.family, length);
  if (network !== address.value) {
    const suggestion = formatCidr({ family: address.family, network, length });
    throw new IpFormatError(`"${text}" has host bits set (did you mean ${suggestion}?)`);
  }
  return { family: address.family, network, length };
}

export function tryParseCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

// --- formatting ------------------------------------------------------------------------------------------------

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 0xffn).toString()).join('.');
}

function formatV6(v: bigint): string {
  // IPv4-mapped addresses read best in mixed notation (RFC 5952 §5).
  if (v >> 32n === 0xffffn) return `::ffff:${formatV4(v & 0xffffffffn)}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (at least two), the first one on a tie, becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIp(a: IpAddress): string {
  return a.family === 4 ? formatV4(a.value) : formatV6(a.value);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.length}`;
}

/** The canonical text of an address ("2001:DB8:0::1" → "2001:db8::1"); throws IpFormatError. */
export function normaliseIp(text: string): string {
  return formatIp(parseIp(text));
}

/** The canonical text of a network; throws IpFormatError (also when host bits are set). */
export function normaliseCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

// --- arithmetic ------------------------------------------------------------------------------------------------

export function cidrOf(address: IpAddress, length: number): Cidr {
  return { family: address.family, network: address.value & maskOf(address.family, length), length };
}

/** The address at `offset` from the network address (0 = the network address itself). */
export function addressAt(c: Cidr, offset: bigint | number): IpAddress {
  return { family: c.family, value: c.network + BigInt(offset) };
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.length);
}

export function lastAddress(c: Cidr): IpAddress {
  return { family: c.family, value: c.network + cidrSize(c) - 1n };
}

/** True when `inner` lies inside `outer` (or equals it). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.length <= inner.length &&
    (inner.network & maskOf(outer.family, outer.length)) === outer.network
  );
}

export function cidrContainsIp(c: Cidr, a: IpAddress): boolean {
  return c.family === a.family && (a.value & maskOf(c.family, c.length)) === c.network;
}

/** Two networks overlap exactly when one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network === b.network && a.length === b.length;
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Orders IPv4 before IPv6, then by network, then shorter prefixes first. */
export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.length - b.length;
}

/** String conveniences for callers holding normalised text (throw IpFormatError on bad input). */
export function cidrTextContains(outer: string, inner: string): boolean {
  return cidrContains(parseCidr(outer), parseCidr(inner));
}
export function cidrTextsOverlap(a: string, b: string): boolean {
  return cidrsOverlap(parseCidr(a), parseCidr(b));
}
export function cidrTextContainsIp(cidr: string, ip: string): boolean {
  return cidrContainsIp(parseCidr(cidr), parseIp(ip));
}

// --- special-purpose ranges (IANA registries, RFC 6890 and successors) -----------------------------------------

export type SpecialRangeKind =
  | 'unspecified'
  | 'this-network'
  | 'private'
  | 'shared'
  | 'loopback'
  | 'link-local'
  | 'ietf-protocol'
  | 'documentation'
  | 'benchmarking'
  | 'deprecated'
  | 'multicast'
  | 'reserved'
  | 'broadcast'
  | 'ipv4-mapped'
  | 'translation'
  | 'discard'
  | 'unique-local';

export interface SpecialRange {
  readonly cidr: Cidr;
  readonly text: string;
  readonly kind: SpecialRangeKind;
  readonly name: string;
}

function range(text: string, kind: SpecialRangeKind, name: string): SpecialRange {
  return { cidr: parseCidr(text), text, kind, name };
}

export const SPECIAL_RANGES: readonly SpecialRange[] = [
  range('0.0.0.0/8', 'this-network', '"this network" (RFC 791)'),
  range('10.0.0.0/8', 'private', 'private-use (RFC 1918)'),
  range('100.64.0.0/10', 'shared', 'shared address space / CGN (RFC 6598)'),
  range('127.0.0.0/8', 'loopback', 'loopback (RFC 1122)'),
  range('169.254.0.0/16', 'link-local', 'link-local (RFC 3927)'),
  range('172.16.0.0/12', 'private', 'private-use (RFC 1918)'),
  range('192.0.0.0/24', 'ietf-protocol', 'IETF protocol assignments (RFC 6890)'),
  range('192.0.2.0/24', 'documentation', 'documentation TEST-NET-1 (RFC 5737)'),
  range('192.88.99.0/24', 'deprecated', 'deprecated 6to4 relay anycast (RFC 7526)'),
  range('192.168.0.0/16', 'private', 'private-use (RFC 1918)'),
  range('198.18.0.0/15', 'benchmarking', 'benchmarking (RFC 2544)'),
  range('198.51.100.0/24', 'documentation', 'documentation TEST-NET-2 (RFC 5737)'),
  range('203.0.113.0/24', 'documentation', 'documentation TEST-NET-3 (RFC 5737)'),
  range('224.0.0.0/4', 'multicast', 'multicast (RFC 5771)'),
  range('240.0.0.0/4', 'reserved', 'reserved (RFC 1112)'),
  range('255.255.255.255/32', 'broadcast', 'limited broadcast (RFC 919)'),
  range('::/128', 'unspecified', 'unspecified address (RFC 4291)'),
  range('::1/128', 'loopback', 'loopback (RFC 4291)'),
  range('::ffff:0.0.0.0/96', 'ipv4-mapped', 'IPv4-mapped (RFC 4291)'),
  range('64:ff9b::/96', 'translation', 'IPv4/IPv6 translation (RFC 6052)'),
  range('64:ff9b:1::/48', 'translation', 'local-use IPv4/IPv6 translation (RFC 8215)'),
  range('100::/64', 'discard', 'discard-only (RFC 6666)'),
  range('2001::/23', 'ietf-protocol', 'IETF protocol assignments (RFC 2928)'),
  range('2001:db8::/32', 'documentation', 'documentation (RFC 3849)'),
  range('2002::/16', 'deprecated', '6to4 (RFC 3056)'),
  range('3fff::/20', 'documentation', 'documentation (RFC 9637)'),
  range('fc00::/7', 'unique-local', 'unique local (RFC 4193)'),
  range('fe80::/10', 'link-local', 'link-local unicast (RFC 4291)'),
  range('ff00::/8', 'multicast', 'multicast (RFC 4291)'),
];

const V6_GLOBAL_UNICAST = parseCidr('2000::/3');

/** The most specific special-purpose range holding `a`, if any. */
export function specialRangeOf(a: IpAddress): SpecialRange | undefined {
  let best: SpecialRange | undefined;
  for (const r of SPECIAL_RANGES) {
    if (cidrContainsIp(r.cidr, a) && (!best || r.cidr.length > best.cidr.length)) best = r;
  }
  return best;
}

export interface PublicUnicastOptions {
  /**
   * Treat documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20) as
   * public: the lab plays "the internet" with them.
   */
  allowDocumentation?: boolean;
  /**
   * Treat the benchmarking range 198.18.0.0/15 (RFC 2544) as public too: like documentation, it is never routed on
   * the internet and exists for test set-ups — benchmarks need more distinct "public" addresses than the
   * documentation ranges hold (a thousand customer routers).
   */
  allowBenchmarking?: boolean;
}

/** Why `a` is not a public unicast address, or undefined when it is one. */
export function whyNotPublicUnicast(a: IpAddress, options: PublicUnicastOptions = {}): string | undefined {
  const r = specialRangeOf(a);
  if (r) {
    if (r.kind === 'documentation' && options.allowDocumentation) return undefined;
    if (r.kind === 'benchmarking' && options.allowBenchmarking) return undefined;
    return `${formatIp(a)} is not a public unicast address: it is in ${r.text}, ${r.name}`;
  }
  if (a.family === 6 && !cidrContainsIp(V6_GLOBAL_UNICAST, a)) {
    return `${formatIp(a)} is not a public unicast address: it is outside the global unicast range 2000::/3`;
  }
  return undefined;
}

export function isPublicUnicast(a: IpAddress, options: PublicUnicastOptions = {}): boolean {
  return whyNotPublicUnicast(a, options) === undefined;
}

/**
 * Ranges that are never a unicast destination on a network: no customer prefix may touch them, and no BGP
 * neighbour can be in them.
 */
export const UNROUTABLE_KINDS: ReadonlySet<SpecialRangeKind> = new Set<SpecialRangeKind>([
  'unspecified',
  'this-network',
  'loopback',
  'link-local',
  'multicast',
  'reserved',
  'broadcast',
  'ipv4-mapped',
]);

/** The first unroutable special range (loopback, multicast, link-local…) that overlaps `c`, if any. */
export function unroutableRangeOverlapping(c: Cidr): SpecialRange | undefined {
  return SPECIAL_RANGES.find((r) => UNROUTABLE_KINDS.has(r.kind) && cidrsOverlap(r.cidr, c));
}

const RFC1918 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map(parseCidr);

/** True when the whole network lies in RFC 1918 private space. */
export function isRfc1918(c: Cidr): boolean {
  return RFC1918.some((r) => cidrContains(r, c));
}
