/** Operator settings: the anycast GRE endpoints, BGP peers and the global source blocklist. */
import { findProblems, introducedProblems } from './consistency.js';
import { ConflictError, joinField, ValidationError } from './errors.js';
import { publicIpv4Field } from './gre-tunnel.js';
import { formatCidr } from './ip.js';
import { cidrField } from './prefix.js';
import { SettingsInput, type AccountDocument, type Registry, type Settings } from './schemas.js';
import { checkShape } from './shape.js';

/** A fresh store starts with the lab's anycast endpoint. */
export const DEFAULT_SETTINGS: Settings = { anycast_endpoints: ['192.0.2.10'], bgp_peers: [], blocklist: [] };

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
 * duplicates; blocklist networks are normalised, never /0 (that would drop everything), without duplicates.
 * Whether tunnels still find their endpoint is checked against the accounts (consistency.ts).
 */
export function parseSettingsInput(input: unknown, base = ''): Settings {
  const s = checkShape(SettingsInput, input, base);
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
    bgp_peers: [],
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
