/**
 * In-process rtnetlink: one NETLINK_ROUTE socket per network namespace, requests and dumps on it asynchronously.
 * Replaces `ip -n NS …` spawns (DESIGN.md §2: spawns dominated the per-customer cost).
 *
 * A netlink socket belongs to the namespace it was created in, so it is created inside that namespace with the
 * addon's withNetns (a synchronous setns on the JS thread). Sockets are cached per namespace name — bounded, least
 * recently used first out, and closed after a short idle time — because an open socket keeps its namespace alive:
 * a namespace deleted by name (`ip netns delete`) would linger with its veth pair as long as we held a socket in
 * it. For the same reason every use checks that the name still points at the namespace the socket lives in (the
 * inode of /run/netns/NAME), and `releaseNetns(name)` closes it before a deliberate delete.
 *
 * Requests on one socket run one at a time: the kernel runs one dump per socket, and one-at-a-time keeps each
 * request's ACK and error attributable.
 */
import { statSync, openSync, closeSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import netlinkPkg from 'netlink';
import type { NetlinkMessage, NetlinkSocket } from 'netlink';
import { withNetns } from '../bpf/index.js';
import { KernelError, type KernelErrorCode } from '../exec.js';
import { checkNetnsName } from '../validate.js';
import { attr, NETLINK_GENERIC, NETLINK_NETFILTER, NETLINK_ROUTE, NFNL_SUBSYS_NFTABLES, NLM_F, parseAttrs, str } from './codec.js';

const { createNetlink } = netlinkPkg;

/** A named network namespace, or null for this process's own. */
export type NetnsKey = string | null;

const NLMSG_ERROR = 2;
/**
 * How many sockets stay open (each is one fd and keeps its namespace referenced). Bounded well below 1024 on
 * purpose: libnftables waits for its answers with select(), and glibc aborts the process ("bit out of range 0 -
 * FD_SETSIZE on fd_set") when the nft socket's fd is 1024 or more — which a cache of thousands did at once.
 */
const MAX_SOCKETS = 256;
/**
 * An unused socket is closed after this long: longer than the agent's default resync period (5 s), so the periodic
 * checks reuse sockets, and short enough that a namespace deleted behind our back is not kept alive for long (and
 * any use of its name with a new namespace behind it closes every socket in the old one at once: socketFor).
 */
const IDLE_CLOSE_MS = 12_000;
/** A request the kernel never answers (should not happen) fails instead of hanging a reconcile. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A dump that raced with a change (NLM_F_DUMP_INTR) is retried this many times before failing with EINTR. */
const DUMP_ATTEMPTS = 3;

interface Entry {
  ns: NetnsKey;
  protocol: number;
  sock: NetlinkSocket;
  /** The socket's netlink port id (nlmsg_pid of the notifications its requests cause). */
  port: number;
  /** dev:ino of /run/netns/NAME when the socket was made (null netns: undefined). */
  identity?: string;
  /** Tail of this socket's request chain: the next request starts after it settles. */
  tail: Promise<unknown>;
  idleTimer?: NodeJS.Timeout;
  /** Requests queued or in flight: an idle close waits for them. */
  pending: number;
  closed: boolean;
}

const sockets = new Map<string, Entry>();
const keyOf = (ns: NetnsKey, protocol = NETLINK_ROUTE) => `${protocol}|${ns === null ? '' : ns}`;

/** What a namespace name points at now (dev:ino of /run/netns/NAME; undefined: no such name). */
export function netnsIdentity(ns: string): string | undefined {
  try {
    const st = statSync(`/run/netns/${ns}`);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function closeEntry(e: Entry): void {
  if (e.closed) return;
  e.closed = true;
  if (e.idleTimer) clearTimeout(e.idleTimer);
  if (sockets.get(keyOf(e.ns, e.protocol)) === e) sockets.delete(keyOf(e.ns, e.protocol));
  const n = (ownPorts.get(e.port) ?? 1) - 1;
  if (n > 0) ownPorts.set(e.port, n);
  else ownPorts.delete(e.port);
  try {
    e.sock.close();
  } catch {
    // Already closed.
  }
}

/**
 * The port ids of our open sockets, with how many hold each (port ids are per namespace: the first socket of a
 * process in each namespace gets the process id). A notification whose nlmsg_pid is one of them was most likely
 * caused by our own request (kernel/netlink/watch.ts uses this to tell our writes from drift).
 */
const ownPorts = new Map<number, number>();

/** Whether `port` is the port id of one of our open request sockets (in some namespace). */
export function isOwnNetlinkPort(port: number): boolean {
  return port !== 0 && ownPorts.has(port);
}

/** Counters: how often sockets were opened (a cache miss costs a setns pair and a socket). */
export const netlinkStats = { socketsOpened: 0, requests: 0, dumps: 0 };

function socketFor(ns: NetnsKey, protocol = NETLINK_ROUTE): Entry {
  const key = keyOf(ns, protocol);
  let e = sockets.get(key);
  const identity = ns === null ? undefined : netnsIdentity(ns);
  if (ns !== null && identity === undefined) {
    if (e) closeEntry(e);
    throw new KernelError({ argv: ['rtnetlink', ns], exitCode: null, stderr: '', code: 'ENOENT', kernelMessage: `Cannot open network namespace "${ns}": No such file or directory` });
  }
  if (e && e.identity !== identity) {
    // The name now points at another namespace (deleted and re-created): the old sockets would talk to the old one,
    // and would keep it (and its end of a veth pair) alive.
    releaseNetns(ns);
    e = undefined;
  }
  if (!e) {
    const sock = ns === null ? createNetlink(protocol) : withNetns(ns, () => createNetlink(protocol));
    netlinkStats.socketsOpened++;
    const port = sock.address().port;
    ownPorts.set(port, (ownPorts.get(port) ?? 0) + 1);
    e = { ns, protocol, sock, port, tail: Promise.resolve(), pending: 0, closed: false, ...(identity !== undefined ? { identity } : {}) };
    sock.on('error', () => closeEntry(e!));
    if (sockets.size >= MAX_SOCKETS) {
      const oldest = sockets.values().next().value as Entry | undefined;
      if (oldest) closeEntry(oldest);
    }
  } else sockets.delete(key); // re-inserted below: Map order is the LRU order
  sockets.set(key, e);
  armIdle(e);
  return e;
}

function armIdle(e: Entry): void {
  if (e.idleTimer) clearTimeout(e.idleTimer);
  e.idleTimer = setTimeout(() => (e.pending > 0 ? armIdle(e) : closeEntry(e)), IDLE_CLOSE_MS);
  e.idleTimer.unref();
}

/** Closes our socket in `ns` (call before deleting a namespace, so the socket does not keep it alive). */
export function releaseNetns(ns: NetnsKey): void {
  for (const protocol of [NETLINK_ROUTE, NETLINK_GENERIC, NETLINK_NETFILTER]) {
    const e = sockets.get(keyOf(ns, protocol));
    if (e) closeEntry(e);
  }
}

/** Closes every cached socket (tests, shutdown). */
export function releaseAllNetns(): void {
  for (const e of [...sockets.values()]) closeEntry(e);
}

/** Open sockets right now (tests check that deletes release them). */
export function openNetlinkSockets(): NetnsKey[] {
  return [...sockets.values()].map((e) => e.ns);
}

// --- errors ----------------------------------------------------------------------------------------------------

const errnoMap = getSystemErrorMap();

/** The errno's strerror text, as iproute2 prints it ("File exists", "No such device"…). */
export function errnoText(errno: number): string {
  const known: Record<number, string> = { 2: 'No such file or directory', 3: 'No such process', 17: 'File exists', 19: 'No such device', 22: 'Invalid argument', 99: 'Cannot assign requested address', 16: 'Device or resource busy', 1: 'Operation not permitted' };
  return known[errno] ?? `${errnoMap.get(-errno)?.[1] ?? "error"} (errno ${errno})`;
}

export function errnoName(errno: number): string {
  return errnoMap.get(-errno)?.[0] ?? `E${errno}`;
}

/** Reduces an errno to the codes callers branch on (idempotency needs "exists" / "not found"). */
export function errnoCode(errno: number): KernelErrorCode {
  switch (errno) {
    case 17:
      return 'EEXIST';
    case 2: // ENOENT: a missing neighbour, rule
    case 3: // ESRCH: a missing route
    case 19: // ENODEV: a missing link
    case 99: // EADDRNOTAVAIL: a missing address
      return 'ENOENT';
    case 16:
      return 'EBUSY';
    case 22:
      return 'EINVAL';
    case 1:
    case 13:
      return 'EPERM';
    case 4:
      return 'EINTR';
    default:
      return 'OTHER';
  }
}

/** The kernel refused a request: errno plus the text iproute2 would have printed. */
export class NetlinkRequestError extends Error {
  override readonly name = 'NetlinkRequestError';
  readonly code: KernelErrorCode;
  constructor(
    readonly errno: number,
    readonly kernelMessage: string,
  ) {
    super(kernelMessage);
    this.code = errnoCode(errno);
  }
}

/**
 * The kernel's extended ACK message (NLMSGERR_ATTR_MSG), when the ERROR message carries one. The kernel adds it
 * only on sockets with NETLINK_EXT_ACK set, which the `netlink` package cannot set: usually absent, then the
 * errno text stands alone.
 */
function extackMessage(msg: NetlinkMessage): string | undefined {
  const NLM_F_CAPPED = 0x100;
  const NLM_F_ACK_TLVS = 0x200;
  if (!(msg.flags & NLM_F_ACK_TLVS)) return undefined;
  const inner = msg.data.length >= 20 ? msg.data.readUInt32LE(4) : 0;
  let o = 4 + (msg.flags & NLM_F_CAPPED ? 16 : inner);
  o = (o + 3) & ~3;
  while (o + 4 <= msg.data.length) {
    const len = msg.data.readUInt16LE(o);
    const type = msg.data.readUInt16LE(o + 2);
    if (len < 4) break;
    if (type === 1) return msg.data.subarray(o + 4, o + len).toString('utf8').replace(/\0.*$/s, '');
    o += (len + 3) & ~3;
  }
  return undefined;
}

// --- requests --------------------------------------------------------------------------------------------------

function enqueue<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
  e.pending++;
  const run = e.tail.then(fn, fn).finally(() => e.pending--);
  e.tail = run.catch(() => undefined);
  return run;
}

async function raw(e: Entry, type: number, flags: number, body: Buffer): Promise<NetlinkMessage[]> {
  if (e.closed) throw new NetlinkRequestError(9, 'netlink socket closed');
  try {
    const [msgs] = await e.sock.request(type, [body], { flags, checkError: false, timeout: REQUEST_TIMEOUT_MS });
    return msgs;
  } catch (err) {
    // A broken socket is not reused.
    closeEntry(e);
    throw err;
  }
}

/**
 * One change request (NEW/DEL/SET…) in `ns`; resolves on the kernel's ACK, rejects with NetlinkRequestError on
 * its ERROR. `flags` are added to REQUEST|ACK (e.g. CREATE|REPLACE).
 */
export function rtnlRequest(ns: NetnsKey, type: number, flags: number, body: Buffer): Promise<void> {
  const e = socketFor(ns);
  netlinkStats.requests++;
  return enqueue(e, async () => {
    const msgs = await raw(e, type, flags, body);
    const err = msgs.find((m) => m.type === NLMSG_ERROR);
    if (!err) return;
    const errno = -err.data.readInt32LE(0);
    if (errno === 0) return;
    throw new NetlinkRequestError(errno, extackMessage(err) ?? errnoText(errno));
  });
}

/** One request of a pipelined batch (see rtnlBatch). */
export interface RtnlBatchRequest {
  type: number;
  /** Added to REQUEST|ACK. */
  flags: number;
  body: Buffer;
}

/**
 * Sends several requests back to back and then waits for all their answers: the kernel handles each sendmsg in
 * order, so the effect is the same as one at a time, but the process wakes up once for the batch instead of once
 * per request — on a loaded machine each wake-up is a scheduling delay. Per request: the reply payload (a GET), or
 * undefined (an ACK), or the NetlinkRequestError the kernel answered with; nothing is thrown for those.
 */
export function rtnlBatch(ns: NetnsKey, reqs: readonly RtnlBatchRequest[]): Promise<(Buffer | undefined | NetlinkRequestError)[]> {
  if (reqs.length === 0) return Promise.resolve([]);
  const e = socketFor(ns);
  netlinkStats.requests += reqs.length;
  return enqueue(e, async () => {
    const answers = await Promise.all(reqs.map((r) => raw(e, r.type, r.flags, r.body).then((msgs) => ({ msgs }), (err: unknown) => ({ err }))));
    return answers.map((a) => {
      if ('err' in a) throw a.err;
      for (const m of a.msgs) {
        if (m.type !== NLMSG_ERROR) return m.data;
        const errno = -m.data.readInt32LE(0);
        if (errno !== 0) return new NetlinkRequestError(errno, extackMessage(m) ?? errnoText(errno));
      }
      return undefined;
    });
  });
}

/**
 * A GET request that answers with one message (e.g. RTM_GETLINK by name): its payload, or undefined when the
 * kernel says the object does not exist (ENODEV/ENOENT).
 */
export function rtnlGet(ns: NetnsKey, type: number, body: Buffer): Promise<Buffer | undefined> {
  const e = socketFor(ns);
  netlinkStats.requests++;
  return enqueue(e, async () => {
    const msgs = await raw(e, type, 0, body);
    for (const m of msgs) {
      if (m.type !== NLMSG_ERROR) return m.data;
      const errno = -m.data.readInt32LE(0);
      if (errno === 0) continue;
      if (errnoCode(errno) === 'ENOENT') return undefined;
      throw new NetlinkRequestError(errno, extackMessage(m) ?? errnoText(errno));
    }
    return undefined;
  });
}

/**
 * A dump (NLM_F_DUMP): the payloads of every message of type `replyType`. A dump interrupted by a concurrent change
 * (NLM_F_DUMP_INTR on any part) may miss objects and must never feed a prune (DESIGN.md §3): it is retried, then
 * fails with code EINTR.
 */
export function rtnlDump(ns: NetnsKey, type: number, body: Buffer, replyType: number): Promise<Buffer[]> {
  const e = socketFor(ns);
  netlinkStats.dumps++;
  return enqueue(e, async () => {
    for (let attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
      const msgs = await raw(e, type, NLM_F.DUMP, body);
      const err = msgs.find((m) => m.type === NLMSG_ERROR && m.data.readInt32LE(0) !== 0);
      if (err) {
        const errno = -err.data.readInt32LE(0);
        throw new NetlinkRequestError(errno, extackMessage(err) ?? errnoText(errno));
      }
      if (msgs.some((m) => m.flags & NLM_F.DUMP_INTR)) continue;
      return msgs.filter((m) => m.type === replyType).map((m) => m.data);
    }
    throw new NetlinkRequestError(4, `dump interrupted ${DUMP_ATTEMPTS} times by concurrent changes`);
  });
}

// --- generic netlink (ethtool) -----------------------------------------------------------------------------------

const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
/** Generic netlink family ids are global (the same in every namespace): resolved once per name. */
const familyIds = new Map<string, number>();

function genlBody(cmd: number, version: number, attrs: readonly Buffer[]): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt8(cmd, 0);
  h.writeUInt8(version, 1);
  return Buffer.concat([h, ...attrs]);
}

/**
 * One generic netlink request in `ns` to family id `id`: the attributes of the kernel's reply message (after the
 * 4-byte genl header), undefined when it only acknowledged. Rejects with NetlinkRequestError on the kernel's ERROR.
 */
function genlExchange(ns: NetnsKey, id: number, cmd: number, version: number, attrs: readonly Buffer[]): Promise<Buffer | undefined> {
  return exchangeOne(socketFor(ns, NETLINK_GENERIC), id, genlBody(cmd, version, attrs)).then((reply) => reply?.subarray(4));
}

/**
 * One request on a socket of a protocol other than rtnetlink (generic netlink, nfnetlink): the payload of the
 * kernel's reply message, undefined when it only acknowledged. Rejects with NetlinkRequestError on its ERROR.
 */
function exchangeOne(e: Entry, type: number, body: Buffer): Promise<Buffer | undefined> {
  return enqueue(e, async () => {
    const msgs = await raw(e, type, 0, body);
    const err = msgs.find((m) => m.type === NLMSG_ERROR && m.data.readInt32LE(0) !== 0);
    if (err) {
      const errno = -err.data.readInt32LE(0);
      throw new NetlinkRequestError(errno, extackMessage(err) ?? errnoText(errno));
    }
    return msgs.find((m) => m.type !== NLMSG_ERROR)?.data;
  });
}

async function genlFamily(ns: NetnsKey, name: string): Promise<number> {
  const known = familyIds.get(name);
  if (known !== undefined) return known;
  let reply: Buffer | undefined;
  try {
    reply = await genlExchange(ns, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, [attr(CTRL_ATTR_FAMILY_NAME, str(name))]);
  } catch (err) {
    if (!(err instanceof NetlinkRequestError)) throw err;
    throw new NetlinkRequestError(err.errno, `generic netlink family ${name}: ${errnoText(err.errno)}`);
  }
  const id = reply && parseAttrs(reply).get(CTRL_ATTR_FAMILY_ID);
  if (!id || id.length < 2) throw new NetlinkRequestError(2, `generic netlink family ${name} not found`);
  familyIds.set(name, id.readUInt16LE(0));
  return id.readUInt16LE(0);
}

/** One generic netlink request (family by name, command, version, attributes) in `ns`; resolves on the ACK. */
export async function genlRequest(ns: NetnsKey, family: string, cmd: number, version: number, attrs: readonly Buffer[]): Promise<void> {
  const id = await genlFamily(ns, family);
  netlinkStats.requests++;
  await genlExchange(ns, id, cmd, version, attrs);
}

/**
 * One generic netlink GET (family by name, command, version, attributes) in `ns` that answers with one message:
 * that message's attributes (after the 4-byte genl header). Rejects with NetlinkRequestError on the kernel's ERROR.
 */
export async function genlGet(ns: NetnsKey, family: string, cmd: number, version: number, attrs: readonly Buffer[]): Promise<Buffer> {
  const id = await genlFamily(ns, family);
  netlinkStats.requests++;
  const reply = await genlExchange(ns, id, cmd, version, attrs);
  if (!reply) throw new NetlinkRequestError(61, `generic netlink ${family} command ${cmd}: no reply`);
  return reply;
}

// --- nfnetlink (nftables) ----------------------------------------------------------------------------------------

const NFT_MSG_GETGEN = 16;
const NFTA_GEN_ID = 1;

/**
 * The namespace's nftables generation (NFT_MSG_GETGEN): a counter every committed nftables change in that namespace
 * moves, so an unchanged value means an unchanged ruleset. One small request on a cached socket, against a full
 * listing through libnftables.
 */
export async function nftGeneration(ns: NetnsKey): Promise<number> {
  netlinkStats.requests++;
  // nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id 0.
  const reply = await exchangeOne(socketFor(ns, NETLINK_NETFILTER), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, Buffer.alloc(4));
  const id = reply && parseAttrs(reply, 4).get(NFTA_GEN_ID);
  // nftables attributes are big-endian.
  if (!id || id.length < 4) throw new NetlinkRequestError(61, 'nftables generation: no NFTA_GEN_ID in the answer');
  return id.readUInt32BE(0);
}

/** A file descriptor of namespace `ns` (IFLA_NET_NS_FD: create a veth's peer directly in it); close it with closeNetnsFd. */
export function openNetnsFd(ns: string): number {
  try {
    return openSync(`/run/netns/${checkNetnsName('netns', ns)}`, 'r');
  } catch {
    throw new NetlinkRequestError(2, `Cannot open network namespace "${ns}": No such file or directory`);
  }
}

export function closeNetnsFd(fd: number): void {
  closeSync(fd);
}
