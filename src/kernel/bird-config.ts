/**
 * BIRD 2 (2.0.12) configuration, rendered from structured data only. Every value is checked before it becomes
 * config text (KernelInputError names the field): a stray quote, brace or semicolon would change the meaning of
 * the whole file. Pure: no I/O here; src/kernel/bird.ts validates the rendered text with `bird -p` before use.
 *
 * What an edge can announce is bounded twice: a static route must exist, and each BGP export filter accepts only
 * the exact prefixes of its list (`net ~ [ … ]`, no `+`), so a bug elsewhere cannot leak a more specific route.
 */
import { isIPv4 } from 'node:net';
import { KernelInputError } from './exec.js';
import { BIRD_RESERVED_WORDS } from './bird-keywords.js';
import { checkInt } from './validate.js';
import { formatCidr, formatIp, parseCidr, tryParseIp, IpFormatError } from '../model/ip.js';

export type BirdFamily = 4 | 6;

/** Which routes a BGP channel takes in or sends out: every route, none, or exactly the listed prefixes. */
export type BirdRoutePolicy = 'all' | 'none' | readonly string[];

export interface BirdKernelSpec {
  /** Kernel routing table to sync with (default: main). */
  table?: number;
  /**
   * 'all': install every route BIRD selected — except the static announce routes, which exist only to be
   * announced (a blackhole for a customer prefix on an edge would eat the customer's traffic). 'none': install
   * nothing (edges: they announce, they need no routes back).
   */
  export: 'none' | 'all';
  /** ECMP: merge equally good routes from several peers into one multipath kernel route (`merge paths on`). */
  mergePaths: boolean;
  /** Most nexthops per merged route (BIRD's default 16). */
  mergePathsLimit?: number;
  /** Learn routes other daemons or the admin put in the kernel table (`learn`). Default false. */
  learn?: boolean;
  /** Seconds between kernel table scans (default BIRD's 60). */
  scanTime?: number;
}

/** A route that exists only to be announced: it never forwards (and the kernel protocol never installs it). */
export interface BirdStaticRoute {
  prefix: string;
  /** Default 'blackhole'. */
  type?: 'blackhole' | 'unreachable' | 'prohibit';
}

export interface BirdBfdSpec {
  /** Transmit and receive interval, milliseconds (default 50). */
  intervalMs?: number;
  /** Missed packets before the session is down (default 3): 50 ms × 3 detects a dead link in ~150 ms. */
  multiplier?: number;
}

export interface BirdBgpPeerSpec {
  /** BIRD protocol name: [a-z][a-z0-9_]*, ≤ 64 characters, not a BIRD keyword (e.g. `router`) nor one of ours. */
  name: string;
  neighbor: string;
  remoteAs: number;
  /** Source address of the session (same family as neighbor). */
  localAddress?: string;
  /** Bind the session to this interface (direct sessions). */
  interface?: string;
  /** TTL for a neighbour not on a shared link (2–255). Absent: a direct eBGP session (TTL 1). */
  multihop?: number;
  bfd: boolean;
  /** Seconds, 3–65535. */
  holdTime: number;
  /** Seconds; at most half of holdTime. */
  keepaliveTime: number;
  /** TCP-MD5 key: 1–80 printable ASCII characters without space, '"' or '\'. */
  password?: string;
  /** Never connect; wait for the neighbour. */
  passive?: boolean;
  import: BirdRoutePolicy;
  export: BirdRoutePolicy;
  nextHopSelf?: boolean;
  addPaths?: 'tx' | 'rx' | 'on';
  /** Seconds before the first connect attempt (BIRD's default 5). */
  connectDelayTime?: number;
  /** Seconds between connect attempts (BIRD's default 120). */
  connectRetryTime?: number;
  /** Back-off after a session error, min and max seconds (BIRD's default 60, 300). */
  errorWaitTime?: { min: number; max: number };
}

export interface BirdConfigSpec {
  /** IPv4 dotted quad, unique among the BGP speakers. */
  routerId: string;
  /** Local AS of every BGP session (1–4294967295). */
  asn: number;
  /** Absolute path of BIRD's log file. Absent: BIRD logs to stderr (startBird sends it to a file). */
  logFile?: string;
  /** Seconds between interface scans (default 10). */
  deviceScanTime?: number;
  kernel: BirdKernelSpec;
  /** Interface names (or `eth*` patterns) whose connected networks BIRD should know (`protocol direct`). */
  directInterfaces?: readonly string[];
  staticRoutes: readonly BirdStaticRoute[];
  bgpPeers: readonly BirdBgpPeerSpec[];
  /** BFD timers for peers with `bfd: true`. */
  bfd?: BirdBfdSpec;
}

/** Names of the protocols the renderer writes itself: a peer cannot take them. */
export const BIRD_INTERNAL_PROTOCOLS = ['device1', 'direct1', 'kernel4', 'kernel6', 'static4', 'static6', 'bfd1'] as const;

const PROTOCOL_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
/** Interface name, or a pattern with one trailing '*' (BIRD matches shell-like patterns). */
const IFACE_PATTERN_RE = /^(\*|[A-Za-z0-9_-]{1,15}\*?)$/;
/** Absolute path of safe characters: it is written inside a BIRD string. */
const PATH_RE = /^\/[A-Za-z0-9_.\/-]{1,4000}$/;
const PASSWORD_RE = /^[!#-\[\]-~]{1,80}$/;

// --- checks ----------------------------------------------------------------------------------------------------

export function checkProtocolName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !PROTOCOL_NAME_RE.test(v))
    throw new KernelInputError(field, `must be 1–64 characters of [a-z0-9_] starting with a letter, got ${JSON.stringify(v)}`);
  if ((BIRD_INTERNAL_PROTOCOLS as readonly string[]).includes(v)) throw new KernelInputError(field, `"${v}" is a protocol the renderer writes itself`);
  // `router` bit us first (DESIGN.md §2); BIRD reserves hundreds of words.
  if (BIRD_RESERVED_WORDS.has(v)) throw new KernelInputError(field, `"${v}" is a BIRD keyword and cannot name a protocol`);
  return v;
}

/** A unicast IP address in canonical text. */
function checkAddress(field: string, v: unknown): { text: string; family: BirdFamily } {
  const a = typeof v === 'string' ? tryParseIp(v) : undefined;
  if (!a) throw new KernelInputError(field, `must be an IPv4 or IPv6 address, got ${JSON.stringify(v)}`);
  return { text: formatIp(a), family: a.family };
}

function checkRouterId(field: string, v: unknown): string {
  if (typeof v !== 'string' || !isIPv4(v) || tryParseIp(v) === undefined)
    throw new KernelInputError(field, `must be an IPv4 address (dotted quad), got ${JSON.stringify(v)}`);
  if (v === '0.0.0.0') throw new KernelInputError(field, 'must not be 0.0.0.0');
  return formatIp(tryParseIp(v)!);
}

/** A network with zero host bits, canonical text. */
export function checkPrefix(field: string, v: unknown): { text: string; family: BirdFamily } {
  if (typeof v !== 'string') throw new KernelInputError(field, `must be a network like 203.0.113.0/24, got ${JSON.stringify(v)}`);
  try {
    const c = parseCidr(v);
    return { text: formatCidr(c), family: c.family };
  } catch (e) {
    if (e instanceof IpFormatError) throw new KernelInputError(field, e.message);
    throw e;
  }
}

function checkPath(field: string, v: unknown): string {
  if (typeof v !== 'string' || !PATH_RE.test(v) || v.split('/').some((p) => p === '..'))
    throw new KernelInputError(field, `must be an absolute path of [A-Za-z0-9_./-] without "..", got ${JSON.stringify(v)}`);
  return v;
}

function checkIfacePattern(field: string, v: unknown): string {
  if (typeof v !== 'string' || !IFACE_PATTERN_RE.test(v))
    throw new KernelInputError(field, `must be an interface name (1–15 of [A-Za-z0-9_-]) optionally ending in '*', got ${JSON.stringify(v)}`);
  return v;
}

function checkBool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new KernelInputError(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function checkOneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v))
    throw new KernelInputError(field, `must be one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** A policy whose prefixes are all of `family` (a channel carries one family), canonical and without duplicates. */
function checkPolicy(field: string, v: unknown, family: BirdFamily): 'all' | 'none' | string[] {
  if (v === 'all' || v === 'none') return v;
  if (!Array.isArray(v)) throw new KernelInputError(field, `must be 'all', 'none' or a list of prefixes, got ${JSON.stringify(v)}`);
  const out: string[] = [];
  v.forEach((p, i) => {
    const c = checkPrefix(`${field}[${i}]`, p);
    if (c.family !== family)
      throw new KernelInputError(`${field}[${i}]`, `${c.text} is IPv${c.family} but this session carries IPv${family} (its neighbor's family)`);
    if (!out.includes(c.text)) out.push(c.text);
  });
  return out;
}

// --- normalised spec -------------------------------------------------------------------------------------------

interface CheckedPeer {
  name: string;
  neighbor: string;
  family: BirdFamily;
  remoteAs: number;
  localAddress?: string;
  interface?: string;
  multihop?: number;
  bfd: boolean;
  holdTime: number;
  keepaliveTime: number;
  password?: string;
  passive: boolean;
  import: 'all' | 'none' | string[];
  export: 'all' | 'none' | string[];
  nextHopSelf: boolean;
  addPaths?: 'tx' | 'rx' | 'on';
  connectDelayTime?: number;
  connectRetryTime?: number;
  errorWaitTime?: { min: number; max: number };
}

function checkPeer(at: string, p: BirdBgpPeerSpec): CheckedPeer {
  if (typeof p !== 'object' || p === null) throw new KernelInputError(at, 'must be an object');
  const neighbor = checkAddress(`${at}.neighbor`, p.neighbor);
  const holdTime = checkInt(`${at}.holdTime`, p.holdTime, 3, 65535);
  const keepaliveTime = checkInt(`${at}.keepaliveTime`, p.keepaliveTime, 1, 32767);
  if (keepaliveTime * 2 > holdTime) throw new KernelInputError(`${at}.keepaliveTime`, `${keepaliveTime} s is more than half the hold time (${holdTime} s)`);
  const out: CheckedPeer = {
    name: checkProtocolName(`${at}.name`, p.name),
    neighbor: neighbor.text,
    family: neighbor.family,
    remoteAs: checkInt(`${at}.remoteAs`, p.remoteAs, 1, 4294967295),
    bfd: checkBool(`${at}.bfd`, p.bfd),
    holdTime,
    keepaliveTime,
    passive: p.passive === undefined ? false : checkBool(`${at}.passive`, p.passive),
    import: checkPolicy(`${at}.import`, p.import, neighbor.family),
    export: checkPolicy(`${at}.export`, p.export, neighbor.family),
    nextHopSelf: p.nextHopSelf === undefined ? false : checkBool(`${at}.nextHopSelf`, p.nextHopSelf),
  };
  if (p.localAddress !== undefined) {
    const local = checkAddress(`${at}.localAddress`, p.localAddress);
    if (local.family !== neighbor.family) throw new KernelInputError(`${at}.localAddress`, `${local.text} is not of the neighbor's family`);
    out.localAddress = local.text;
  }
  if (p.interface !== undefined) {
    const i = checkIfacePattern(`${at}.interface`, p.interface);
    if (i.includes('*')) throw new KernelInputError(`${at}.interface`, 'must be one interface name, not a pattern');
    out.interface = i;
  }
  if (p.multihop !== undefined) {
    out.multihop = checkInt(`${at}.multihop`, p.multihop, 2, 255);
    // Both are BIRD 2.0.12 config errors: a multihop session has no interface, and multihop BFD needs a source.
    if (out.interface !== undefined) throw new KernelInputError(`${at}.interface`, 'a multihop session cannot be bound to an interface');
    if (out.bfd && out.localAddress === undefined) throw new KernelInputError(`${at}.localAddress`, 'is required for a multihop session with BFD');
  }
  if (p.password !== undefined) {
    // The value is never echoed: it is a secret.
    if (typeof p.password !== 'string' || !PASSWORD_RE.test(p.password))
      throw new KernelInputError(`${at}.password`, 'must be 1–80 printable ASCII characters without space, " or \\');
    out.password = p.password;
  }
  if (p.addPaths !== undefined) out.addPaths = checkOneOf(`${at}.addPaths`, p.addPaths, ['tx', 'rx', 'on'] as const);
  if (p.connectDelayTime !== undefined) out.connectDelayTime = checkInt(`${at}.connectDelayTime`, p.connectDelayTime, 1, 65535);
  if (p.connectRetryTime !== undefined) out.connectRetryTime = checkInt(`${at}.connectRetryTime`, p.connectRetryTime, 1, 65535);
  if (p.errorWaitTime !== undefined) {
    const min = checkInt(`${at}.errorWaitTime.min`, p.errorWaitTime?.min, 1, 65535);
    const max = checkInt(`${at}.errorWaitTime.max`, p.errorWaitTime?.max, min, 65535);
    out.errorWaitTime = { min, max };
  }
  return out;
}

interface CheckedSpec {
  routerId: string;
  asn: number;
  logFile?: string;
  deviceScanTime: number;
  kernel: { table?: number; export: 'none' | 'all'; mergePaths: boolean; mergePathsLimit?: number; learn: boolean; scanTime?: number };
  directInterfaces: string[];
  staticRoutes: { prefix: string; family: BirdFamily; type: 'blackhole' | 'unreachable' | 'prohibit' }[];
  bgpPeers: CheckedPeer[];
  bfd: { intervalMs: number; multiplier: number };
}

/** Checks a whole spec; throws KernelInputError naming the first bad field (`bgpPeers[1].name`). */
export function checkBirdConfigSpec(spec: BirdConfigSpec): CheckedSpec {
  if (typeof spec !== 'object' || spec === null) throw new KernelInputError('spec', 'must be an object');
  const k = spec.kernel;
  if (typeof k !== 'object' || k === null) throw new KernelInputError('kernel', 'must be an object');
  const kernel: CheckedSpec['kernel'] = {
    export: checkOneOf('kernel.export', k.export, ['none', 'all'] as const),
    mergePaths: checkBool('kernel.mergePaths', k.mergePaths),
    learn: k.learn === undefined ? false : checkBool('kernel.learn', k.learn),
  };
  if (k.table !== undefined) {
    kernel.table = checkInt('kernel.table', k.table, 1, 4294967295);
    if (kernel.table === 255) throw new KernelInputError('kernel.table', 'must not be the local table (255)');
  }
  if (k.mergePathsLimit !== undefined) kernel.mergePathsLimit = checkInt('kernel.mergePathsLimit', k.mergePathsLimit, 1, 255);
  if (k.scanTime !== undefined) kernel.scanTime = checkInt('kernel.scanTime', k.scanTime, 1, 65535);

  if (!Array.isArray(spec.staticRoutes)) throw new KernelInputError('staticRoutes', 'must be a list');
  const seenRoutes = new Set<string>();
  const staticRoutes = spec.staticRoutes.map((r, i) => {
    const at = `staticRoutes[${i}]`;
    const c = checkPrefix(`${at}.prefix`, r?.prefix);
    if (seenRoutes.has(c.text)) throw new KernelInputError(`${at}.prefix`, `${c.text} is listed twice`);
    seenRoutes.add(c.text);
    const type = r.type === undefined ? 'blackhole' : checkOneOf(`${at}.type`, r.type, ['blackhole', 'unreachable', 'prohibit'] as const);
    return { prefix: c.text, family: c.family, type };
  });

  if (!Array.isArray(spec.bgpPeers)) throw new KernelInputError('bgpPeers', 'must be a list');
  const names = new Set<string>();
  const neighbors = new Set<string>();
  const bgpPeers = spec.bgpPeers.map((p, i) => {
    const at = `bgpPeers[${i}]`;
    const c = checkPeer(at, p);
    if (names.has(c.name)) throw new KernelInputError(`${at}.name`, `"${c.name}" is used by another peer`);
    if (neighbors.has(c.neighbor)) throw new KernelInputError(`${at}.neighbor`, `${c.neighbor} is the neighbor of another peer`);
    names.add(c.name);
    neighbors.add(c.neighbor);
    return c;
  });

  const directInterfaces = (spec.directInterfaces ?? []).map((n, i) => checkIfacePattern(`directInterfaces[${i}]`, n));
  const out: CheckedSpec = {
    routerId: checkRouterId('routerId', spec.routerId),
    asn: checkInt('asn', spec.asn, 1, 4294967295),
    deviceScanTime: spec.deviceScanTime === undefined ? 10 : checkInt('deviceScanTime', spec.deviceScanTime, 1, 65535),
    kernel,
    directInterfaces,
    staticRoutes,
    bgpPeers,
    bfd: {
      intervalMs: checkInt('bfd.intervalMs', spec.bfd?.intervalMs ?? 50, 1, 60_000),
      multiplier: checkInt('bfd.multiplier', spec.bfd?.multiplier ?? 3, 1, 255),
    },
  };
  if (spec.logFile !== undefined) out.logFile = checkPath('logFile', spec.logFile);
  return out;
}

// --- rendering -------------------------------------------------------------------------------------------------

/** `[ a, b ]`: a BIRD prefix set literal. Only called with checked, canonical prefixes. */
function prefixSet(prefixes: readonly string[]): string {
  return `[ ${prefixes.join(', ')} ]`;
}

function policyClause(policy: 'all' | 'none' | string[]): string {
  if (policy === 'all' || policy === 'none') return policy;
  if (policy.length === 0) return 'none';
  return `filter { if net ~ ${prefixSet(policy)} then accept; reject; }`;
}

function renderPeer(p: CheckedPeer, asn: number): string[] {
  const lines = [`protocol bgp ${p.name} {`];
  lines.push(`  local ${p.localAddress ? `${p.localAddress} ` : ''}as ${asn};`);
  lines.push(`  neighbor ${p.neighbor} as ${p.remoteAs};`);
  if (p.interface) lines.push(`  interface "${p.interface}";`);
  if (p.multihop !== undefined) lines.push(`  multihop ${p.multihop};`);
  lines.push(`  hold time ${p.holdTime};`, `  keepalive time ${p.keepaliveTime};`);
  if (p.connectDelayTime !== undefined) lines.push(`  connect delay time ${p.connectDelayTime};`);
  if (p.connectRetryTime !== undefined) lines.push(`  connect retry time ${p.connectRetryTime};`);
  if (p.errorWaitTime) lines.push(`  error wait time ${p.errorWaitTime.min}, ${p.errorWaitTime.max};`);
  if (p.bfd) lines.push('  bfd on;');
  if (p.passive) lines.push('  passive on;');
  if (p.password !== undefined) lines.push(`  password "${p.password}";`);
  lines.push(`  ipv${p.family} {`);
  lines.push(`    import ${policyClause(p.import)};`);
  // Exports: exact prefixes only (no `+`): the list is the whole of what this session may ever announce.
  lines.push(`    export ${policyClause(p.export)};`);
  if (p.nextHopSelf) lines.push('    next hop self;');
  if (p.addPaths) lines.push(`    add paths ${p.addPaths};`);
  lines.push('  };', '}');
  return lines;
}

function renderKernel(family: BirdFamily, k: CheckedSpec['kernel']): string[] {
  // Static routes here are announce-only blackholes: never install them (see BirdKernelSpec.export).
  const exp = k.export === 'all' ? 'where source != RTS_STATIC' : 'none';
  const lines = [`protocol kernel kernel${family} {`, `  ipv${family} { import ${k.learn ? 'all' : 'none'}; export ${exp}; };`];
  if (k.table !== undefined) lines.push(`  kernel table ${k.table};`);
  if (k.mergePaths) lines.push(`  merge paths on${k.mergePathsLimit !== undefined ? ` limit ${k.mergePathsLimit}` : ''};`);
  if (k.learn) lines.push('  learn;');
  if (k.scanTime !== undefined) lines.push(`  scan time ${k.scanTime};`);
  lines.push('}');
  return lines;
}

/**
 * Renders a spec to BIRD 2.0.12 config text. Protocol names are fixed per role (kernel4, static4, …) so a
 * `configure` after a change updates protocols in place instead of restarting them.
 */
export function renderBirdConfig(spec: BirdConfigSpec): string {
  const s = checkBirdConfigSpec(spec);
  const out: string[] = ['# Generated by OpenTransit from structured settings; rewritten on every change. Do not edit.'];
  out.push(s.logFile ? `log "${s.logFile}" all;` : 'log stderr all;');
  out.push(`router id ${s.routerId};`);
  // Space-free timestamps: `show protocols` and `show route` are parsed by columns (bird-show.ts).
  out.push('timeformat protocol "%FT%T";', 'timeformat route "%FT%T";', '');
  out.push(`protocol device device1 { scan time ${s.deviceScanTime}; }`);
  if (s.directInterfaces.length)
    out.push(`protocol direct direct1 { ipv4; ipv6; interface ${s.directInterfaces.map((i) => `"${i}"`).join(', ')}; }`);
  out.push('', ...renderKernel(4, s.kernel), ...renderKernel(6, s.kernel), '');
  for (const family of [4, 6] as const) {
    out.push(`protocol static static${family} {`, `  ipv${family};`);
    for (const r of s.staticRoutes.filter((r) => r.family === family)) out.push(`  route ${r.prefix} ${r.type};`);
    out.push('}');
  }
  if (s.bgpPeers.some((p) => p.bfd)) {
    const t = `min rx interval ${s.bfd.intervalMs} ms; min tx interval ${s.bfd.intervalMs} ms; multiplier ${s.bfd.multiplier};`;
    out.push('', 'protocol bfd bfd1 {', `  interface "*" { ${t} };`, `  multihop { ${t} };`, '}');
  }
  for (const p of s.bgpPeers) out.push('', ...renderPeer(p, s.asn));
  return out.join('\n') + '\n';
}
