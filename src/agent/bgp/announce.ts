/**
 * What an edge announces by BGP, and the BIRD config spec that announces exactly that. Pure.
 *
 * An edge announces (a) every `advertised` prefix of the accounts that are ready on this node and (b) the
 * anycast endpoints — both only while the node's data plane is ready (a customer prefix drawn to an edge whose
 * XDP/GRE path is down would be dropped there, unprotected) and never while the node is drained. A drained
 * node keeps its BGP sessions up and announces nothing, so traffic moves by withdrawal, not by session loss.
 *
 * Every prefix is checked again here, though the model validated it when it was stored: a valid customer
 * network, owned by exactly one tenant (no overlap with another account's prefix). An endpoint inside a tenant's
 * prefix is refused too (announcing it would pull that tenant's traffic for one address to the anycast path).
 * Refusals are returned with their reason (for status), never thrown: one bad prefix must not stop the others.
 */
import type { BirdBfdSpec, BirdBgpPeerSpec, BirdConfigSpec } from '../../kernel/bird-config.js';
import type { BgpPeer } from '../../model/bgp.js';
import { ValidationError } from '../../model/errors.js';
import { publicIpv4Field } from '../../model/gre-tunnel.js';
import { cidrContainsIp, cidrsOverlap, compareCidr, formatCidr, parseCidr, parseIp, type Cidr } from '../../model/ip.js';
import { normalisePrefixCidr } from '../../model/prefix.js';

export interface EdgeAccountInput {
  id: string;
  /** The account's namespace, firewall and tunnels are in place on this node. */
  ready: boolean;
  prefixes: readonly { cidr: string; advertised: boolean }[];
}

/** BGP timers that shape recovery after a failure (BIRD's defaults when absent: 5 s, 120 s, 60–300 s). */
export interface EdgeSessionTimers {
  connectDelayTime?: number;
  connectRetryTime?: number;
  errorWaitTime?: { min: number; max: number };
}

export interface EdgeBgpInput {
  nodeId: string;
  /** IPv4 dotted quad, unique among the speakers (usually the edge's uplink address). */
  routerId: string;
  /** The edges' AS number. */
  asn: number;
  peers: readonly BgpPeer[];
  accounts: readonly EdgeAccountInput[];
  /** The operator's anycast GRE endpoints (IPv4), announced as /32. */
  anycastEndpoints: readonly string[];
  /** XDP, GRE decap and the host routes are in place. */
  dataPlaneReady: boolean;
  /** Maintenance: announce nothing. */
  drained: boolean;
  /** Absolute path of BIRD's log file (default: BIRD's stderr). */
  logFile?: string;
  /** BFD timers for peers with bfd on (default 50 ms × 3). */
  bfd?: BirdBfdSpec;
  sessionTimers?: EdgeSessionTimers;
}

export interface RefusedAnnouncement {
  /** The account, or undefined for an anycast endpoint. */
  accountId?: string;
  /** As given. */
  value: string;
  reason: string;
}

export interface EdgeAnnouncements {
  /** Customer prefixes announced, canonical, sorted, without duplicates. */
  prefixes: string[];
  /** Anycast endpoints announced, as /32 networks, sorted. */
  endpoints: string[];
  /** prefixes then endpoints: everything the edge announces. */
  all: string[];
  /** Why nothing is announced, when that is the case for a node-wide reason. */
  withheld?: 'drained' | 'data-plane-not-ready';
  refused: RefusedAnnouncement[];
}

/**
 * The BIRD protocol name of the session to a peer. Derived from the address, not the list position, so adding or
 * removing one peer never renames (and so restarts) the others' sessions. `peer_` keeps it clear of BIRD keywords.
 */
export function bgpPeerProtocolName(address: string): string {
  return `peer_${address.replace(/[.:]/g, '_')}`;
}

interface OwnedPrefix {
  accountId: string;
  cidr: Cidr;
  text: string;
  advertised: boolean;
  ready: boolean;
}

function reasonOf(e: unknown): string {
  return e instanceof ValidationError ? e.reason : (e as Error).message;
}

/** What this edge should announce now, and what was refused and why. */
export function edgeAnnouncements(input: EdgeBgpInput): EdgeAnnouncements {
  const refused: RefusedAnnouncement[] = [];
  // Every valid prefix of every account, ready or not: ownership conflicts are checked against all of them.
  const owned: OwnedPrefix[] = [];
  for (const account of input.accounts) {
    for (const p of account.prefixes) {
      try {
        const text = normalisePrefixCidr(p.cidr, 'cidr');
        owned.push({ accountId: account.id, cidr: parseCidr(text), text, advertised: p.advertised === true, ready: account.ready === true });
      } catch (e) {
        if (p.advertised) refused.push({ accountId: account.id, value: String(p.cidr), reason: reasonOf(e) });
      }
    }
  }

  const prefixes = new Map<string, Cidr>();
  const endpoints = new Map<string, Cidr>();
  const withheld = input.drained ? 'drained' : !input.dataPlaneReady ? 'data-plane-not-ready' : undefined;
  if (!withheld) {
    for (const p of owned) {
      if (!p.advertised || !p.ready) continue;
      const other = owned.find((o) => o.accountId !== p.accountId && cidrsOverlap(o.cidr, p.cidr));
      if (other) {
        refused.push({ accountId: p.accountId, value: p.text, reason: `overlaps ${other.text} of account ${other.accountId}: a prefix has one owner` });
        continue;
      }
      prefixes.set(p.text, p.cidr);
    }
    for (const e of input.anycastEndpoints) {
      let ip: string;
      try {
        ip = publicIpv4Field(e, 'anycast_endpoint');
      } catch (err) {
        refused.push({ value: String(e), reason: reasonOf(err) });
        continue;
      }
      const inside = owned.find((o) => cidrContainsIp(o.cidr, parseIp(ip)));
      if (inside) {
        refused.push({ value: ip, reason: `lies inside ${inside.text} of account ${inside.accountId}` });
        continue;
      }
      const cidr = parseCidr(`${ip}/32`);
      endpoints.set(formatCidr(cidr), cidr);
    }
  }
  const sorted = (m: Map<string, Cidr>) => [...m.entries()].sort((a, b) => compareCidr(a[1], b[1])).map(([t]) => t);
  const out: EdgeAnnouncements = { prefixes: sorted(prefixes), endpoints: sorted(endpoints), all: [], refused };
  out.all = [...out.prefixes, ...out.endpoints];
  if (withheld) out.withheld = withheld;
  return out;
}

/**
 * The BIRD config of an edge: one static blackhole route per announced network (announce-only: the kernel
 * protocol installs nothing), one BGP session per peer exporting exactly the announced networks of the
 * session's family, importing nothing.
 */
export function edgeBirdSpec(input: EdgeBgpInput): { spec: BirdConfigSpec; announcements: EdgeAnnouncements } {
  const announcements = edgeAnnouncements(input);
  const v6 = (net: string) => net.includes(':');
  const bgpPeers = input.peers.map((p): BirdBgpPeerSpec => {
    const peerV6 = v6(p.address);
    const peer: BirdBgpPeerSpec = {
      name: bgpPeerProtocolName(p.address),
      neighbor: p.address,
      remoteAs: p.asn,
      bfd: p.bfd,
      holdTime: p.hold_time,
      keepaliveTime: p.keepalive,
      passive: p.passive,
      import: 'none',
      export: announcements.all.filter((n) => v6(n) === peerV6),
      ...input.sessionTimers,
    };
    if (p.local_address !== undefined) peer.localAddress = p.local_address;
    if (p.multihop !== undefined) peer.multihop = p.multihop;
    if (p.password !== undefined) peer.password = p.password;
    return peer;
  });
  const spec: BirdConfigSpec = {
    routerId: input.routerId,
    asn: input.asn,
    kernel: { export: 'none', mergePaths: false },
    staticRoutes: announcements.all.map((prefix) => ({ prefix, type: 'blackhole' as const })),
    bgpPeers,
  };
  if (input.logFile !== undefined) spec.logFile = input.logFile;
  if (input.bfd !== undefined) spec.bfd = input.bfd;
  return { spec, announcements };
}
