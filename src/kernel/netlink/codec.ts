/**
 * rtnetlink wire format: fixed headers and TLV attributes (netlink(7), rtnetlink(7)). Pure code, no sockets, so
 * the encoders are unit-tested without root. Host byte order throughout (netlink is native-endian) except IP
 * addresses, which are network order as in the kernel's structs.
 *
 * We write our own small codec instead of the `netlink` package's generated structs: several attributes we need
 * (RTA_MULTIPATH, VETH_INFO_PEER, RTA_METRICS, NDA_PROTOCOL) are raw buffers there anyway, and the NLM_F_DUMP_INTR
 * flag of a dump must be seen on every message.
 */
import { isIPv4 } from 'node:net';
import { KernelInputError } from '../exec.js';
import { formatIp } from '../../model/ip.js';

/** Message types (linux/rtnetlink.h). */
export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
  NEWRULE: 32, DELRULE: 33, GETRULE: 34,
  GETNETCONF: 82,
} as const;

/** Netlink protocol families (linux/netlink.h): the socket kinds we open. */
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
export const NETLINK_GENERIC = 16;
/** nfnetlink subsystem of nftables: its message types are (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_* (linux/netfilter/nfnetlink.h). */
export const NFNL_SUBSYS_NFTABLES = 10;

/** nlmsghdr flags (linux/netlink.h). */
export const NLM_F = {
  REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP_INTR: 0x10,
  DUMP: 0x300, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400,
} as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const familyCode = (f: 4 | 6): number => (f === 4 ? AF_INET : AF_INET6);

// --- encoding --------------------------------------------------------------------------------------------------

const align4 = (n: number) => (n + 3) & ~3;

/** One attribute: 4-byte header (len, type) + payload, padded to 4 bytes. */
export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

/**
 * A nested attribute. rtnetlink's legacy parsers do not need NLA_F_NESTED (iproute2 mostly omits it); strictly
 * validated generic netlink families (ethtool) refuse a nest without it: pass `flagged`.
 */
export const nested = (type: number, children: readonly Buffer[], flagged = false): Buffer => attr(flagged ? type | NLA_F_NESTED : type, Buffer.concat(children));
export const NLA_F_NESTED = 0x8000;

export function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}
export function s32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
}
/** NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND, FRA_IIFNAME…). */
export function str(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** An IPv4 or IPv6 address in network order (4 or 16 bytes). Input is already validated (checkIp). */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two 16-bit words.
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const o = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  const words = (s: string | undefined) => (s ? s.split(':') : []);
  const head = words(halves[0]);
  const tail = words(halves[1]);
  const all = halves.length === 2 ? [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  if (all.length !== 8) throw new KernelInputError('address', `not an IPv6 address: ${ip}`);
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), i * 2));
  return b;
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
}

/** A request payload: the fixed header struct followed by attributes. */
export function payload(header: Buffer, attrs: readonly Buffer[]): Buffer {
  return Buffer.concat([header, ...attrs]);
}

/** IFLA_IFNAME: a link named in a request (RTM_GETLINK/SETLINK by name, ifindex 0). */
export const IFLA_IFNAME = 3;
const IFLA_EXT_MASK = 29;
const RTEXT_FILTER_SKIP_STATS = 8;

/** RTM_GETLINK of one link by name, without statistics (they are most of the answer and never read). */
export function linkByNameBody(dev: string): Buffer {
  return payload(ifinfomsg(), [attr(IFLA_IFNAME, str(dev)), attr(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]);
}

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(o: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(o.family ?? AF_UNSPEC, 0);
  b.writeInt32LE(o.index ?? 0, 4);
  b.writeUInt32LE((o.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((o.change ?? 0) >>> 0, 12);
  return b;
}

/** struct ifaddrmsg (8 bytes). */
export function ifaddrmsg(o: { family: number; prefixlen?: number; flags?: number; scope?: number; index?: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.prefixlen ?? 0, 1);
  b.writeUInt8(o.flags ?? 0, 2);
  b.writeUInt8(o.scope ?? 0, 3);
  b.writeUInt32LE(o.index ?? 0, 4);
  return b;
}

/** struct rtmsg (12 bytes); also the layout of struct fib_rule_hdr (rules). */
export function rtmsg(o: { family: number; dstLen?: number; srcLen?: number; tos?: number; table?: number; protocol?: number; scope?: number; type?: number; flags?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.dstLen ?? 0, 1);
  b.writeUInt8(o.srcLen ?? 0, 2);
  b.writeUInt8(o.tos ?? 0, 3);
  b.writeUInt8(o.table ?? 0, 4);
  b.writeUInt8(o.protocol ?? 0, 5);
  b.writeUInt8(o.scope ?? 0, 6);
  b.writeUInt8(o.type ?? 0, 7);
  b.writeUInt32LE((o.flags ?? 0) >>> 0, 8);
  return b;
}

/** struct ndmsg (12 bytes). */
export function ndmsg(o: { family: number; ifindex?: number; state?: number; flags?: number; type?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(o.family, 0);
  b.writeInt32LE(o.ifindex ?? 0, 4);
  b.writeUInt16LE(o.state ?? 0, 8);
  b.writeUInt8(o.flags ?? 0, 10);
  b.writeUInt8(o.type ?? 0, 11);
  return b;
}

/** A table id: the u8 header field holds it when it fits, RTA_TABLE/FRA_TABLE (15) always carries all 32 bits. */
export const headerTable = (table: number): number => (table < 256 ? table : 0);

// --- decoding --------------------------------------------------------------------------------------------------

/** Calls `fn(type, payload)` for every attribute of a body from `offset` on, in order (type without NLA_F_NESTED/BYTEORDER). */
function eachAttr(buf: Buffer, offset: number, fn: (type: number, payload: Buffer) => void): void {
  let o = offset;
  while (o + 4 <= buf.length) {
    const len = buf.readUInt16LE(o);
    if (len < 4 || o + len > buf.length) break;
    fn(buf.readUInt16LE(o + 2) & 0x3fff, buf.subarray(o + 4, o + len));
    o += align4(len);
  }
}

/** Attributes of a message body from `offset` on: type (without NLA_F_NESTED/BYTEORDER bits) → payload; last wins. */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  eachAttr(buf, offset, (type, payload) => out.set(type, payload));
  return out;
}

/**
 * Every attribute of a body in order, repeats kept (a nest of list entries: ethtool's strings, bitset bits):
 * [type without NLA_F_NESTED/BYTEORDER, payload].
 */
export function attrList(buf: Buffer, offset = 0): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  eachAttr(buf, offset, (type, payload) => out.push([type, payload]));
  return out;
}

export const getU8 = (b: Buffer | undefined): number | undefined => (b && b.length >= 1 ? b.readUInt8(0) : undefined);
export const getU32 = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);
export const getS32 = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readInt32LE(0) : undefined);
export function getStr(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

export function macText(b: Buffer | undefined): string | undefined {
  return b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : undefined;
}

/** An address as iproute2 prints it (dotted quad; RFC 5952 compressed IPv6 with IPv4-mapped tails, as inet_ntop). */
export function ipText(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return undefined;
  return formatIp({ family: 6, value: BigInt(`0x${b.toString('hex')}`) });
}
