/**
 * A small packet builder for tests: Ethernet (with VLAN tags), IPv4 (options, fragments), IPv6 (extension
 * headers), TCP, UDP, ICMP, ICMPv6, GRE — with correct checksums unless a test overrides a field on purpose.
 *
 *   const frame = ethernet({ src, dst }, ipv4({ src: '198.51.100.7', dst: '203.0.113.10' }, udp({ sport: 1234, dport: 53 }, payload)));
 *
 * Layers build inside-out: an L4 builder returns a `Segment` whose bytes the IP builder finishes (TCP/UDP/ICMPv6
 * checksums need the IP pseudo-header). Every override (ihl, totalLength, payloadLength, dataOffset, checksum…)
 * exists to make a malformed packet deliberately.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, GRE: 47, ESP: 50, ICMPV6: 58, HOPOPTS: 0, ROUTING: 43, FRAGMENT: 44, DSTOPTS: 60 } as const;
export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

/** 02:00:00:00:00:01 → 6 bytes. */
export function mac(text: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text)) throw new Error(`bad MAC ${text}`);
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export function ip(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new Error(`bad IP address ${text}`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** RFC 1071 one's complement sum of `parts`, folded and complemented. */
export function internetChecksum(...parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < all.length; i += 2) sum += all.readUInt16BE(i);
  if (all.length % 2) sum += all[all.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An L4 segment: its protocol number, and its bytes once the IP addresses are known (pseudo-header checksums). */
export interface Segment {
  proto: number;
  bytes(src: Buffer, dst: Buffer): Buffer;
}

function pseudo(src: Buffer, dst: Buffer, proto: number, length: number): Buffer {
  if (src.length === 4) {
    const p = Buffer.alloc(12);
    src.copy(p, 0);
    dst.copy(p, 4);
    p[9] = proto;
    p.writeUInt16BE(length, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  src.copy(p, 0);
  dst.copy(p, 16);
  p.writeUInt32BE(length, 32);
  p[39] = proto;
  return p;
}

export interface TcpOptions {
  sport: number;
  dport: number;
  flags?: number;
  seq?: number;
  ack?: number;
  window?: number;
  options?: Buffer;
  /** Override of the data offset (in 32-bit words). */
  dataOffset?: number;
  checksum?: number;
}

export function tcp(o: TcpOptions, payload: Buffer = Buffer.alloc(0)): Segment {
  return {
    proto: IPPROTO.TCP,
    bytes(src, dst) {
      const opts = o.options ?? Buffer.alloc(0);
      if (opts.length % 4) throw new Error('TCP options must be a multiple of 4 bytes');
      const h = Buffer.alloc(20 + opts.length);
      h.writeUInt16BE(o.sport, 0);
      h.writeUInt16BE(o.dport, 2);
      h.writeUInt32BE(o.seq ?? 1, 4);
      h.writeUInt32BE(o.ack ?? 0, 8);
      h[12] = (o.dataOffset ?? h.length / 4) << 4;
      h[13] = o.flags ?? TCP.ACK;
      h.writeUInt16BE(o.window ?? 65535, 14);
      opts.copy(h, 20);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(o.checksum ?? internetChecksum(pseudo(src, dst, IPPROTO.TCP, seg.length), seg), 16);
      return seg;
    },
  };
}

export function udp(o: { sport: number; dport: number; length?: number; checksum?: number }, payload: Buffer = Buffer.alloc(0)): Segment {
  return {
    proto: IPPROTO.UDP,
    bytes(src, dst) {
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg.writeUInt16BE(o.sport, 0);
      seg.writeUInt16BE(o.dport, 2);
      seg.writeUInt16BE(o.length ?? seg.length, 4);
      let c = o.checksum ?? internetChecksum(pseudo(src, dst, IPPROTO.UDP, seg.length), seg);
      if (o.checksum === undefined && c === 0) c = 0xffff; // 0 means "no checksum" in UDP
      seg.writeUInt16BE(c, 6);
      return seg;
    },
  };
}

/** ICMP (IPv4) or, with v6, ICMPv6. Default: echo request id 1 seq 1. */
export function icmp(o: { type?: number; code?: number; rest?: number; v6?: boolean } = {}, payload: Buffer = Buffer.alloc(0)): Segment {
  const proto = o.v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP;
  return {
    proto,
    bytes(src, dst) {
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg[0] = o.type ?? (o.v6 ? 128 : 8);
      seg[1] = o.code ?? 0;
      seg.writeUInt32BE(o.rest ?? 0x00010001, 4);
      const c = o.v6 ? internetChecksum(pseudo(src, dst, proto, seg.length), seg) : internetChecksum(seg);
      seg.writeUInt16BE(c, 2);
      return seg;
    },
  };
}

export interface GreOptions {
  /** Payload EtherType (default: IPv4 or IPv6 from the payload's version nibble). */
  proto?: number;
  /** The raw flags+version word, to build unsupported headers (C 0x8000, R 0x4000, K 0x2000, S 0x1000, version 0x0007). */
  flags?: number;
  /** Optional fields, appended in RFC order (checksum+reserved, key, sequence) when the flags ask for them. */
  checksum?: boolean;
  key?: number;
  seq?: number;
}

/** GRE (RFC 2784/2890) around an inner IP packet. */
export function gre(o: GreOptions, inner: Buffer): Segment {
  return {
    proto: IPPROTO.GRE,
    bytes() {
      let flags = o.flags ?? 0;
      const extra: Buffer[] = [];
      if (o.checksum) flags |= 0x8000;
      if (o.key !== undefined) flags |= 0x2000;
      if (o.seq !== undefined) flags |= 0x1000;
      const proto = o.proto ?? (inner.length > 0 && inner[0]! >> 4 === 6 ? ETH_P_IPV6 : ETH_P_IP);
      const h = Buffer.alloc(4);
      h.writeUInt16BE(flags, 0);
      h.writeUInt16BE(proto, 2);
      if (o.checksum) extra.push(Buffer.alloc(4));
      if (o.key !== undefined) extra.push(u32(o.key));
      if (o.seq !== undefined) extra.push(u32(o.seq));
      const seg = Buffer.concat([h, ...extra, inner]);
      if (o.checksum) seg.writeUInt16BE(internetChecksum(seg), 4);
      return seg;
    },
  };
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Any protocol's payload as is. */
export function raw(proto: number, payload: Buffer): Segment {
  return { proto, bytes: () => payload };
}

export interface Ipv4Options {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** IP options (padded to a multiple of 4 bytes). */
  options?: Buffer;
  /** Overrides, for malformed packets. */
  version?: number;
  ihl?: number;
  totalLength?: number;
  proto?: number;
  checksum?: number;
}

export function ipv4(o: Ipv4Options, l4: Segment): Buffer {
  const src = ip(o.src);
  const dst = ip(o.dst);
  if (src.length !== 4 || dst.length !== 4) throw new Error('ipv4 needs IPv4 addresses');
  const opts = o.options ?? Buffer.alloc(0);
  const padded = Buffer.concat([opts, Buffer.alloc((4 - (opts.length % 4)) % 4)]);
  const h = Buffer.alloc(20 + padded.length);
  const payload = l4.bytes(src, dst);
  h[0] = ((o.version ?? 4) << 4) | (o.ihl ?? h.length / 4);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(o.totalLength ?? h.length + payload.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | (o.fragOffset ?? 0), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto ?? l4.proto;
  src.copy(h, 12);
  dst.copy(h, 16);
  padded.copy(h, 20);
  h.writeUInt16BE(o.checksum ?? internetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

export interface Ipv6Extension {
  /** IPPROTO.HOPOPTS, ROUTING, DSTOPTS or FRAGMENT. */
  type: number;
  /** Fragment header: offset in 8-byte units and the M flag. */
  fragOffset?: number;
  more?: boolean;
  /** Options/routing headers: body length beyond the first 8 bytes, in 8-byte units (default 0). */
  extraUnits?: number;
}

export interface Ipv6Options {
  src: string;
  dst: string;
  hopLimit?: number;
  ext?: Ipv6Extension[];
  version?: number;
  payloadLength?: number;
  nextHeader?: number;
}

export function ipv6(o: Ipv6Options, l4: Segment): Buffer {
  const src = ip(o.src);
  const dst = ip(o.dst);
  if (src.length !== 16 || dst.length !== 16) throw new Error('ipv6 needs IPv6 addresses');
  const payload = l4.bytes(src, dst);
  const ext = o.ext ?? [];
  const exts: Buffer[] = ext.map((e, i) => {
    const next = i + 1 < ext.length ? ext[i + 1]!.type : l4.proto;
    if (e.type === IPPROTO.FRAGMENT) {
      const b = Buffer.alloc(8);
      b[0] = next;
      b.writeUInt16BE(((e.fragOffset ?? 0) << 3) | (e.more ? 1 : 0), 2);
      b.writeUInt32BE(0xabcd, 4);
      return b;
    }
    const units = e.extraUnits ?? 0;
    const b = Buffer.alloc(8 + units * 8);
    b[0] = next;
    b[1] = units;
    if (e.type !== IPPROTO.ROUTING) b[2] = 1; // a PadN option filling the header
    if (e.type !== IPPROTO.ROUTING) b[3] = b.length - 4;
    return b;
  });
  const body = Buffer.concat([...exts, payload]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((o.version ?? 6) << 28) >>> 0, 0);
  h.writeUInt16BE(o.payloadLength ?? body.length, 4);
  h[6] = o.nextHeader ?? (ext[0]?.type ?? l4.proto);
  h[7] = o.hopLimit ?? 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, body]);
}

export interface EthernetOptions {
  dst?: string;
  src?: string;
  /** VLAN ids, outermost first: one tag is 802.1Q; more are stacked (the first 802.1ad). */
  vlans?: number[];
  /** EtherType (default: from the payload's IP version nibble). */
  type?: number;
}

export const DEFAULT_DST_MAC = '02:00:00:00:00:02';
export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';

export function ethernet(o: EthernetOptions, payload: Buffer): Buffer {
  const type = o.type ?? (payload.length > 0 && payload[0]! >> 4 === 6 ? ETH_P_IPV6 : ETH_P_IP);
  const tags = (o.vlans ?? []).map((id, i, all) => {
    const t = Buffer.alloc(4);
    t.writeUInt16BE(i === 0 && all.length > 1 ? ETH_P_8021AD : ETH_P_8021Q, 0);
    t.writeUInt16BE(id & 0x0fff, 2);
    return t;
  });
  const h = Buffer.alloc(12);
  mac(o.dst ?? DEFAULT_DST_MAC).copy(h, 0);
  mac(o.src ?? DEFAULT_SRC_MAC).copy(h, 6);
  // Each tag is TPID+TCI; TPIDs sit where the EtherType would be, so tags go between the MACs and the type.
  const typeBytes = Buffer.alloc(2);
  typeBytes.writeUInt16BE(type, 0);
  return Buffer.concat([h, ...tags, typeBytes, payload]);
}

/** Pads a frame to Ethernet's 60-byte minimum (without FCS), as a NIC delivers short frames. */
export function padFrame(frame: Buffer, min = 60): Buffer {
  return frame.length >= min ? frame : Buffer.concat([frame, Buffer.alloc(min - frame.length)]);
}
