/**
 * BGP peers of the edges (operator settings): the routers every edge opens a BGP session to and announces the
 * advertised customer prefixes and the anycast endpoints to (DESIGN.md §2, §4).
 *
 * Validated here, on its own: the schema (types, ranges, unknown fields), then what JSON Schema cannot say — the
 * address is a usable unicast address (stored normalised), keepalive fits the hold time as BIRD wants it, no two
 * peers share an address. Every value that reaches BIRD's config text is checked once more by the renderer
 * (src/kernel/bird-config.ts); the password charset is what makes it safe inside a BIRD string.
 */
import { Type, type Static } from '@sinclair/typebox';
import { joinField, ValidationError } from './errors.js';
import { UNROUTABLE_KINDS, formatIp, specialRangeOf, tryParseIp } from './ip.js';
import { checkShape } from './shape.js';

/**
 * TCP-MD5 key (RFC 2385; Linux TCP_MD5SIG_MAXKEYLEN is 80): printable ASCII without space, '"' and '\' — the
 * characters that would end or escape a BIRD string.
 */
export const BGP_PASSWORD_PATTERN = '^[!#-\\[\\]-~]{1,80}$';
export const BGP_PASSWORD_RE = new RegExp(BGP_PASSWORD_PATTERN);

export const BGP_DEFAULTS = { bfd: false, hold_time: 90, keepalive: 30, passive: false } as const;

/** The edges' AS number when the operator has not set one: the first private 16-bit ASN (RFC 6996), as in the lab. */
export const DEFAULT_EDGE_ASN = 64512;
/** Sessions per edge: each is a BIRD protocol; more than this is a configuration mistake, not a network. */
export const MAX_BGP_PEERS = 64;

export const AsnSchema = (description: string) => Type.Integer({ minimum: 1, maximum: 4294967295, description });

/** An IPv4 BGP router id (dotted quad, not 0.0.0.0); unique among the speakers, usually the uplink address. */
export function routerIdField(text: unknown, field: string): string {
  const a = typeof text === 'string' ? tryParseIp(text) : undefined;
  if (!a || a.family !== 4 || !/^\d{1,3}(\.\d{1,3}){3}$/.test(text as string)) throw new ValidationError(field, `must be an IPv4 address (dotted quad), got ${JSON.stringify(text)}`);
  if (a.value === 0n) throw new ValidationError(field, 'must not be 0.0.0.0');
  return formatIp(a);
}

export const BgpPeerInput = Type.Object(
  {
    address: Type.String({ maxLength: 64, description: "The router's address: IPv4 or IPv6 unicast (not link-local). Unique." }),
    asn: Type.Integer({ minimum: 1, maximum: 4294967295, description: "The router's AS number (1–4294967295)." }),
    password: Type.Optional(
      Type.String({
        pattern: BGP_PASSWORD_PATTERN,
        maxLength: 80,
        description: 'TCP-MD5 password: 1–80 printable ASCII characters except space, " and \\.',
        errorMessage: 'must be 1–80 printable ASCII characters without space, " or \\',
      }),
    ),
    bfd: Type.Optional(
      Type.Boolean({ default: BGP_DEFAULTS.bfd, description: 'Run BFD (50 ms × 3) with the router: a dead link is noticed in ~150 ms.' }),
    ),
    hold_time: Type.Optional(
      Type.Integer({ minimum: 3, maximum: 65535, default: BGP_DEFAULTS.hold_time, description: 'BGP hold time, seconds (3–65535).' }),
    ),
    keepalive: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 32767,
        default: BGP_DEFAULTS.keepalive,
        description: 'Seconds between keepalives; at most half the hold time (a third is usual).',
      }),
    ),
    multihop: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 255, description: 'The router is not on a shared link: TTL of the session (2–255).' }),
    ),
    local_address: Type.Optional(Type.String({ maxLength: 64, description: 'Source address of the session (same family as address).' })),
    passive: Type.Optional(
      Type.Boolean({ default: BGP_DEFAULTS.passive, description: 'Wait for the router to connect; never open the connection.' }),
    ),
    password_set: Type.Optional(
      Type.Boolean({
        description:
          'What GET shows instead of the password (never returned). On PUT without `password`: true keeps the password ' +
          'stored for this address, false (or absent) means none.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type BgpPeerInput = Static<typeof BgpPeerInput>;

/** A validated peer: every default filled in, addresses normalised. */
export const BgpPeer = Type.Object({
  address: Type.String(),
  asn: Type.Integer(),
  password: Type.Optional(Type.String()),
  bfd: Type.Boolean(),
  hold_time: Type.Integer(),
  keepalive: Type.Integer(),
  multihop: Type.Optional(Type.Integer()),
  local_address: Type.Optional(Type.String()),
  passive: Type.Boolean(),
});
export type BgpPeer = Static<typeof BgpPeer>;

/** A unicast address a BGP session can be opened to, normalised; ValidationError(field) otherwise. */
export function peerAddressField(text: string, field: string): string {
  const a = tryParseIp(text);
  if (!a) throw new ValidationError(field, `"${text}" is not an IPv4 or IPv6 address`);
  const r = specialRangeOf(a);
  if (r && UNROUTABLE_KINDS.has(r.kind)) throw new ValidationError(field, `${formatIp(a)} cannot be a BGP neighbour: it is in ${r.text}, ${r.name}`);
  return formatIp(a);
}

/**
 * The password stored for a peer address (PUT resolves `password_set: true` with it). Absent: nothing is stored,
 * so `password_set: true` without a password is refused.
 */
export type StoredPassword = (address: string) => string | undefined;

/** A lookup of the passwords of `peers` by address. */
export function storedPasswords(peers: readonly BgpPeer[] | undefined): StoredPassword {
  return (address) => peers?.find((p) => p.address === address)?.password;
}

/**
 * Validates one peer (shape, address, keepalive vs hold time, local address family). `password_set: true` without
 * a password takes the password `stored` has for the address (the GET → edit → PUT round trip keeps secrets).
 */
export function parseBgpPeerInput(input: unknown, base = '', stored?: StoredPassword): BgpPeer {
  const p = checkShape(BgpPeerInput, input, base);
  const address = peerAddressField(p.address, joinField(base, 'address'));
  const hold = p.hold_time ?? BGP_DEFAULTS.hold_time;
  const keepalive = p.keepalive ?? BGP_DEFAULTS.keepalive;
  // BIRD warns above half the hold time: two keepalives must fit in it or one lost packet drops the session.
  if (keepalive * 2 > hold) {
    throw new ValidationError(joinField(base, 'keepalive'), `${keepalive} s is more than half the hold time (${hold} s)`);
  }
  const peer: BgpPeer = {
    address,
    asn: p.asn,
    bfd: p.bfd ?? BGP_DEFAULTS.bfd,
    hold_time: hold,
    keepalive,
    passive: p.passive ?? BGP_DEFAULTS.passive,
  };
  if (p.password !== undefined) {
    if (p.password_set === false) throw new ValidationError(joinField(base, 'password_set'), 'is false but a password is given');
    peer.password = p.password;
  } else if (p.password_set === true) {
    const kept = stored?.(address);
    if (kept === undefined) throw new ValidationError(joinField(base, 'password_set'), `no password is stored for ${address}: give "password"`);
    peer.password = kept;
  }
  if (p.multihop !== undefined) peer.multihop = p.multihop;
  if (p.local_address !== undefined) {
    const field = joinField(base, 'local_address');
    const local = peerAddressField(p.local_address, field);
    if (local.includes(':') !== address.includes(':')) throw new ValidationError(field, `${local} is not of the same family as address ${address}`);
    peer.local_address = local;
  }
  // BIRD refuses BFD on a multihop session without a source address.
  if (peer.multihop !== undefined && peer.bfd && peer.local_address === undefined)
    throw new ValidationError(joinField(base, 'local_address'), 'is required for a multihop session with BFD');
  return peer;
}

/** Validates a list of peers; the same address twice is refused (one session per router). */
export function parseBgpPeersInput(input: unknown, base = 'bgp_peers', stored?: StoredPassword): BgpPeer[] {
  if (!Array.isArray(input)) throw new ValidationError(base || undefined, 'must be a list');
  if (input.length > MAX_BGP_PEERS) throw new ValidationError(base || undefined, `must have at most ${MAX_BGP_PEERS} items`);
  const seen = new Map<string, number>();
  return input.map((item, i) => {
    const at = joinField(base, i);
    const peer = parseBgpPeerInput(item, at, stored);
    const first = seen.get(peer.address);
    if (first !== undefined) throw new ValidationError(joinField(at, 'address'), `${peer.address} is already peer ${first}`);
    seen.set(peer.address, i);
    return peer;
  });
}


/** A peer as the API shows it: everything but the password, which only says whether there is one. */
export type BgpPeerView = Omit<BgpPeer, 'password'> & { password_set: boolean };

export function redactBgpPeer(p: BgpPeer): BgpPeerView {
  const { password, ...rest } = p;
  return { ...rest, password_set: password !== undefined };
}
