/**
 * Per-node configuration (operator), stored under keys.nodeConfig(id) beside the settings, so each agent receives
 * its own in the desired state it already watches. Today it is the node's BGP: its router id and, when it differs
 * from the operator's defaults (settings.bgp), its own AS and peers — e.g. each edge peers with the router of its
 * own site (the lab does exactly that).
 *
 *   { "bgp": { "router_id": "100.65.0.1", "asn": 64512, "peers": [{ "address": "100.65.0.0", "asn": 65001, "bfd": true }] } }
 *
 * Absent fields fall back: no asn → settings.bgp.asn; no peers → settings.bgp.peers (an empty list is "no peers");
 * no router_id → the agent takes the first IPv4 address of its uplink. Passwords are never returned (password_set).
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  AsnSchema,
  BgpPeer,
  BgpPeerInput,
  MAX_BGP_PEERS,
  parseBgpPeersInput,
  redactBgpPeer,
  routerIdField,
  storedPasswords,
  type BgpPeerView,
} from './bgp.js';
import { joinField, ValidationError } from './errors.js';
import type { Settings } from './schemas.js';
import { checkShape } from './shape.js';

/** Node ids name files, keys and namespaces: a safe, short slug (the agent's --node-id). */
export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function nodeIdField(text: unknown, field = 'id'): string {
  if (typeof text !== 'string' || !NODE_ID_PATTERN.test(text))
    throw new ValidationError(field, `must be a node id: 1–32 characters of a-z, 0-9 and "-", starting with a letter or digit, got ${JSON.stringify(text)}`);
  return text;
}

export const NodeBgpInput = Type.Object(
  {
    router_id: Type.Optional(Type.String({ maxLength: 15, description: 'IPv4 dotted quad, unique among BGP speakers (default: the uplink address).' })),
    asn: Type.Optional(AsnSchema("This node's AS number (default: the operator's bgp.asn).")),
    peers: Type.Optional(
      Type.Array(BgpPeerInput, { maxItems: MAX_BGP_PEERS, description: "This node's routers, replacing the operator's bgp.peers." }),
    ),
  },
  { additionalProperties: false },
);

export const NodeConfigInput = Type.Object({ bgp: Type.Optional(NodeBgpInput) }, { additionalProperties: false });
export type NodeConfigInput = Static<typeof NodeConfigInput>;

/** The stored document (passwords included). Absent fields mean "the operator's default". */
export const NodeConfig = Type.Object({
  bgp: Type.Object({
    router_id: Type.Optional(Type.String()),
    asn: Type.Optional(Type.Integer()),
    peers: Type.Optional(Type.Array(BgpPeer)),
  }),
});
export type NodeConfig = Static<typeof NodeConfig>;

export function emptyNodeConfig(): NodeConfig {
  return { bgp: {} };
}

/**
 * Validates a node config. `current` (the stored one) resolves a peer's `password_set: true` to the password
 * stored for its address.
 */
export function parseNodeConfigInput(input: unknown, base = '', current?: NodeConfig): NodeConfig {
  const c = checkShape(NodeConfigInput, input ?? {}, base);
  const out: NodeConfig = { bgp: {} };
  const b = c.bgp;
  const bgpBase = joinField(base, 'bgp');
  if (b?.router_id !== undefined) out.bgp.router_id = routerIdField(b.router_id, joinField(bgpBase, 'router_id'));
  if (b?.asn !== undefined) out.bgp.asn = b.asn;
  if (b?.peers !== undefined) out.bgp.peers = parseBgpPeersInput(b.peers, joinField(bgpBase, 'peers'), storedPasswords(current?.bgp.peers));
  return out;
}

/** The stored node config (JSON text), or the empty config when the key does not exist. */
export function decodeNodeConfig(text: string | undefined): NodeConfig {
  if (text === undefined) return emptyNodeConfig();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(undefined, `stored node config is not JSON: ${(err as Error).message}`);
  }
  return parseNodeConfigInput(value);
}

export type NodeConfigView = { bgp: Omit<NodeConfig['bgp'], 'peers'> & { peers?: BgpPeerView[] } };

/** A node config as the API shows it: passwords replaced by `password_set`. */
export function nodeConfigView(c: NodeConfig): NodeConfigView {
  const { peers, ...rest } = c.bgp;
  return { bgp: { ...rest, ...(peers ? { peers: peers.map(redactBgpPeer) } : {}) } };
}

/** A node's BGP after defaults: the operator's settings overridden by the node's own config. */
export interface EffectiveNodeBgp {
  asn: number;
  peers: BgpPeer[];
  /** Absent: the agent derives it (the uplink's first IPv4 address). */
  routerId?: string;
  /** Where the peers came from. */
  peersFrom: 'node' | 'settings';
}

export function effectiveNodeBgp(settings: Settings, node: NodeConfig): EffectiveNodeBgp {
  const out: EffectiveNodeBgp = {
    asn: node.bgp.asn ?? settings.bgp.asn,
    peers: node.bgp.peers ?? settings.bgp.peers,
    peersFrom: node.bgp.peers ? 'node' : 'settings',
  };
  if (node.bgp.router_id !== undefined) out.routerId = node.bgp.router_id;
  return out;
}

/** What `POST /v1/nodes/{id}/drain` stores under keys.nodeDrain(id) (agents only look at the key's presence). */
export const DrainInput = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500, pattern: '^[^\\x00-\\x1f\\x7f]*$', 'x-error-message': 'must not contain control characters' })) },
  { additionalProperties: false },
);
export type DrainRecord = { drained_at: string; reason?: string };

export function parseDrainInput(input: unknown, now = new Date()): DrainRecord {
  const d = checkShape(DrainInput, input ?? {});
  return { drained_at: now.toISOString(), ...(d.reason !== undefined ? { reason: d.reason } : {}) };
}
