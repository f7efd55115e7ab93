/** Operator settings: the anycast GRE endpoints, the edges' BGP (AS, peers) and the global source blocklist. */
import { DEFAULT_EDGE_ASN, parseBgpPeersInput, redactBgpPeer, storedPasswords, type BgpPeerView } from './bgp.js';
import { findProblems, introducedProblems } from './consistency.js';
import { ConflictError, joinField, ValidationError } from './errors.js';
import { publicIpv4Field } from './gre-tunnel.js';
import { formatCidr } from './ip.js';
import { cidrField } from './prefix.js';
import { SettingsInput, type AccountDocument, type Registry, type Settings } from './schemas.js';
import { checkShape } from './shape.js';

/** A fresh store starts with the lab's anycast endpoint. */
export const DEFAULT_SETTINGS: Settings = { anycast_endpoints: ['192.0.2.10'], bgp: { asn: DEFAULT_EDGE_ASN, peers: [] }, blocklist: [] };

export function defaultSettings(): Settings {
  return structuredClone(DEFAULT_SETTINGS);
}

/**
 * The settings stored under keys.settings (JSON text), or the defaults when the key does not exist yet — the API
 * and the agents must agree on that default. Throws ValidationError naming the field if the stored value is bad.
 */
export function decodeSettings(text: string | undefined): Settings {
  if (text === undefined) return defaultSettings();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(undefined, `stored settings are not JSON: ${(err as Error).message}`);
  }
  return parseSettingsInput(value);
}

/**
 * Validates settings on their own: endpoints are public unicast IPv4 (documentation ranges accepted) without
 * duplicates; blocklist networks are normalised, never /0 (that would drop everything), without duplicates; BGP
 * peers as src/model/bgp.ts checks them. Whether tunnels still find their endpoint is checked against the
 * accounts (consistency.ts).
 *
 * `current` (the stored settings) resolves a peer's `password_set: true` to the password stored for its address.
 * The old `bgp_peers` field (never configurable) is accepted empty and dropped: documents stored before `bgp`
 * existed still decode.
 */
export function parseSettingsInput(input: unknown, base = '', current?: Settings): Settings {
  const legacy = (input as { bgp_peers?: unknown } | null)?.bgp_peers;
  if (Array.isArray(legacy) && legacy.length > 0)
    throw new ValidationError(joinField(base, 'bgp_peers'), 'has moved to bgp.peers (this old field is accepted only empty)');
  const s = checkShape(SettingsInput, input, base);
  const bgpBase = joinField(base, 'bgp');
  const peers = parseBgpPeersInput(s.bgp?.peers ?? [], joinField(bgpBase, 'peers'), storedPasswords(current?.bgp.peers));
  const endpoints: string[] = [];
  s.anycast_endpoints.forEach((text, i) => {
    const field = joinField(joinField(base, 'anycast_endpoints'), i);
    const ip = publicIpv4Field(text, field);
    if (endpoints.includes(ip)) throw new ValidationError(field, `${ip} is listed twice`);
    endpoints.push(ip);
  });
  const blocklist = (s.blocklist ?? []).map((entry, i) => {
    const at = joinField(joinField(base, 'blocklist'), i);
    const c = cidrField(entry.cidr, joinField(at, 'cidr'));
    if (c.length === 0) throw new ValidationError(joinField(at, 'cidr'), `/0 would block every source`);
    const cidr = formatCidr(c);
    return { cidr, description: entry.description ?? '', at };
  });
  const seen = new Set<string>();
  for (const b of blocklist) {
    if (seen.has(b.cidr)) throw new ValidationError(joinField(b.at, 'cidr'), `${b.cidr} is listed twice`);
    seen.add(b.cidr);
  }
  return {
    anycast_endpoints: endpoints,
    bgp: { asn: s.bgp?.asn ?? DEFAULT_EDGE_ASN, peers },
    blocklist: blocklist.map(({ cidr, description }) => ({ cidr, description })),
  };
}

/**
 * Refuses new settings that would break an account: a tunnel whose edge endpoint is no longer an anycast
 * endpoint, or an anycast endpoint inside a customer prefix. Throws ConflictError naming the account and object.
 */
export function checkSettingsChange(
  before: Settings,
  after: Settings,
  accounts: readonly AccountDocument[],
  registry: Registry,
): void {
  for (const doc of accounts) {
    const introduced = introducedProblems(findProblems(doc, { settings: before, registry }), findProblems(doc, { settings: after, registry }));
    const p = introduced[0];
    if (p) {
      const field = p.kind === 'gre_tunnel' && p.field === 'edge_gre_endpoint' ? 'anycast_endpoints' : undefined;
      throw new ConflictError(field, `this change would break ${p.label} of account ${doc.name}: ${p.message}`);
    }
  }
}

/** Settings as the API shows them: every BGP password replaced by `password_set`. */
export type SettingsView = Omit<Settings, 'bgp'> & { bgp: { asn: number; peers: BgpPeerView[] } };

export function settingsView(s: Settings): SettingsView {
  return { ...s, bgp: { asn: s.bgp.asn, peers: s.bgp.peers.map(redactBgpPeer) } };
}
