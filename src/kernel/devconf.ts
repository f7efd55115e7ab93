/**
 * A few per-device IPv4 sysctls (`net.ipv4.conf.<dev>.<name>`) through rtnetlink instead of /proc/sys.
 *
 * Why: opening a /proc/sys/net/ipv4 file walks one dcache hash chain that holds an `ipv4` entry for every network
 * namespace that ever looked there (proc_sys_compare turns down the other namespaces' entries one by one), so each
 * open costs O(namespaces) — at 1000 customer namespaces that made the sysctls a tenth of a cold start. A link's
 * IFLA_AF_SPEC carries every IPv4 devconf value of the device (one RTM_GETLINK reads them all, on the namespace's
 * netlink socket the agent already holds) and RTM_SETLINK sets them.
 *
 * Only settings whose /proc write does nothing beyond storing the value (and marking it set, which the netlink
 * write does too) go this way: send_redirects, rp_filter (its /proc write also sends an RTM_NEWNETCONF
 * notification, which nothing of ours listens to), and accept_local when turned on (turning it off flushes the
 * route cache: that write stays on /proc/sys). `all` and `default` are not devices: writes go to /proc/sys, but
 * their forwarding and rp_filter are READ from RTM_GETNETCONF (netconfKey; the kernel answers it from the same
 * values the /proc handlers print), which an agent does for every customer each resync period.
 */
import { checkIfname } from './validate.js';
import { AF_INET, AF_INET6, attr, IFLA_IFNAME, ifinfomsg, linkByNameBody, nested, parseAttrs, payload, RTM, s32, str, u32 } from './netlink/codec.js';
import { rtnlBatch, type NetnsKey, NetlinkRequestError } from './netlink/socket.js';

/** uapi linux/ip.h IPV4_DEVCONF_* (1-based; IFLA_INET_CONF's array holds value N at index N - 1). */
const IPV4_DEVCONF = { send_redirects: 6, rp_filter: 8, accept_local: 23 } as const;
type DevconfName = keyof typeof IPV4_DEVCONF;

const IFLA_AF_SPEC = 26;
const IFLA_INET_CONF = 1;

/** A sysctl key that rtnetlink can take: its device and setting. */
export interface DevconfKey {
  key: string;
  dev: string;
  name: DevconfName;
}

const KEY_RE = /^net\.ipv4\.conf\.([^.]+)\.([a-z_]+)$/;

/**
 * `net.ipv4.conf.<dev>.<name>` as a DevconfKey when rtnetlink reads (value undefined) or writes it exactly as
 * /proc/sys would; undefined for every other key (they stay on /proc/sys).
 */
export function devconfKey(key: string, value?: string): DevconfKey | undefined {
  const m = KEY_RE.exec(key);
  if (!m) return undefined;
  const [, dev, name] = m as unknown as [string, string, string];
  if (dev === 'all' || dev === 'default' || !(name in IPV4_DEVCONF)) return undefined;
  if (value !== undefined && !/^(0|[1-9][0-9]{0,8})$/.test(value)) return undefined;
  if (name === 'accept_local' && value === '0') return undefined;
  try {
    checkIfname('dev', dev);
  } catch {
    return undefined; // not a device name: /proc/sys answers it (a missing file)
  }
  return { key, dev, name: name as DevconfName };
}

/** The failure of one key, as a /proc/sys open of it would fail (a missing device: ENOENT). */
export interface DevconfFailure {
  key: string;
  error: NetlinkRequestError;
}

/** Items grouped by key, in first-seen order: one request per device (or per family and all/default). */
function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    const group = out.get(k);
    if (group) group.push(item);
    else out.set(k, [item]);
  }
  return [...out.values()];
}

/** The IPv4 devconf array of one RTM_NEWLINK body, undefined when the device has no IPv4 part. */
function inetConf(body: Buffer): Buffer | undefined {
  const spec = parseAttrs(body, 16).get(IFLA_AF_SPEC);
  const inet = spec ? parseAttrs(spec).get(AF_INET) : undefined;
  return inet ? parseAttrs(inet).get(IFLA_INET_CONF) : undefined;
}

/** Reads the keys (one RTM_GETLINK per device, pipelined). Values as /proc/sys prints them. */
export async function readDevconf(ns: NetnsKey, keys: readonly DevconfKey[]): Promise<{ values: Record<string, string>; failures: DevconfFailure[] }> {
  const groups = groupBy(keys, (k) => k.dev);
  const answers = await rtnlBatch(
    ns,
    groups.map(([k]) => ({ type: RTM.GETLINK, flags: 0, body: linkByNameBody(k!.dev) })),
  );
  const values: Record<string, string> = {};
  const failures: DevconfFailure[] = [];
  groups.forEach((ks, i) => {
    const a = answers[i];
    const conf = a instanceof Buffer ? inetConf(a) : undefined;
    for (const k of ks) {
      const at = (IPV4_DEVCONF[k.name] - 1) * 4;
      if (conf && conf.length >= at + 4) values[k.key] = String(conf.readInt32LE(at));
      else failures.push({ key: k.key, error: a instanceof NetlinkRequestError ? a : new NetlinkRequestError(2, `${k.dev} has no IPv4 settings`) });
    }
  });
  return { values, failures };
}

/** Writes the keys (one RTM_SETLINK per device, pipelined). */
export async function writeDevconf(ns: NetnsKey, entries: readonly (readonly [DevconfKey, string])[]): Promise<DevconfFailure[]> {
  const groups = groupBy(entries, ([k]) => k.dev);
  const answers = await rtnlBatch(
    ns,
    groups.map((es) => ({
      type: RTM.SETLINK,
      flags: 0,
      body: payload(ifinfomsg(), [
        attr(IFLA_IFNAME, str(es[0]![0].dev)),
        nested(IFLA_AF_SPEC, [nested(AF_INET, [nested(IFLA_INET_CONF, es.map(([k, v]) => attr(IPV4_DEVCONF[k.name], u32(Number(v)))))])]),
      ]),
    })),
  );
  return groups.flatMap((es, i) => {
    const a = answers[i];
    return a instanceof NetlinkRequestError ? es.map(([k]) => ({ key: k.key, error: a })) : [];
  });
}

// --- all / default: forwarding and rp_filter through RTM_GETNETCONF (reads only) ----------------------------------

const NETCONFA_IFINDEX = 1;
const NETCONFA = { forwarding: 2, rp_filter: 3 } as const;
const NETCONFA_IFINDEX_ALL = -1;
const NETCONFA_IFINDEX_DEFAULT = -2;

/** A sysctl key that RTM_GETNETCONF answers: family, `all` or `default`, and the attribute. */
export interface NetconfKey {
  key: string;
  family: 4 | 6;
  which: 'all' | 'default';
  attr: number;
}

/**
 * `net.ipv4.ip_forward` (the same value as conf.all.forwarding), `net.ipv{4,6}.conf.{all,default}.forwarding` and
 * `net.ipv4.conf.{all,default}.rp_filter` as NetconfKeys; undefined for every other key.
 */
export function netconfKey(key: string): NetconfKey | undefined {
  if (key === 'net.ipv4.ip_forward') return { key, family: 4, which: 'all', attr: NETCONFA.forwarding };
  const m = /^net\.ipv([46])\.conf\.(all|default)\.(forwarding|rp_filter)$/.exec(key);
  if (!m || (m[1] === '6' && m[3] === 'rp_filter')) return undefined;
  return { key, family: m[1] === '4' ? 4 : 6, which: m[2] as 'all' | 'default', attr: NETCONFA[m[3] as keyof typeof NETCONFA] };
}

/** Reads the keys (one RTM_GETNETCONF per family and all/default, pipelined). Values as /proc/sys prints them. */
export async function readNetconf(ns: NetnsKey, keys: readonly NetconfKey[]): Promise<{ values: Record<string, string>; failures: DevconfFailure[] }> {
  const groups = groupBy(keys, (k) => `${k.family}|${k.which}`);
  const answers = await rtnlBatch(
    ns,
    groups.map(([k]) => {
      // struct netconfmsg is one byte (the family), padded to 4 before the attributes.
      const head = Buffer.alloc(4);
      head.writeUInt8(k!.family === 4 ? AF_INET : AF_INET6, 0);
      return { type: RTM.GETNETCONF, flags: 0, body: payload(head, [attr(NETCONFA_IFINDEX, s32(k!.which === 'all' ? NETCONFA_IFINDEX_ALL : NETCONFA_IFINDEX_DEFAULT))]) };
    }),
  );
  const values: Record<string, string> = {};
  const failures: DevconfFailure[] = [];
  groups.forEach((ks, i) => {
    const a = answers[i];
    const got = a instanceof Buffer ? parseAttrs(a, 4) : undefined;
    for (const k of ks) {
      const v = got?.get(k.attr);
      if (v && v.length >= 4) values[k.key] = String(v.readInt32LE(0));
      else failures.push({ key: k.key, error: a instanceof NetlinkRequestError ? a : new NetlinkRequestError(2, `no ${k.key} in the kernel's netconf answer`) });
    }
  });
  return { values, failures };
}
