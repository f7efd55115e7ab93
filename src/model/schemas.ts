/**
 * TypeBox schemas of every object OpenTransit stores or accepts. They are three things at once: the TypeScript
 * types (Static<>), the structural validation (src/model/shape.ts), and the OpenAPI document (@fastify/swagger).
 *
 * Two families: `*Input` schemas accept what users write (optional fields take their `default`), the plain ones
 * describe the stored, fully resolved objects (every field present). Formats that JSON Schema cannot express well
 * (CIDR with zero host bits, public unicast, membership of the operator's anycast pool) are checked in code, in
 * the module of each object.
 *
 * Containers (objects, lists) carry no `default`: TypeBox's Value.Default merges a container default into a
 * container of the other kind ({} given for a list becomes [], {"0": …} a one-item list), which would accept
 * wrong types silently. Absent containers are defaulted in code instead (`?? []`).
 *
 * `x-error-message` is our own keyword (an OpenAPI extension): the reason shown when a `pattern` does not match (a regex is no help to a
 * user).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AsnSchema, BgpPeer, BgpPeerInput, DEFAULT_EDGE_ASN, MAX_BGP_PEERS } from './bgp.js';
import { ID_PATTERN } from './ids.js';

export const Id = Type.String({
  pattern: ID_PATTERN,
  description: 'Random 32 lowercase hex digits.',
  'x-error-message': 'must be an id: 32 lowercase hex digits',
});

const descriptionOptions = {
  maxLength: 500,
  // No control characters: descriptions end up in terminals and logs.
  pattern: '^[^\\x00-\\x1f\\x7f]*$',
  'x-error-message': 'must not contain control characters',
};
export const Description = Type.String({ ...descriptionOptions, default: '' });
/** For patches: an absent description must stay absent (not become ''). */
const DescriptionNoDefault = Type.String(descriptionOptions);

export const ACCOUNT_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
export const AccountName = Type.String({
  pattern: ACCOUNT_NAME_PATTERN,
  maxLength: 63,
  description: 'Slug: 1–63 characters of a-z, 0-9 and "-", not starting or ending with "-". Unique.',
  'x-error-message': 'must be a slug: 1–63 characters of a-z, 0-9 and "-", not starting or ending with "-"',
});

/**
 * Tunnel names may become kernel interface names later (IFNAMSIZ is 16 with the NUL), hence ≤ 15 characters from a
 * set that is safe everywhere.
 */
export const TUNNEL_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,14}$';
export const TunnelName = Type.String({
  pattern: TUNNEL_NAME_PATTERN,
  maxLength: 15,
  description: '1–15 characters of a-z, 0-9 and "-", starting with a letter or digit. Unique in the account.',
  'x-error-message': 'must be 1–15 characters of a-z, 0-9 and "-", starting with a letter or digit',
});

const CidrText = (description: string) => Type.String({ maxLength: 64, description });
const IpText = (description: string) => Type.String({ maxLength: 64, description });

export const Action = Type.Union([Type.Literal('allow'), Type.Literal('block')]);

// --- prefix ----------------------------------------------------------------------------------------------------

export const PrefixInput = Type.Object(
  {
    id: Type.Optional(Id),
    cidr: CidrText(
      'IPv4 /8–/32 or IPv6 /16–/128; host bits must be zero; stored normalised. Unique across all accounts: ' +
        'no overlap with another account; nested prefixes within one account are allowed.',
    ),
    advertised: Type.Optional(Type.Boolean({ default: false, description: 'Announced by BGP from every edge.' })),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export type PrefixInput = Static<typeof PrefixInput>;

export const PrefixPatch = Type.Object(
  {
    advertised: Type.Optional(Type.Boolean()),
    description: Type.Optional(DescriptionNoDefault),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type PrefixPatch = Static<typeof PrefixPatch>;

export const Prefix = Type.Object({ id: Id, cidr: Type.String(), advertised: Type.Boolean(), description: Type.String() });
export type Prefix = Static<typeof Prefix>;

// --- GRE tunnel ------------------------------------------------------------------------------------------------

export const HealthCheckInput = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ default: true })),
    type: Type.Optional(Type.Union([Type.Literal('request'), Type.Literal('reply')], { default: 'reply' })),
    rate: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('mid'), Type.Literal('high')], { default: 'mid' })),
  },
  { additionalProperties: false },
);
export const HealthCheck = Type.Object({
  enabled: Type.Boolean(),
  type: Type.Union([Type.Literal('request'), Type.Literal('reply')]),
  rate: Type.Union([Type.Literal('low'), Type.Literal('mid'), Type.Literal('high')]),
});
export type HealthCheck = Static<typeof HealthCheck>;

export const GreTunnelInput = Type.Object(
  {
    id: Type.Optional(Id),
    name: TunnelName,
    customer_gre_endpoint: IpText(
      "The customer router's public unicast IPv4 address (documentation ranges are accepted for labs).",
    ),
    edge_gre_endpoint: IpText("One of the operator's anycast endpoints (GET /v1/settings)."),
    interface_address: CidrText(
      'The edge side of the tunnel interface, IPv4 in RFC 1918 space, /31 or /30, e.g. 10.200.0.0/31. ' +
        'The address written is the edge side; the customer side (the nexthop of routes) is the other usable ' +
        'address of the subnet: 10.200.0.0/31 → customer 10.200.0.1; 10.200.0.1/30 → customer 10.200.0.2.',
    ),
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: 255, default: 64 })),
    mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 1476, default: 1476 })),
    health_check: Type.Optional(HealthCheckInput),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export type GreTunnelInput = Static<typeof GreTunnelInput>;

export const GreTunnel = Type.Object({
  id: Id,
  name: Type.String(),
  customer_gre_endpoint: Type.String(),
  edge_gre_endpoint: Type.String(),
  interface_address: Type.String(),
  ttl: Type.Integer(),
  mtu: Type.Integer(),
  health_check: HealthCheck,
  description: Type.String(),
});
export type GreTunnel = Static<typeof GreTunnel>;

// --- route -----------------------------------------------------------------------------------------------------

export const MAX_PRIORITY = 2 ** 31;

export const RouteInput = Type.Object(
  {
    id: Type.Optional(Id),
    prefix: CidrText("Destination network; must lie inside one of the account's prefixes."),
    nexthop: IpText("The customer-side address of one of the account's GRE tunnels."),
    priority: Type.Integer({
      minimum: 0,
      maximum: MAX_PRIORITY,
      description: 'Lower wins; equal priorities share traffic (ECMP, by weight).',
    }),
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, default: 1 })),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export type RouteInput = Static<typeof RouteInput>;

export const Route = Type.Object({
  id: Id,
  prefix: Type.String(),
  nexthop: Type.String(),
  priority: Type.Integer(),
  weight: Type.Integer(),
  description: Type.String(),
});
export type Route = Static<typeof Route>;

// --- firewall --------------------------------------------------------------------------------------------------

export const FirewallRuleInput = Type.Object(
  {
    id: Type.Optional(Id),
    action: Action,
    expression: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'Wirefilter-style, e.g. `ip.dst == 203.0.113.100 and tcp.dstport in {20..21}`.',
    }),
    description: Type.Optional(Description),
    enabled: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);
export type FirewallRuleInput = Static<typeof FirewallRuleInput>;

export const FirewallRule = Type.Object({
  id: Id,
  action: Action,
  expression: Type.String(),
  description: Type.String(),
  enabled: Type.Boolean(),
});
export type FirewallRule = Static<typeof FirewallRule>;

export const FirewallInput = Type.Object(
  {
    default_action: Action,
    rules: Type.Optional(Type.Array(FirewallRuleInput, { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type FirewallInput = Static<typeof FirewallInput>;

export const Firewall = Type.Object({ default_action: Action, rules: Type.Array(FirewallRule) });
export type Firewall = Static<typeof Firewall>;

// --- account ---------------------------------------------------------------------------------------------------

export const MAX_PREFIXES = 1000;
export const MAX_TUNNELS = 1000;
export const MAX_ROUTES = 5000;

/** The stored account document: one store key per account (keys.account(id)); what agents consume. */
export const AccountDocument = Type.Object({
  id: Id,
  name: Type.String(),
  created_at: Type.String({ description: 'ISO 8601 time of creation.' }),
  prefixes: Type.Array(Prefix),
  gre_tunnels: Type.Array(GreTunnel),
  routes: Type.Array(Route),
  firewall: Firewall,
});
export type AccountDocument = Static<typeof AccountDocument>;

/**
 * The declarative account document (YAML or JSON; `PUT /v1/accounts/{id}/config`). Everything optional takes its
 * default, and anything left out is removed: an omitted `firewall` means allow-all with no rules.
 */
export const ConfigDocumentInput = Type.Object(
  {
    account: Type.Optional(AccountName),
    prefixes: Type.Optional(Type.Array(PrefixInput, { maxItems: MAX_PREFIXES })),
    gre_tunnels: Type.Optional(Type.Array(GreTunnelInput, { maxItems: MAX_TUNNELS })),
    routes: Type.Optional(Type.Array(RouteInput, { maxItems: MAX_ROUTES })),
    firewall: Type.Optional(FirewallInput),
  },
  { additionalProperties: false },
);
export type ConfigDocumentInput = Static<typeof ConfigDocumentInput>;

/** What `GET /v1/accounts/{id}/config` returns: the declarative document with ids and every default filled in. */
export const ConfigDocument = Type.Object({
  account: Type.String(),
  prefixes: Type.Array(Prefix),
  gre_tunnels: Type.Array(GreTunnel),
  routes: Type.Array(Route),
  firewall: Firewall,
});
export type ConfigDocument = Static<typeof ConfigDocument>;

export const AccountCreate = Type.Object({ name: AccountName }, { additionalProperties: false });
export const AccountSummary = Type.Object({ id: Id, name: Type.String(), created_at: Type.String() });
export type AccountSummary = Static<typeof AccountSummary>;

// --- operator settings -----------------------------------------------------------------------------------------

export const BlocklistEntryInput = Type.Object(
  { cidr: CidrText('Source network dropped at every edge (XDP).'), description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const BlocklistEntry = Type.Object({ cidr: Type.String(), description: Type.String() });
export type BlocklistEntry = Static<typeof BlocklistEntry>;

/** The edges' BGP: their AS and the routers every edge peers with (a node's own config may override both). */
export const BgpSettingsInput = Type.Object(
  {
    asn: Type.Optional({ ...AsnSchema("The edges' AS number (1–4294967295)."), default: DEFAULT_EDGE_ASN }),
    peers: Type.Optional(
      Type.Array(BgpPeerInput, {
        maxItems: MAX_BGP_PEERS,
        description: 'Routers every edge opens a session to (unless its node config names its own). Passwords are never returned: GET shows password_set.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type BgpSettingsInput = Static<typeof BgpSettingsInput>;

export const BgpSettings = Type.Object({ asn: Type.Integer(), peers: Type.Array(BgpPeer) });
export type BgpSettings = Static<typeof BgpSettings>;

export const SettingsInput = Type.Object(
  {
    anycast_endpoints: Type.Array(IpText('Public unicast IPv4 (documentation ranges accepted for labs).'), {
      maxItems: 64,
      description: 'Edge GRE endpoints, announced from every edge.',
    }),
    bgp: Type.Optional(BgpSettingsInput),
    bgp_peers: Type.Optional(
      Type.Array(Type.Unknown(), {
        maxItems: 0,
        description: 'Deprecated (it was never configurable): accepted only empty, and ignored. Use bgp.peers.',
      }),
    ),
    blocklist: Type.Optional(Type.Array(BlocklistEntryInput, { maxItems: 10000 })),
  },
  { additionalProperties: false },
);
export type SettingsInput = Static<typeof SettingsInput>;

/** The stored settings (passwords included: agents need them; the API never returns them). */
export const Settings = Type.Object({
  anycast_endpoints: Type.Array(Type.String()),
  bgp: BgpSettings,
  blocklist: Type.Array(BlocklistEntry),
});
export type Settings = Static<typeof Settings>;

// --- registry (cross-account index) ----------------------------------------------------------------------------

export const RegistryAccount = Type.Object({
  name: Type.String(),
  prefixes: Type.Array(Type.String()),
  /** "customer>edge" pairs: the decap side tells tenants' tunnels apart by this pair, so it is unique globally. */
  gre_endpoints: Type.Array(Type.String()),
  /**
   * The tunnels' interface subnets: the edges' XDP accepts them as inner sources of the account (health checks),
   * in one trie for all accounts, so they are unique globally. Optional: registries written before it lack it.
   */
  tunnel_subnets: Type.Optional(Type.Array(Type.String())),
});
export type RegistryAccount = Static<typeof RegistryAccount>;

export const Registry = Type.Object({
  /** Account name → account id. */
  names: Type.Record(Type.String(), Type.String()),
  /** Account id → what other accounts must not collide with. */
  accounts: Type.Record(Type.String(), RegistryAccount),
});
export type Registry = Static<typeof Registry>;

// --- token record ----------------------------------------------------------------------------------------------

export const TokenRecord = Type.Object({ account_id: Id, created_at: Type.String() });
export type TokenRecord = Static<typeof TokenRecord>;

export type AnySchema = TSchema;
