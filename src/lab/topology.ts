/**
 * The lab's topology file (examples/lab.yaml): parsing, validation with errors that name the field, defaults, and
 * the pure addressing plan — which namespaces, links, addresses, routes, sysctls and BGP sessions the lab builds.
 * Nothing here touches the kernel: build.ts executes the plan, and the plan is unit-tested without root.
 *
 * Addressing plan (all IPv4; see planLab for the exact rules):
 *   100.64.0.0/24    core ↔ site routers, site i (0-based): 100.64.0.<2i>/31, core .2i, router .2i+1
 *   100.64.1.0/24    core ↔ customer routers, customer k: 100.64.1.<2k>/31, core even, router odd
 *   100.64.2.0/24    core ↔ clients without a site, client j: 100.64.2.<2j>/31
 *   100.65.<i>.0/24  site i: edge n (1-based) 100.65.i.<2(n-1)>/31 (router even, edge odd);
 *                    its clients from 100.65.i.128 (router even, client odd)
 *   10.200.<k>.0/31  customer k's suggested GRE tunnel interface (edge side .0, customer side .1), as in
 *                    examples/acme.yaml — not configured by the lab, offered to whoever seeds the account
 * Public addresses (clients, customer routers) sit on the host's `lo` as /32; a customer's hosts share a bridge
 * `lan` on its router, which holds the prefix's first address (203.0.113.1/24 for 203.0.113.0/24).
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
  clients: { name: string; site?: string; address: string }[];
  customers: {
    name: string;
    /** The router's public address (GRE endpoint). */
    router: string;
    return: ReturnPath;
    /** The customer's prefix (default: the /24 holding its first host). */
    prefix: string;
    hosts: { name: string; address: string; listen: ListenSpec[] }[];
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
  if (store === 'etcd') fail('store', '"etcd" (a 3-member cluster on loopback) is not implemented yet; use "embedded"');

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
    checkKeys(f, c, ['name', 'site', 'address']);
    const n = label(`${f}.name`, c.name);
    claimLabel(`${f}.name`, n);
    const address = publicIpv4(`${f}.address`, c.address);
    claim(`${f}.address`, address);
    const out: LabTopology['clients'][number] = { name: n, address: formatIp(address) };
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
  const customers = customersIn.map((c, i) => {
    const f = `customers[${i}]`;
    if (!isObj(c)) fail(f, 'must be a mapping {name, router, return, prefix, hosts}');
    checkKeys(f, c, ['name', 'router', 'return', 'prefix', 'hosts']);
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
    const hostLabels = new Set<string>();
    const hosts = hostsIn.map((h, j) => {
      const hf = `${f}.hosts[${j}]`;
      if (!isObj(h)) fail(hf, 'must be a mapping {name, address, listen}');
      checkKeys(hf, h, ['name', 'address', 'listen']);
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
      return { name: hn, address: formatIp(a), listen };
    });
    return { name: n, router: formatIp(router), return: ret as ReturnPath, prefix: formatCidr(prefix), hosts };
  });

  // Public addresses outside customer prefixes must not fall inside one (they would be routed into the tunnel).
  for (const [value, field] of claimed) {
    if (field.includes('.hosts[')) continue;
    for (const p of prefixes) {
      if (cidrContainsIp(p.cidr, { family: 4, value })) fail(field, `${formatIp({ family: 4, value })} lies inside ${formatCidr(p.cidr)}, the prefix of ${p.field}`);
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
}

export interface LabRoute {
  /** `addr/len` or 'default'. */
  dst: string;
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
  /** Customer routers: the LAN bridge, its address and the host-facing veths enslaved to it. */
  bridge?: { name: string; address: string; members: string[] };
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
  a: { host: string; dev: string; address: string };
  b: { host: string; dev: string; address: string };
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
  asn: number;
  router: { host: string; address: string; asn: number };
}

export interface LabCustomerPlan {
  name: string;
  routerHost: string;
  routerNetns: string;
  publicAddress: string;
  prefix: string;
  lanAddress: string;
  return: ReturnPath;
  /** Suggested GRE tunnel interface (10.200.k.0/31): edge side .0, customer side .1. */
  tunnel: { interfaceAddress: string; edgeSide: string; customerSide: string };
  hosts: { name: string; host: string; netns: string; address: string; listen: ListenSpec[] }[];
}

export interface LabPlan {
  name: string;
  /** `otl-<name>-`: every namespace of this lab starts with it. */
  netnsPrefix: string;
  anycastEndpoints: string[];
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

/**
 * The addressing and routing plan of a validated topology. Pure and deterministic: the same topology always
 * gives the same plan, so a crashed lab's leftovers are found again by name.
 */
export function planLab(t: LabTopology): LabPlan {
  const prefix = netnsPrefixOf(t.name);
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
      sysctls: role === 'core' || role === 'site-router' || role === 'customer-router' ? routerSysctls() : hostSysctls(),
      ...extra,
    };
    hosts.set(name, h);
    return h;
  };
  /** A /31 link: `a` (upstream) gets the even address, `b` the odd one. */
  const link = (a: LabHostPlan, aDev: string, b: LabHostPlan, bDev: string, subnet: string): LabLink => {
    const aAddr = add(subnet, 0);
    const bAddr = add(subnet, 1);
    a.interfaces.push({ name: aDev, address: `${aAddr}/31`, peerHost: b.name, peerInterface: bDev, peerAddress: bAddr });
    b.interfaces.push({ name: bDev, address: `${bAddr}/31`, peerHost: a.name, peerInterface: aDev, peerAddress: aAddr });
    const l: LabLink = { a: { host: a.name, dev: aDev, address: `${aAddr}/31` }, b: { host: b.name, dev: bDev, address: `${bAddr}/31` }, subnet };
    links.push(l);
    return l;
  };

  const core = host(CORE_HOST, 'core', { asn: CORE_ASN, routerId: '100.64.0.0' });
  const edges: LabEdgePlan[] = [];

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
    for (let n = 1; n <= s.edges; n++) {
      const edgeName = `${s.name}-edge${n}`;
      const edge = host(edgeName, 'edge', { site: s.name });
      const subnet = `100.65.${i}.${2 * (n - 1)}/31`;
      link(router, `edge${n}`, edge, UPLINK, subnet);
      const routerAddr = add(subnet, 0);
      const edgeAddr = add(subnet, 1);
      edge.routes.push({ dst: 'default', via: routerAddr, dev: UPLINK });
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
      edges.push({
        name: edgeName,
        nodeId: edgeName,
        site: s.name,
        index: n,
        netns: edge.netns,
        uplink: { dev: UPLINK, address: `${edgeAddr}/31`, gateway: routerAddr },
        asn: EDGE_ASN,
        router: { host: router.name, address: routerAddr, asn },
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
  }

  const customers: LabCustomerPlan[] = [];
  t.customers.forEach((c, k) => {
    const routerName = `${c.name}-router`;
    const router = host(routerName, 'customer-router', { customer: c.name });
    router.loopback.push(`${c.router}/32`);
    const subnet = `100.64.1.${2 * k}/31`;
    link(core, c.name, router, UPLINK, subnet);
    router.routes.push({ dst: 'default', via: add(subnet, 0), dev: UPLINK, src: c.router });
    core.routes.push({ dst: `${c.router}/32`, via: add(subnet, 1), dev: c.name });
    core.announce.push(`${c.router}/32`);
    const prefixCidr = parseCidr(c.prefix);
    const lanAddress = formatIp(addressAt(prefixCidr, 1));
    router.bridge = { name: LAN_BRIDGE, address: `${lanAddress}/${prefixCidr.length}`, members: [] };
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
      hostPlans.push({ name: h.name, host: hostName, netns: hp.netns, address: h.address, listen: h.listen });
    }
    const tunnelNet = `10.200.${k}.0/31`;
    customers.push({
      name: c.name,
      routerHost: routerName,
      routerNetns: router.netns,
      publicAddress: c.router,
      prefix: c.prefix,
      lanAddress,
      return: c.return,
      tunnel: { interfaceAddress: tunnelNet, edgeSide: add(tunnelNet, 0), customerSide: add(tunnelNet, 1) },
      hosts: hostPlans,
    });
  });

  return { name: t.name, netnsPrefix: prefix, anycastEndpoints: [...t.anycastEndpoints], hosts: [...hosts.values()], links, edges, customers };
}
