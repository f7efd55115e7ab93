/**
 * The lab's topology file (examples/lab.yaml): parsing, validation with errors that name the field, defaults, and
 * the pure addressing plan — which namespaces, links, addresses, routes, sysctls and BGP sessions the lab builds.
 * Nothing here touches the kernel: build.ts executes the plan, and the plan is unit-tested without root.
 *
 * Addressing plan (IPv4; see planLab for the exact rules):
 *   100.64.0.0/24    core ↔ site routers, site i (0-based): 100.64.0.<2i>/31, core .2i, router .2i+1
 *   100.64.1.0/24    core ↔ customer routers, customer k: 100.64.1.<2k>/31, core even, router odd
 *   100.64.2.0/24    core ↔ clients without a site, client j: 100.64.2.<2j>/31
 *   100.65.<i>.0/24  site i: edge n (1-based) 100.65.i.<2(n-1)>/31 (router even, edge odd);
 *                    its clients from 100.65.i.128 (router even, client odd)
 *   10.200.<k>.0/31  customer k's suggested GRE tunnel interface (edge side .0, customer side .1), as in
 *                    examples/acme.yaml — not configured by the lab, offered to whoever seeds the account
 * Public addresses (clients, customer routers) sit on the host's `lo` as /32; a customer's hosts share a bridge
 * `lan` on its router, which holds the prefix's first address (203.0.113.1/24 for 203.0.113.0/24).
 * IPv6 (only when some client or customer host has an `address6`, so IPv4-only topologies stay as they were):
 *   fd6c::<IPv4 link address>/127 on every routed lab link, next to its IPv4 /31 (ULA: lab links are not
 *                    "internet"; embedding the IPv4 address keeps both families' plans in step), e.g. 100.64.0.1/31
 *                    ↔ fd6c::6440:1/127; BGP runs a second, IPv6 session over each link (sites, core, edges);
 *   clients          `address6` (2001:db8::/32, documentation) as /128 on lo, announced by their router;
 *   customers        `prefix6` (default: the /64 of the first host's address6) on the LAN, the router holding
 *                    its ::1; hosts' `address6` in it. The router's public (GRE) address stays IPv4: IPv6 rides
 *                    inside the IPv4 tunnels.
 * Interfaces: in every namespace the link towards the core is `uplink`; downstream links are named after the peer
 * (site name in the core, `edge<N>` or the client's name in a site router, the host's name in a customer router).
 */
import { parseDocument } from 'yaml';
import { ValidationError } from '../model/errors.js';
import {
  addressAt,
  cidrContainsIp,
  cidrOf,
  cidrsOverlap,
  formatCidr,
  formatIp,
  parseCidr,
  specialRangeOf,
  tryParseCidr,
  tryParseIp,
  type Cidr,
  type IpAddress,
} from '../model/ip.js';

// --- the topology (validated, defaults applied) ----------------------------------------------------------------

export type LabStoreKind = 'embedded' | 'etcd';
export type ListenProto = 'tcp' | 'udp';
export type ReturnPath = 'tunnel' | 'direct';

export interface ListenSpec {
  proto: ListenProto;
  port: number;
}

export interface LabTopology {
  /** 1–12 of [a-z0-9], starting with a letter: every namespace is `otl-<name>-<host>`. */
  name: string;
  store: LabStoreKind;
  /** TCP port of the API on 127.0.0.1; 0 (default) lets the kernel choose. */
  apiPort: number;
  anycastEndpoints: string[];
  sites: { name: string; edges: number }[];
  clients: { name: string; site?: string; address: string; address6?: string }[];
  customers: {
    name: string;
    /** The router's public address (GRE endpoint). */
    router: string;
    return: ReturnPath;
    /** The customer's prefix (default: the /24 holding its first host). */
    prefix: string;
    /** The customer's IPv6 LAN prefix (default: the /64 holding its first host's address6; none without one). */
    prefix6?: string;
    hosts: { name: string; address: string; address6?: string; listen: ListenSpec[] }[];
  }[];
}

export const LAB_NAME_RE = /^[a-z][a-z0-9]{0,11}$/;
/** Sites, clients, customers and customer hosts: no '-' so that `<customer>-<host>` is never ambiguous. */
export const LAB_LABEL_RE = /^[a-z][a-z0-9]{0,11}$/;
/** Names that are interface names or host names the lab uses itself. */
const RESERVED_LABELS = new Set(['internet', 'core', 'router', 'uplink', 'lan', 'lo']);
const EDGE_LABEL_RE = /^edge\d+$/;

export const LAB_LIMITS = { sites: 128, edgesPerSite: 64, clientsPerSite: 64, coreClients: 128, customers: 128, hostsPerCustomer: 64 } as const;

// --- parsing and validation --------------------------------------------------------------------------------------

/** Parses the YAML text of a topology file; syntax errors name `source:line:col`. */
export function parseTopology(text: string, source = 'topology'): LabTopology {
  const doc = parseDocument(text);
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new ValidationError(undefined, `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: ${err.message.split('\n')[0]}`);
  }
  return validateTopology(doc.toJS({ maxAliasCount: 100 }));
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(field: string, reason: string): never {
  throw new ValidationError(field, reason);
}

function checkKeys(field: string, o: Obj, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail(field ? `${field}.${k}` : k, `unknown field; known: ${known.join(', ')}`);
  }
}

function label(field: string, v: unknown): string {
  if (typeof v !== 'string' || !LAB_LABEL_RE.test(v))
    fail(field, `must be 1–12 characters of [a-z0-9] starting with a letter (no '-'), got ${JSON.stringify(v)}`);
  if (RESERVED_LABELS.has(v) || EDGE_LABEL_RE.test(v)) fail(field, `"${v}" is reserved by the lab`);
  return v;
}

function list(field: string, v: unknown, optional = true): unknown[] {
  if (v === undefined || v === null) {
    if (optional) return [];
    fail(field, 'is required (a list)');
  }
  if (!Array.isArray(v)) fail(field, 'must be a list');
  return v;
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(field, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** Lab "internet" addresses stay in documentation/benchmarking space: the lab never impersonates real hosts. */
const LAB_PUBLIC_KINDS = new Set(['documentation', 'benchmarking']);

function publicIpv4(field: string, v: unknown): IpAddress {
  const a = typeof v === 'string' ? tryParseIp(v) : undefined;
  if (!a || a.family !== 4) fail(field, `must be an IPv4 address, got ${JSON.stringify(v)}`);
  const r = specialRangeOf(a);
  if (!r || !LAB_PUBLIC_KINDS.has(r.kind))
    fail(field, `${formatIp(a)} must lie in a documentation or benchmarking range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15)`);
  return a;
}

/** IPv6 "internet" addresses of the lab: the documentation range only (RFC 3849). */
const LAB_PUBLIC6 = parseCidr('2001:db8::/32');

function publicIpv6(field: string, v: unknown): IpAddress {
  const a = typeof v === 'string' ? tryParseIp(v) : undefined;
  if (!a || a.family !== 6) fail(field, `must be an IPv6 address, got ${JSON.stringify(v)}`);
  if (!cidrContainsIp(LAB_PUBLIC6, a)) fail(field, `${formatIp(a)} must lie in the IPv6 documentation range 2001:db8::/32`);
  return a;
}

function publicPrefix6(field: string, v: unknown): Cidr {
  const c = typeof v === 'string' ? tryParseCidr(v) : undefined;
  if (!c || c.family !== 6) fail(field, `must be an IPv6 network like 2001:db8:100::/64 (host bits zero), got ${JSON.stringify(v)}`);
  if (c.length < 32 || c.length > 120) fail(field, `prefix length must be 32..120, got /${c.length}`);
  if (!cidrContainsIp(LAB_PUBLIC6, addressAt(c, 0))) fail(field, `${formatCidr(c)} must lie in the IPv6 documentation range 2001:db8::/32`);
  return c;
}

function publicPrefix(field: string, v: unknown): Cidr {
  const c = typeof v === 'string' ? tryParseCidr(v) : undefined;
  if (!c || c.family !== 4) fail(field, `must be an IPv4 network like 203.0.113.0/24 (host bits zero), got ${JSON.stringify(v)}`);
  if (c.length < 8 || c.length > 30) fail(field, `prefix length must be 8..30, got /${c.length}`);
  const r = specialRangeOf(addressAt(c, 0));
  if (!r || !LAB_PUBLIC_KINDS.has(r.kind) || !cidrsOverlap(r.cidr, c) || r.cidr.length > c.length)
    fail(field, `${formatCidr(c)} must lie in a documentation or benchmarking range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15)`);
  return c;
}

function parseListen(field: string, v: unknown): ListenSpec {
  const m = typeof v === 'string' ? /^(tcp|udp)\/(\d{1,5})$/.exec(v) : null;
  if (!m) fail(field, `must be "tcp/PORT" or "udp/PORT", got ${JSON.stringify(v)}`);
  return { proto: m[1] as ListenProto, port: int(field, Number(m[2]), 1, 65535) };
}

/**
 * Validates a parsed topology document and applies defaults. Throws ValidationError naming the field
 * ("customers[0].hosts[1].address") and the reason.
 */
export function validateTopology(input: unknown): LabTopology {
  if (!isObj(input)) fail('', 'the topology must be a mapping (name, sites, clients, customers…)');
  checkKeys('', input, ['name', 'store', 'api_port', 'anycast_endpoints', 'sites', 'clients', 'customers']);

  if (typeof input.name !== 'string' || !LAB_NAME_RE.test(input.name))
    fail('name', `must be 1–12 characters of [a-z0-9] starting with a letter, got ${JSON.stringify(input.name)}`);
  const name = input.name;

  const store = input.store ?? 'embedded';
  if (store !== 'embedded' && store !== 'etcd') fail('store', `must be "embedded" or "etcd", got ${JSON.stringify(store)}`);

  const apiPort = input.api_port === undefined ? 0 : int('api_port', input.api_port, 0, 65535);

  const anycast = list('anycast_endpoints', input.anycast_endpoints, false).map((v, i) => publicIpv4(`anycast_endpoints[${i}]`, v));
  if (anycast.length === 0) fail('anycast_endpoints', 'needs at least one address');

  // Every public address with the field that claimed it, to report the second claimant of a duplicate.
  const claimed = new Map<bigint, string>();
  const claim = (field: string, a: IpAddress) => {
    const prev = claimed.get(a.value);
    if (prev !== undefined) fail(field, `${formatIp(a)} is already used by ${prev}`);
    claimed.set(a.value, field);
  };
  anycast.forEach((a, i) => claim(`anycast_endpoints[${i}]`, a));
  const claimed6 = new Map<bigint, string>();
  const claim6 = (field: string, a: IpAddress) => {
    const prev = claimed6.get(a.value);
    if (prev !== undefined) fail(field, `${formatIp(a)} is already used by ${prev}`);
    claimed6.set(a.value, field);
  };

  const labels = new Map<string, string>();
  const claimLabel = (field: string, l: string) => {
    const prev = labels.get(l);
    if (prev !== undefined) fail(field, `"${l}" is already the name of ${prev} (sites, clients and customers share one namespace of names)`);
    labels.set(l, field);
  };

  const sitesIn = list('sites', input.sites, false);
  if (sitesIn.length === 0) fail('sites', 'needs at least one site');
  if (sitesIn.length > LAB_LIMITS.sites) fail('sites', `at most ${LAB_LIMITS.sites} sites`);
  const sites = sitesIn.map((s, i) => {
    const f = `sites[${i}]`;
    if (!isObj(s)) fail(f, 'must be a mapping {name, edges}');
    checkKeys(f, s, ['name', 'edges']);
    const n = label(`${f}.name`, s.name);
    claimLabel(`${f}.name`, n);
    return { name: n, edges: s.edges === undefined ? 1 : int(`${f}.edges`, s.edges, 1, LAB_LIMITS.edgesPerSite) };
  });
  const siteNames = new Set(sites.map((s) => s.name));

  const clients = list('clients', input.clients).map((c, i) => {
    const f = `clients[${i}]`;
    if (!isObj(c)) fail(f, 'must be a mapping {name, site, address}');
    checkKeys(f, c, ['name', 'site', 'address', 'address6']);
    const n = label(`${f}.name`, c.name);
    claimLabel(`${f}.name`, n);
    const address = publicIpv4(`${f}.address`, c.address);
    claim(`${f}.address`, address);
    const out: LabTopology['clients'][number] = { name: n, address: formatIp(address) };
    if (c.address6 !== undefined) {
      const a6 = publicIpv6(`${f}.address6`, c.address6);
      claim6(`${f}.address6`, a6);
      out.address6 = formatIp(a6);
    }
    if (c.site !== undefined) {
      if (typeof c.site !== 'string' || !siteNames.has(c.site))
        fail(`${f}.site`, `must name one of the sites (${[...siteNames].join(', ')}), got ${JSON.stringify(c.site)}`);
      out.site = c.site;
    }
    return out;
  });
  for (const s of sites) {
    const n = clients.filter((c) => c.site === s.name).length;
    if (n > LAB_LIMITS.clientsPerSite) fail('clients', `at most ${LAB_LIMITS.clientsPerSite} clients per site (${s.name} has ${n})`);
  }
  if (clients.filter((c) => c.site === undefined).length > LAB_LIMITS.coreClients)
    fail('clients', `at most ${LAB_LIMITS.coreClients} clients without a site`);

  const customersIn = list('customers', input.customers);
  if (customersIn.length > LAB_LIMITS.customers) fail('customers', `at most ${LAB_LIMITS.customers} customers`);
  const prefixes: { field: string; cidr: Cidr }[] = [];
  const prefixes6: { field: string; cidr: Cidr }[] = [];
  const customers = customersIn.map((c, i) => {
    const f = `customers[${i}]`;
    if (!isObj(c)) fail(f, 'must be a mapping {name, router, return, prefix, hosts}');
    checkKeys(f, c, ['name', 'router', 'return', 'prefix', 'prefix6', 'hosts']);
    const n = label(`${f}.name`, c.name);
    claimLabel(`${f}.name`, n);
    const router = publicIpv4(`${f}.router`, c.router);
    claim(`${f}.router`, router);
    const ret = c.return ?? 'tunnel';
    if (ret !== 'tunnel' && ret !== 'direct') fail(`${f}.return`, `must be "tunnel" or "direct", got ${JSON.stringify(ret)}`);

    const hostsIn = list(`${f}.hosts`, c.hosts);
    if (hostsIn.length > LAB_LIMITS.hostsPerCustomer) fail(`${f}.hosts`, `at most ${LAB_LIMITS.hostsPerCustomer} hosts`);
    let prefix: Cidr;
    if (c.prefix !== undefined) prefix = publicPrefix(`${f}.prefix`, c.prefix);
    else {
      const first = hostsIn[0];
      if (!isObj(first)) fail(`${f}.prefix`, 'is required when the customer has no hosts');
      prefix = cidrOf(publicIpv4(`${f}.hosts[0].address`, first.address), 24);
    }
    for (const p of prefixes) {
      if (cidrsOverlap(p.cidr, prefix)) fail(`${f}.prefix`, `${formatCidr(prefix)} overlaps ${formatCidr(p.cidr)} of ${p.field}`);
    }
    prefixes.push({ field: f, cidr: prefix });
    const gateway = addressAt(prefix, 1);
    let prefix6: Cidr | undefined;
    if (c.prefix6 !== undefined) prefix6 = publicPrefix6(`${f}.prefix6`, c.prefix6);
    else {
      const j = hostsIn.findIndex((h) => isObj(h) && h.address6 !== undefined);
      if (j >= 0) prefix6 = cidrOf(publicIpv6(`${f}.hosts[${j}].address6`, (hostsIn[j] as Obj).address6), 64);
    }
    if (prefix6) {
      for (const p of prefixes6) {
        if (cidrsOverlap(p.cidr, prefix6)) fail(`${f}.prefix6`, `${formatCidr(prefix6)} overlaps ${formatCidr(p.cidr)} of ${p.field}`);
      }
      prefixes6.push({ field: f, cidr: prefix6 });
    }
    const hostLabels = new Set<string>();
    const hosts = hostsIn.map((h, j) => {
      const hf = `${f}.hosts[${j}]`;
      if (!isObj(h)) fail(hf, 'must be a mapping {name, address, listen}');
      checkKeys(hf, h, ['name', 'address', 'address6', 'listen']);
      const hn = label(`${hf}.name`, h.name);
      if (hostLabels.has(hn)) fail(`${hf}.name`, `"${hn}" is already a host of ${n}`);
      hostLabels.add(hn);
      const a = publicIpv4(`${hf}.address`, h.address);
      if (!cidrContainsIp(prefix, a)) fail(`${hf}.address`, `${formatIp(a)} is outside the customer's prefix ${formatCidr(prefix)}`);
      const last = addressAt(prefix, (1n << BigInt(32 - prefix.length)) - 1n);
      if (a.value === prefix.network || a.value === last.value) fail(`${hf}.address`, `${formatIp(a)} is the network or broadcast address of ${formatCidr(prefix)}`);
      if (a.value === gateway.value) fail(`${hf}.address`, `${formatIp(a)} is the customer router's LAN address (the prefix's first address)`);
      claim(`${hf}.address`, a);
      const seen = new Set<string>();
      const listen = list(`${hf}.listen`, h.listen).map((l, k) => {
        const spec = parseListen(`${hf}.listen[${k}]`, l);
        const key = `${spec.proto}/${spec.port}`;
        if (seen.has(key)) fail(`${hf}.listen[${k}]`, `${key} is listed twice`);
        seen.add(key);
        return spec;
      });
      const host: LabTopology['customers'][number]['hosts'][number] = { name: hn, address: formatIp(a), listen };
      if (h.address6 !== undefined) {
        const a6 = publicIpv6(`${hf}.address6`, h.address6);
        if (!prefix6 || !cidrContainsIp(prefix6, a6)) fail(`${hf}.address6`, `${formatIp(a6)} is outside the customer's IPv6 prefix ${prefix6 ? formatCidr(prefix6) : '(none)'}`);
        if (a6.value === prefix6.network) fail(`${hf}.address6`, `${formatIp(a6)} is the network address of ${formatCidr(prefix6)}`);
        if (a6.value === prefix6.network + 1n) fail(`${hf}.address6`, `${formatIp(a6)} is the customer router's LAN address (the prefix's ::1)`);
        claim6(`${hf}.address6`, a6);
        host.address6 = formatIp(a6);
      }
      return host;
    });
    const customer: LabTopology['customers'][number] = { name: n, router: formatIp(router), return: ret as ReturnPath, prefix: formatCidr(prefix), hosts };
    if (prefix6) customer.prefix6 = formatCidr(prefix6);
    return customer;
  });

  // Public addresses outside customer prefixes must not fall inside one (they would be routed into the tunnel).
  for (const [value, field] of claimed) {
    if (field.includes('.hosts[')) continue;
    for (const p of prefixes) {
      if (cidrContainsIp(p.cidr, { family: 4, value })) fail(field, `${formatIp({ family: 4, value })} lies inside ${formatCidr(p.cidr)}, the prefix of ${p.field}`);
    }
  }

  for (const [value, field] of claimed6) {
    if (field.includes('.hosts[')) continue;
    for (const p of prefixes6) {
      if (cidrContainsIp(p.cidr, { family: 6, value })) fail(field, `${formatIp({ family: 6, value })} lies inside ${formatCidr(p.cidr)}, the IPv6 prefix of ${p.field}`);
    }
  }

  return { name, store, apiPort, anycastEndpoints: anycast.map(formatIp), sites, clients, customers };
}

// --- the plan ----------------------------------------------------------------------------------------------------

export type LabRole = 'core' | 'site-router' | 'edge' | 'client' | 'customer-router' | 'customer-host';

export const CORE_HOST = 'internet';
export const UPLINK = 'uplink';
export const LAN_BRIDGE = 'lan';
/** The core's AS; site router i (0-based) is CORE_ASN + 1 + i. */
export const CORE_ASN = 65000;
/** The operator's AS: every edge server of every site announces from it (one network, many sites). */
export const EDGE_ASN = 64512;

export interface LabInterface {
  /** Interface name inside the host's namespace. */
  name: string;
  /** `addr/len` (a /31 for lab links). */
  address: string;
  /** The host and interface at the other end. */
  peerHost: string;
  peerInterface: string;
  peerAddress: string;
  /** IPv6 twins (`addr/127` on routed links) when the lab has IPv6. */
  address6?: string;
  peerAddress6?: string;
}

export interface LabRoute {
  /** `addr/len` or 'default'. */
  dst: string;
  /** 6 for an IPv6 route (needed to tell an IPv6 'default'); default 4. */
  family?: 4 | 6;
  via: string;
  dev: string;
  /** Preferred source (a public /32 on lo), so traffic leaves with the host's public address. */
  src?: string;
}

export interface LabBgpPeer {
  /** BIRD protocol name (letters, digits, '_'); never `router` (DESIGN.md §2). */
  protocol: string;
  peerHost: string;
  neighbor: string;
  localAddress: string;
  localAsn: number;
  peerAsn: number;
  /** What this side sends: 'all' (the core), 'statics+edges' (site router → core), 'none' (site router → edges). */
  export: 'all' | 'statics+edges' | 'none';
  /** Sessions to edges wait for the edge agent's BIRD to connect. */
  passive: boolean;
}

export interface LabHostPlan {
  name: string;
  netns: string;
  role: LabRole;
  site?: string;
  customer?: string;
  /** Links whose creating ("upstream") end is here are listed in plan.links; every end is listed here. */
  interfaces: LabInterface[];
  /** /32 public addresses on `lo`. */
  loopback: string[];
  /** Customer routers: the LAN bridge, its address(es) and the host-facing veths enslaved to it. */
  bridge?: { name: string; address: string; address6?: string; members: string[] };
  /**
   * Kernel static routes the lab installs itself (protocol static): host default routes, and a router's route to
   * a directly attached public host. Never inter-site or anycast routes: those come from BGP.
   */
  routes: LabRoute[];
  /** BGP routers (core, site routers): prefixes BIRD originates (announce-only) so other routers learn them. */
  announce: string[];
  bgpPeers: LabBgpPeer[];
  asn?: number;
  /** BGP router id (the router's first link address). */
  routerId?: string;
  sysctls: Record<string, string | number>;
}

export interface LabLink {
  /** The upstream end: the veth is created in this host's namespace. */
  a: { host: string; dev: string; address: string; address6?: string };
  b: { host: string; dev: string; address: string; address6?: string };
  subnet: string;
}

/** Everything an edge agent (and its BIRD) needs to join the lab: the hook for the agent work. */
export interface LabEdgePlan {
  name: string;
  /** The node id the agent registers under (= the lab host name). */
  nodeId: string;
  site: string;
  index: number;
  netns: string;
  uplink: { dev: string; address: string; gateway: string };
  /** The uplink's IPv6 address (`addr/127`) and gateway, when the lab has IPv6: the edge's BGP session for IPv6. */
  uplink6?: { address: string; gateway: string };
  asn: number;
  router: { host: string; address: string; address6?: string; asn: number };
}

export interface LabCustomerPlan {
  name: string;
  routerHost: string;
  routerNetns: string;
  publicAddress: string;
  prefix: string;
  lanAddress: string;
  /** IPv6 LAN prefix and the router's address in it (its ::1), when the customer has one. */
  prefix6?: string;
  lanAddress6?: string;
  return: ReturnPath;
  /** Suggested GRE tunnel interface (10.200.k.0/31): edge side .0, customer side .1. */
  tunnel: { interfaceAddress: string; edgeSide: string; customerSide: string };
  hosts: { name: string; host: string; netns: string; address: string; address6?: string; listen: ListenSpec[] }[];
}

export interface LabPlan {
  name: string;
  /** `otl-<name>-`: every namespace of this lab starts with it. */
  netnsPrefix: string;
  anycastEndpoints: string[];
  /** The lab runs IPv6 too (some client or customer host has an address6): see the addressing plan above. */
  ipv6: boolean;
  /** Hosts in build order (upstream before downstream). */
  hosts: LabHostPlan[];
  links: LabLink[];
  edges: LabEdgePlan[];
  customers: LabCustomerPlan[];
}

export function netnsPrefixOf(labName: string): string {
  return `otl-${labName}-`;
}

const add = (base: string, offset: number) => formatIp(addressAt(parseCidr(base), offset));

/** Router sysctls: forwarding, L4 ECMP hashing, no reverse-path filter (anycast and DSR paths are asymmetric). */
function routerSysctls(): Record<string, number> {
  return {
    'net.ipv4.ip_forward': 1,
    'net.ipv4.fib_multipath_hash_policy': 1,
    'net.ipv4.conf.all.rp_filter': 0,
    'net.ipv4.conf.default.rp_filter': 0,
  };
}

/** End hosts: no forwarding, but rp_filter off all the same (replies may come back another way). */
function hostSysctls(): Record<string, number> {
  return { 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0, 'net.ipv4.fib_multipath_hash_policy': 1 };
}

/** BIRD protocol names: letters, digits and '_' (a host label never has '_' nor '-'). */
const bgpName = (prefix: string, label: string) => `${prefix}_${label}`;

/** The IPv6 twin of a lab link address: fd6c::/96 + the IPv4 address (a /31's pair is a /127's pair). */
export function linkAddress6(ipv4: string): string {
  return formatIp({ family: 6, value: (0xfd6cn << 112n) | parseCidr(`${ipv4}/32`).network });
}

/** IPv6 sysctls of every host of an IPv6 lab: no duplicate address detection (addresses usable at once, which
 * BIRD and the first packets need; the lab plans every address, so there are no duplicates to detect). */
function ipv6Sysctls(role: LabRole): Record<string, number> {
  const out: Record<string, number> = { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 };
  if (role === 'core' || role === 'site-router' || role === 'customer-router') {
    out['net.ipv6.conf.all.forwarding'] = 1;
    out['net.ipv6.fib_multipath_hash_policy'] = 1;
  }
  return out;
}

/**
 * The addressing and routing plan of a validated topology. Pure and deterministic: the same topology always
 * gives the same plan, so a crashed lab's leftovers are found again by name.
 */
export function planLab(t: LabTopology): LabPlan {
  const prefix = netnsPrefixOf(t.name);
  const ipv6 = t.clients.some((c) => c.address6 !== undefined) || t.customers.some((c) => c.hosts.some((h) => h.address6 !== undefined));
  const hosts = new Map<string, LabHostPlan>();
  const links: LabLink[] = [];
  const host = (name: string, role: LabRole, extra: Partial<LabHostPlan> = {}): LabHostPlan => {
    const h: LabHostPlan = {
      name,
      netns: prefix + name,
      role,
      interfaces: [],
      loopback: [],
      routes: [],
      announce: [],
      bgpPeers: [],
      sysctls: {
        ...(role === 'core' || role === 'site-router' || role === 'customer-router' ? routerSysctls() : hostSysctls()),
        ...(ipv6 ? ipv6Sysctls(role) : {}),
      },
      ...extra,
    };
    hosts.set(name, h);
    return h;
  };
  /** A /31 link: `a` (upstream) gets the even address, `b` the odd one. */
  const link = (a: LabHostPlan, aDev: string, b: LabHostPlan, bDev: string, subnet: string): LabLink => {
    const aAddr = add(subnet, 0);
    const bAddr = add(subnet, 1);
    const ia: LabInterface = { name: aDev, address: `${aAddr}/31`, peerHost: b.name, peerInterface: bDev, peerAddress: bAddr };
    const ib: LabInterface = { name: bDev, address: `${bAddr}/31`, peerHost: a.name, peerInterface: aDev, peerAddress: aAddr };
    const l: LabLink = { a: { host: a.name, dev: aDev, address: `${aAddr}/31` }, b: { host: b.name, dev: bDev, address: `${bAddr}/31` }, subnet };
    if (ipv6) {
      const [a6, b6] = [linkAddress6(aAddr), linkAddress6(bAddr)];
      Object.assign(ia, { address6: `${a6}/127`, peerAddress6: b6 });
      Object.assign(ib, { address6: `${b6}/127`, peerAddress6: a6 });
      l.a.address6 = `${a6}/127`;
      l.b.address6 = `${b6}/127`;
    }
    a.interfaces.push(ia);
    b.interfaces.push(ib);
    links.push(l);
    return l;
  };

  const core = host(CORE_HOST, 'core', { asn: CORE_ASN, routerId: '100.64.0.0' });
  const edges: LabEdgePlan[] = [];
  /** An IPv4 session's IPv6 twin over the same link (IPv6 labs): BIRD carries one family per session here. */
  const peer6 = (p: LabBgpPeer, protocol: string): LabBgpPeer => ({ ...p, protocol, neighbor: linkAddress6(p.neighbor), localAddress: linkAddress6(p.localAddress) });
  const withPeer6 = (h: LabHostPlan, protocol6: string) => {
    if (ipv6) h.bgpPeers.push(peer6(h.bgpPeers.at(-1)!, protocol6));
  };

  t.sites.forEach((s, i) => {
    const asn = CORE_ASN + 1 + i;
    const router = host(`${s.name}-router`, 'site-router', { site: s.name, asn, routerId: add('100.64.0.0/24', 2 * i + 1) });
    link(core, s.name, router, UPLINK, `100.64.0.${2 * i}/31`);
    core.bgpPeers.push({
      protocol: bgpName('site', s.name),
      peerHost: router.name,
      neighbor: add('100.64.0.0/24', 2 * i + 1),
      localAddress: add('100.64.0.0/24', 2 * i),
      localAsn: CORE_ASN,
      peerAsn: asn,
      export: 'all',
      passive: false,
    });
    withPeer6(core, bgpName('site6', s.name));
    router.bgpPeers.push({
      protocol: 'core',
      peerHost: core.name,
      neighbor: add('100.64.0.0/24', 2 * i),
      localAddress: add('100.64.0.0/24', 2 * i + 1),
      localAsn: asn,
      peerAsn: CORE_ASN,
      export: 'statics+edges',
      passive: false,
    });
    withPeer6(router, 'core6');
    for (let n = 1; n <= s.edges; n++) {
      const edgeName = `${s.name}-edge${n}`;
      const edge = host(edgeName, 'edge', { site: s.name });
      const subnet = `100.65.${i}.${2 * (n - 1)}/31`;
      link(router, `edge${n}`, edge, UPLINK, subnet);
      const routerAddr = add(subnet, 0);
      const edgeAddr = add(subnet, 1);
      edge.routes.push({ dst: 'default', via: routerAddr, dev: UPLINK });
      if (ipv6) edge.routes.push({ dst: 'default', family: 6, via: linkAddress6(routerAddr), dev: UPLINK });
      router.bgpPeers.push({
        protocol: bgpName('edge', String(n)),
        peerHost: edgeName,
        neighbor: edgeAddr,
        localAddress: routerAddr,
        localAsn: asn,
        peerAsn: EDGE_ASN,
        export: 'none',
        passive: true,
      });
      withPeer6(router, bgpName('edge6', String(n)));
      edges.push({
        name: edgeName,
        nodeId: edgeName,
        site: s.name,
        index: n,
        netns: edge.netns,
        uplink: { dev: UPLINK, address: `${edgeAddr}/31`, gateway: routerAddr },
        asn: EDGE_ASN,
        router: { host: router.name, address: routerAddr, asn, ...(ipv6 ? { address6: linkAddress6(routerAddr) } : {}) },
        ...(ipv6 ? { uplink6: { address: `${linkAddress6(edgeAddr)}/127`, gateway: linkAddress6(routerAddr) } } : {}),
      });
    }
  });

  const siteIndex = new Map(t.sites.map((s, i) => [s.name, i]));
  const perSiteClients = new Map<string, number>();
  let coreClients = 0;
  for (const c of t.clients) {
    const client = host(c.name, 'client', c.site !== undefined ? { site: c.site } : {});
    client.loopback.push(`${c.address}/32`);
    let upstream: LabHostPlan;
    let subnet: string;
    if (c.site !== undefined) {
      const i = siteIndex.get(c.site)!;
      const j = perSiteClients.get(c.site) ?? 0;
      perSiteClients.set(c.site, j + 1);
      upstream = hosts.get(`${c.site}-router`)!;
      subnet = `100.65.${i}.${128 + 2 * j}/31`;
    } else {
      upstream = core;
      subnet = `100.64.2.${2 * coreClients}/31`;
      coreClients += 1;
    }
    link(upstream, c.name, client, UPLINK, subnet);
    client.routes.push({ dst: 'default', via: add(subnet, 0), dev: UPLINK, src: c.address });
    // The client's router forwards to it and originates its /32 into BGP, so every site and the core reach it.
    upstream.routes.push({ dst: `${c.address}/32`, via: add(subnet, 1), dev: c.name });
    upstream.announce.push(`${c.address}/32`);
    if (ipv6) client.routes.push({ dst: 'default', family: 6, via: linkAddress6(add(subnet, 0)), dev: UPLINK, ...(c.address6 ? { src: c.address6 } : {}) });
    if (c.address6) {
      client.loopback.push(`${c.address6}/128`);
      upstream.routes.push({ dst: `${c.address6}/128`, via: linkAddress6(add(subnet, 1)), dev: c.name });
      upstream.announce.push(`${c.address6}/128`);
    }
  }

  const customers: LabCustomerPlan[] = [];
  t.customers.forEach((c, k) => {
    const routerName = `${c.name}-router`;
    const router = host(routerName, 'customer-router', { customer: c.name });
    router.loopback.push(`${c.router}/32`);
    const subnet = `100.64.1.${2 * k}/31`;
    link(core, c.name, router, UPLINK, subnet);
    router.routes.push({ dst: 'default', via: add(subnet, 0), dev: UPLINK, src: c.router });
    // IPv6 to the internet without a tunnel: only direct return (DSR) uses it; tunnel return takes policy routes.
    if (ipv6) router.routes.push({ dst: 'default', family: 6, via: linkAddress6(add(subnet, 0)), dev: UPLINK });
    core.routes.push({ dst: `${c.router}/32`, via: add(subnet, 1), dev: c.name });
    core.announce.push(`${c.router}/32`);
    const prefixCidr = parseCidr(c.prefix);
    const lanAddress = formatIp(addressAt(prefixCidr, 1));
    router.bridge = { name: LAN_BRIDGE, address: `${lanAddress}/${prefixCidr.length}`, members: [] };
    const prefix6Cidr = c.prefix6 !== undefined ? parseCidr(c.prefix6) : undefined;
    const lanAddress6 = prefix6Cidr ? formatIp(addressAt(prefix6Cidr, 1)) : undefined;
    if (prefix6Cidr) router.bridge.address6 = `${lanAddress6}/${prefix6Cidr.length}`;
    const hostPlans: LabCustomerPlan['hosts'] = [];
    for (const h of c.hosts) {
      const hostName = `${c.name}-${h.name}`;
      const hp = host(hostName, 'customer-host', { customer: c.name });
      const address = `${h.address}/${prefixCidr.length}`;
      // A bridge port, not a routed link: the veth's router end has no address of its own.
      router.interfaces.push({ name: h.name, address: '', peerHost: hostName, peerInterface: UPLINK, peerAddress: h.address });
      hp.interfaces.push({ name: UPLINK, address, peerHost: routerName, peerInterface: LAN_BRIDGE, peerAddress: lanAddress });
      links.push({ a: { host: routerName, dev: h.name, address: '' }, b: { host: hostName, dev: UPLINK, address }, subnet: c.prefix });
      router.bridge.members.push(h.name);
      hp.routes.push({ dst: 'default', via: lanAddress, dev: UPLINK });
      const hostPlan: LabCustomerPlan['hosts'][number] = { name: h.name, host: hostName, netns: hp.netns, address: h.address, listen: h.listen };
      if (h.address6 !== undefined && prefix6Cidr) {
        const iface = hp.interfaces.at(-1)!;
        iface.address6 = `${h.address6}/${prefix6Cidr.length}`;
        iface.peerAddress6 = lanAddress6!;
        links.at(-1)!.b.address6 = iface.address6;
        hp.routes.push({ dst: 'default', family: 6, via: lanAddress6!, dev: UPLINK });
        hostPlan.address6 = h.address6;
      }
      hostPlans.push(hostPlan);
    }
    const tunnelNet = `10.200.${k}.0/31`;
    customers.push({
      name: c.name,
      routerHost: routerName,
      routerNetns: router.netns,
      publicAddress: c.router,
      prefix: c.prefix,
      lanAddress,
      ...(prefix6Cidr ? { prefix6: c.prefix6!, lanAddress6: lanAddress6! } : {}),
      return: c.return,
      tunnel: { interfaceAddress: tunnelNet, edgeSide: add(tunnelNet, 0), customerSide: add(tunnelNet, 1) },
      hosts: hostPlans,
    });
  });

  return { name: t.name, netnsPrefix: prefix, anycastEndpoints: [...t.anycastEndpoints], ipv6, hosts: [...hosts.values()], links, edges, customers };
}
