/**
 * Parsers of BIRD 2.0.12 `show …` replies (as returned by birdCommand: lines with their reply codes). Pure, so
 * they are unit-tested on captured replies. Timestamps are whatever BIRD printed (our configs set the space-free
 * "%FT%T" format: bird-config.ts).
 */
import type { BirdReply } from './bird-control.js';

// --- show status -----------------------------------------------------------------------------------------------

export interface BirdStatus {
  /** e.g. "2.0.12". */
  version: string;
  routerId: string;
  serverTime?: string;
  lastReboot?: string;
  lastReconfiguration?: string;
  /** From the last line: "Daemon is up and running" / "Reconfiguration in progress" / "Shutdown in progress". */
  state: 'up' | 'reconfiguring' | 'shutting-down' | 'unknown';
  message: string;
}

export function parseBirdStatus(reply: BirdReply): BirdStatus {
  const texts = reply.lines.map((l) => l.text);
  const find = (re: RegExp) => {
    for (const t of texts) {
      const m = re.exec(t);
      if (m) return m[1]!;
    }
    return undefined;
  };
  const msg = reply.message;
  const state = /up and running/i.test(msg) ? 'up' : /reconfiguration/i.test(msg) ? 'reconfiguring' : /shutdown/i.test(msg) ? 'shutting-down' : 'unknown';
  const status: BirdStatus = { version: find(/^BIRD (\S+)$/) ?? '', routerId: find(/^Router ID is (\S+)/) ?? '', state, message: msg };
  const serverTime = find(/^\s*Current server time is (.+)$/);
  const lastReboot = find(/^\s*Last reboot on (.+)$/);
  const lastReconfiguration = find(/^\s*Last reconfiguration on (.+)$/);
  if (serverTime) status.serverTime = serverTime;
  if (lastReboot) status.lastReboot = lastReboot;
  if (lastReconfiguration) status.lastReconfiguration = lastReconfiguration;
  return status;
}

// --- show protocols [all] --------------------------------------------------------------------------------------

export interface BirdChannelInfo {
  /** "ipv4", "ipv6". */
  name: string;
  /** "UP", "DOWN", "START", "FEED"… */
  state: string;
  imported: number;
  exported: number;
  preferred: number;
}

export interface BirdProtocol {
  name: string;
  /** "BGP", "Kernel", "Static", "Device", "BFD", "Direct". */
  proto: string;
  /** "master4" or "---". */
  table: string;
  /** BIRD's protocol state: "up", "down", "start", "stop", "flush". */
  state: string;
  since: string;
  /** The Info column, e.g. "Established", "Active        Socket: Connection refused". */
  info: string;
  /** BGP only: the session state (first word of info: Idle, Connect, Active, OpenSent, OpenConfirm, Established, Close, Down, Passive). */
  bgpState?: string;
  /** BGP only: true when the session is Established. */
  established: boolean;
  /** With `all`: neighbour details (BGP) and per-channel route counts. */
  neighborAddress?: string;
  neighborAs?: number;
  localAs?: number;
  lastError?: string;
  channels?: BirdChannelInfo[];
}

const PROTOCOL_ROW_RE = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*?)\s*$/;

/** Parses `show protocols` or `show protocols all` (rows are code 1002, details code 1006). */
export function parseBirdProtocols(reply: BirdReply): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let current: BirdProtocol | undefined;
  let channel: BirdChannelInfo | undefined;
  for (const line of reply.lines) {
    if (line.code === 1002) {
      const m = PROTOCOL_ROW_RE.exec(line.text);
      if (!m) continue;
      const [, name, proto, table, state, since, info] = m as unknown as [string, string, string, string, string, string, string];
      current = { name, proto, table, state, since, info, established: false };
      channel = undefined;
      if (proto === 'BGP') {
        current.bgpState = info.split(/\s+/)[0] || state;
        current.established = current.bgpState === 'Established';
      }
      out.push(current);
    } else if (line.code === 1006 && current) {
      const t = line.text.trim();
      let m: RegExpExecArray | null;
      if ((m = /^BGP state:\s+(\S+)/.exec(t))) {
        current.bgpState = m[1]!;
        current.established = m[1] === 'Established';
      } else if ((m = /^Neighbor address:\s+(\S+)/.exec(t))) current.neighborAddress = m[1]!;
      else if ((m = /^Neighbor AS:\s+(\d+)/.exec(t))) current.neighborAs = Number(m[1]);
      else if ((m = /^Local AS:\s+(\d+)/.exec(t))) current.localAs = Number(m[1]);
      else if ((m = /^Last error:\s+(.*)$/.exec(t))) current.lastError = m[1]!;
      else if ((m = /^Channel (\S+)$/.exec(t))) {
        channel = { name: m[1]!, state: '', imported: 0, exported: 0, preferred: 0 };
        (current.channels ??= []).push(channel);
      } else if (channel && (m = /^State:\s+(\S+)/.exec(t))) channel.state = m[1]!;
      else if (channel && (m = /^Routes:\s+(\d+) imported, (?:(\d+) filtered, )?(\d+) exported, (\d+) preferred/.exec(t))) {
        channel.imported = Number(m[1]);
        channel.exported = Number(m[3]);
        channel.preferred = Number(m[4]);
      }
    }
  }
  return out;
}

// --- show route ------------------------------------------------------------------------------------------------

export interface BirdNexthop {
  via?: string;
  dev?: string;
  weight?: number;
}

export interface BirdRoute {
  table: string;
  /** The network, e.g. "203.0.113.0/24". */
  network: string;
  /** "unicast", "blackhole", "unreachable", "prohibit". */
  type: string;
  /** The protocol that brought the route (a BGP peer's name, "static4"…). */
  protocol: string;
  since: string;
  /** The best route of its network (marked '*'). */
  primary: boolean;
  preference: number;
  /** BGP: the bracketed AS path summary, e.g. "AS65001i". */
  asPath?: string;
  /** iBGP / route servers: the address the route came from when it differs from the nexthop. */
  from?: string;
  nexthops: BirdNexthop[];
}

const ROUTE_LINE_RE = /^(\S+)?\s+(\w+) \[(\S+) (\S+)(?: from (\S+))?\] (\* )?\((\d+)(?:\/[^)]*)?\)(?: \[([^\]]*)\])?/;

/** Parses `show route [table T] [protocol P]` (without `all`): route lines, then their `via`/`dev` lines. */
export function parseBirdRoutes(reply: BirdReply): BirdRoute[] {
  const out: BirdRoute[] = [];
  let table = '';
  let network = '';
  let route: BirdRoute | undefined;
  for (const line of reply.lines) {
    if (line.code !== 1007) continue;
    const t = line.text;
    let m: RegExpExecArray | null;
    if ((m = /^Table (\S+):$/.exec(t))) {
      table = m[1]!;
      route = undefined;
    } else if ((m = /^\s+via (\S+) on (\S+)(?: weight (\d+))?/.exec(t)) && route) {
      const nh: BirdNexthop = { via: m[1]!, dev: m[2]! };
      if (m[3] !== undefined) nh.weight = Number(m[3]);
      route.nexthops.push(nh);
    } else if ((m = /^\s+dev (\S+)/.exec(t)) && route) {
      route.nexthops.push({ dev: m[1]! });
    } else if ((m = ROUTE_LINE_RE.exec(t))) {
      if (m[1]) network = m[1];
      route = {
        table,
        network,
        type: m[2]!,
        protocol: m[3]!,
        since: m[4]!,
        primary: m[6] !== undefined,
        preference: Number(m[7]),
        nexthops: [],
      };
      if (m[5]) route.from = m[5];
      if (m[8] !== undefined) route.asPath = m[8];
      out.push(route);
    }
  }
  return out;
}
