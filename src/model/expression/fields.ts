/**
 * The fields a firewall expression may use: the subset of Cloudflare Magic Firewall's (now "Network Firewall")
 * fields that an nftables rule can match, with the types wirefilter gives them there (IP address, Number,
 * String, Boolean). Field names are case-sensitive, as in wirefilter.
 */

/** Fields holding an IP address (IPv4 or IPv6); compared with `== != < <= > >=` or tested with `in {…}`. */
export type IpField = 'ip.src' | 'ip.dst';

/** Fields holding an unsigned integer ("Number" in Cloudflare's docs). */
export type IntField =
  | 'ip.len'
  | 'ip.ttl'
  | 'tcp.srcport'
  | 'tcp.dstport'
  | 'udp.srcport'
  | 'udp.dstport'
  | 'icmp.type'
  | 'icmp.code';

/** The transport protocol as a lowercase name ("String" in Cloudflare, e.g. `ip.proto == "tcp"`). */
export type ProtoField = 'ip.proto';

/**
 * TCP flags: Boolean fields that stand alone (`tcp.flags.syn`, `not tcp.flags.ack`); wirefilter has no
 * `== true` for booleans. Cloudflare names the ECN-Echo flag `tcp.flags.ecn` (see FIELD_ALIASES for `ece`).
 */
export type FlagField =
  | 'tcp.flags.syn'
  | 'tcp.flags.ack'
  | 'tcp.flags.fin'
  | 'tcp.flags.reset'
  | 'tcp.flags.push'
  | 'tcp.flags.urg'
  | 'tcp.flags.ecn'
  | 'tcp.flags.cwr';

export type FieldName = IpField | IntField | ProtoField | FlagField;

export type FieldInfo =
  | { readonly type: 'ip' }
  | {
      readonly type: 'int';
      /** Smallest and largest value the packet header can hold; literals outside are rejected. */
      readonly min: number;
      readonly max: number;
      /** Noun phrase used in errors, e.g. "a port number". */
      readonly noun: string;
    }
  | { readonly type: 'proto' }
  | { readonly type: 'flag' };

const port = { type: 'int', min: 0, max: 65535, noun: 'a port number' } as const;

/** Every field, by canonical name. */
export const FIELDS: Readonly<Record<FieldName, FieldInfo>> = {
  'ip.src': { type: 'ip' },
  'ip.dst': { type: 'ip' },
  'ip.proto': { type: 'proto' },
  'ip.len': { type: 'int', min: 0, max: 65535, noun: 'a packet length' },
  'ip.ttl': { type: 'int', min: 0, max: 255, noun: 'a TTL' },
  'tcp.srcport': port,
  'tcp.dstport': port,
  'udp.srcport': port,
  'udp.dstport': port,
  'icmp.type': { type: 'int', min: 0, max: 255, noun: 'an ICMP type' },
  'icmp.code': { type: 'int', min: 0, max: 255, noun: 'an ICMP code' },
  'tcp.flags.syn': { type: 'flag' },
  'tcp.flags.ack': { type: 'flag' },
  'tcp.flags.fin': { type: 'flag' },
  'tcp.flags.reset': { type: 'flag' },
  'tcp.flags.push': { type: 'flag' },
  'tcp.flags.urg': { type: 'flag' },
  'tcp.flags.ecn': { type: 'flag' },
  'tcp.flags.cwr': { type: 'flag' },
};

/**
 * Other spellings accepted on input and printed back in canonical form. `rst`/`psh` are the usual
 * abbreviations; `ece` is the RFC 3168 name of the flag Cloudflare calls `tcp.flags.ecn`.
 */
export const FIELD_ALIASES: Readonly<Record<string, FieldName>> = {
  'tcp.flags.rst': 'tcp.flags.reset',
  'tcp.flags.psh': 'tcp.flags.push',
  'tcp.flags.ece': 'tcp.flags.ecn',
};

/**
 * Protocol names accepted for `ip.proto`, with their IP protocol numbers. Cloudflare documents only that the
 * field holds lowercase names such as "tcp" and "icmp"; the rest follow the usual lowercase IANA keywords.
 * A string outside this table could never equal a packet's `ip.proto`, so it is rejected.
 */
export const PROTOCOLS = {
  icmp: 1,
  igmp: 2,
  ipip: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  dccp: 33,
  ipv6: 41,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
  udplite: 136,
} as const satisfies Record<string, number>;

export type ProtoName = keyof typeof PROTOCOLS;

export const PROTO_NAMES = Object.keys(PROTOCOLS) as ProtoName[];

export function isProtoName(s: string): s is ProtoName {
  return Object.prototype.hasOwnProperty.call(PROTOCOLS, s);
}

/** The name of an IP protocol number, or undefined when the table has none. */
export function protocolName(num: number): ProtoName | undefined {
  return PROTO_NAMES.find((name) => PROTOCOLS[name] === num);
}

export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

/** Canonical name of a field spelled `name` (alias or canonical), or undefined for an unknown name. */
export function resolveField(name: string): FieldName | undefined {
  if (Object.prototype.hasOwnProperty.call(FIELDS, name)) return name as FieldName;
  if (Object.prototype.hasOwnProperty.call(FIELD_ALIASES, name)) return FIELD_ALIASES[name];
  return undefined;
}

export function isIntField(f: FieldName): f is IntField {
  return FIELDS[f].type === 'int';
}
export function isIpField(f: FieldName): f is IpField {
  return FIELDS[f].type === 'ip';
}
export function isFlagField(f: FieldName): f is FlagField {
  return FIELDS[f].type === 'flag';
}
