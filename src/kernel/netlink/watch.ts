/**
 * Kernel change notifications, for drift repair that reacts in milliseconds instead of re-reading every namespace
 * each resync period: one rtnetlink and one nfnetlink socket in the watching namespace (the agent's host netns)
 * with NETLINK_LISTEN_ALL_NSID, so they also hear every namespace the host has an id for — each customer namespace
 * gets one as soon as its veth pair exists (the host side's IFLA_LINK_NETNSID allocates it) — and an inotify watch
 * on /run/netns for namespaces deleted by name.
 *
 * What comes out is a list of decoded changes, each saying where (the namespace id, null for the watching one)
 * and what (a link, address, route, rule, neighbour, tc filter or qdisc, an nftables commit, a named namespace).
 * Deciding what a change means is the caller's (agent/drift-watch.ts). Two filters happen here because only the
 * kernel layer can apply them:
 *  - changes our own requests caused are marked `own` (the notification's nlmsg_pid is the port of one of our
 *    sockets; an nftables commit names the committing thread), so a pass's writes do not trigger another pass.
 *    Link notifications carry no sender (nlmsg_pid 0, `byKernel`), whoever asked: the caller judges them by
 *    what the link looks like (KernelWatch.link);
 *  - a link notification that changes none of what a reconcile checks (carrier and operstate flaps, statistics) is
 *    dropped: the watcher remembers each link's name, flags, MTU, MAC and peer namespace.
 * When the kernel drops notifications (the receive buffer overflowed), `onOverflow` says so: anything may have
 * changed.
 */
import { existsSync, watch as fsWatch, mkdirSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { nftThreadName, openNetlinkWatch } from '../bpf/index.js';
import type { NativeNetlinkWatch } from '../bpf/native.js';
import { decodeLink, listLinks, type Link } from '../links.js';
import { NETNS_RUN_DIR } from '../netns.js';
import { routeWhere } from '../routes.js';
import { getStr, NETLINK_NETFILTER, NETLINK_ROUTE, NFNL_SUBSYS_NFTABLES, parseAttrs, RTM } from './codec.js';
import { isOwnNetlinkPort } from './socket.js';

/**
 * rtnetlink multicast groups (linux/rtnetlink.h): what a reconcile reads and someone may change. Not netconf: the
 * kernel sends it with no sender for every write, ours included (our own /proc writes could not be told from
 * drift), and sysctls are the periodic check's.
 */
const RTNLGRP = { LINK: 1, NEIGH: 3, TC: 4, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV4_RULE: 8, IPV6_IFADDR: 9, IPV6_ROUTE: 11, IPV6_RULE: 19 } as const;
const NFNLGRP_NFTABLES = 7;
const NFT_MSG_NEWGEN = 15;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** Message types beyond codec.ts's RTM table. */
const RTM_TC = { NEWQDISC: 36, DELQDISC: 37, NEWTFILTER: 44, DELTFILTER: 45, NEWCHAIN: 100, DELCHAIN: 101 } as const;
/** Big enough for a burst of a thousand namespaces' notifications (the agent may be busy when they arrive). */
const RCVBUF_BYTES = 8 << 20;

export type KernelChangeKind = 'link' | 'address' | 'route' | 'rule' | 'neighbour' | 'tc' | 'nft' | 'netns';

export interface KernelChange {
  kind: KernelChangeKind;
  /** The namespace it happened in: null for the watching namespace, else the id the watching namespace gives it. */
  nsid: number | null;
  /** A deletion (RTM_DEL*, a removed namespace name). */
  deleted: boolean;
  /** Caused by one of our own requests (see the module comment): no drift. */
  own: boolean;
  /** link, address, neighbour, tc: the device. */
  ifindex?: number;
  /** route: every device it points into (one, or a multipath route's). */
  oifs?: number[];
  /** route: the table. */
  table?: number;
  /** route: rtm_protocol (who owns it). */
  protocol?: number;
  /** The kernel's own doing, not a request's (nlmsg_pid 0): IPv6 autoconf, carrier, a device going away. */
  byKernel: boolean;
  /** link: as decoded (name, peer namespace id…). */
  link?: Link;
  /** netns: the name under /run/netns that appeared or went away. */
  name?: string;
}

export interface KernelWatchOptions {
  /** The namespace to watch from (a name under /run/netns). */
  netns: string;
  /** The directory of named namespaces to watch for deletions (default NETNS_RUN_DIR, /run/netns). */
  netnsDir?: string;
  onChanges: (changes: KernelChange[]) => void;
  /** Notifications were lost: assume anything changed. */
  onOverflow: () => void;
  /** Receive buffer per socket (default 8 MiB; tests make it small to overflow it). */
  rcvbufBytes?: number;
}

/** What of a link a reconcile looks at: a notification that changes none of it is no drift. */
const linkShape = (l: Link) => `${l.name}|${l.up}|${l.mtu}|${l.mac}|${l.kind ?? ''}|${l.linkNetnsId ?? ''}|${l.peerIfindex ?? ''}`;

export class KernelWatch {
  #rtnl: NativeNetlinkWatch | undefined;
  #nfnl: NativeNetlinkWatch | undefined;
  #dir: FSWatcher | undefined;
  /** Every namespace's links as last seen (a dump of the watching one, notifications of all): `${nsid}|${ifindex}`. */
  readonly #links = new Map<string, Link>();
  #closed = false;

  private constructor(private readonly opts: KernelWatchOptions) {}

  /**
   * Subscribes, then reads the watching namespace's links (the ifindex → name table, and which namespace id each
   * veth's peer lives in). Notifications that arrive meanwhile are applied after the dump.
   */
  static async open(opts: KernelWatchOptions): Promise<KernelWatch> {
    const w = new KernelWatch(opts);
    const held: Array<[Buffer[], number[], boolean]> = [];
    let ready = false;
    const onBatch = (datagrams: Buffer[], nsids: number[], overflowed: boolean) => {
      if (w.#closed) return;
      if (!ready) held.push([datagrams, nsids, overflowed]);
      else w.#deliver(datagrams, nsids, overflowed);
    };
    const dir = opts.netnsDir ?? NETNS_RUN_DIR;
    const rcvbuf = opts.rcvbufBytes ?? RCVBUF_BYTES;
    try {
      w.#rtnl = openNetlinkWatch(opts.netns, NETLINK_ROUTE, Object.values(RTNLGRP), rcvbuf, onBatch);
      w.#rtnl.unref();
      w.#nfnl = openNetlinkWatch(opts.netns, NETLINK_NETFILTER, [NFNLGRP_NFTABLES], rcvbuf, onBatch);
      w.#nfnl.unref();
      // `ip netns add` makes the directory on first use; making it here lets the watch start before any namespace.
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      w.#dir = fsWatch(dir, { persistent: false }, (_event, name) => {
        if (!w.#closed && typeof name === 'string')
          opts.onChanges([{ kind: 'netns', nsid: null, deleted: !existsSync(join(dir, name)), own: false, byKernel: false, name }]);
      });
      // A watch error (the directory itself went away) is no drift we can attribute: anything may have changed.
      w.#dir.on('error', () => !w.#closed && opts.onOverflow());
      for (const l of await listLinks(opts.netns)) w.#links.set(`null|${l.ifindex}`, l);
    } catch (e) {
      w.close();
      throw e;
    }
    // What arrived during the dump is delivered once the caller holds the watch (its handler may use it), before
    // anything newer: batches keep queueing until then.
    setImmediate(() => {
      ready = true;
      if (!w.#closed) for (const b of held) w.#deliver(...b);
      held.length = 0;
    });
    return w;
  }

  /** A link of the watching namespace by ifindex, as last seen. */
  hostLink(ifindex: number): Link | undefined {
    return this.#links.get(`null|${ifindex}`);
  }

  /** A link of any namespace heard of (null: the watching one), as its last notification showed it. */
  link(nsid: number | null, ifindex: number): Link | undefined {
    return this.#links.get(`${nsid}|${ifindex}`);
  }

  /** The watching namespace's links, as last seen. */
  *hostLinks(): IterableIterator<Link> {
    for (const [key, link] of this.#links) if (key.startsWith('null|')) yield link;
  }

  close(): void {
    this.#closed = true;
    this.#rtnl?.close();
    this.#nfnl?.close();
    this.#dir?.close();
    this.#rtnl = this.#nfnl = this.#dir = undefined;
  }

  #deliver(datagrams: Buffer[], nsids: number[], overflowed: boolean): void {
    if (overflowed) this.opts.onOverflow();
    const changes: KernelChange[] = [];
    for (let i = 0; i < datagrams.length; i++) {
      const nsid = nsids[i]! < 0 ? null : nsids[i]!;
      for (const m of messages(datagrams[i]!)) {
        const c = this.#decode(nsid, m);
        if (c) changes.push(c);
      }
    }
    if (changes.length > 0) this.opts.onChanges(changes);
  }

  #decode(nsid: number | null, m: Message): KernelChange | undefined {
    const own = isOwnNetlinkPort(m.pid);
    const byKernel = m.pid === 0;
    const body = m.body;
    switch (m.type) {
      case RTM.NEWLINK:
      case RTM.DELLINK: {
        if (body.length < 16) return undefined;
        const link = decodeLink(body);
        const deleted = m.type === RTM.DELLINK;
        const key = `${nsid}|${link.ifindex}`;
        const before = this.#links.get(key);
        if (deleted) {
          this.#links.delete(key);
          // A host veth gone: its peer namespace's links are gone or going, often without a word of their own.
          const peerNs = nsid === null ? (before ?? link).linkNetnsId : undefined;
          if (peerNs !== undefined) for (const k of [...this.#links.keys()]) if (k.startsWith(`${peerNs}|`)) this.#links.delete(k);
        } else {
          this.#links.set(key, link);
          if (before && linkShape(before) === linkShape(link)) return undefined;
        }
        return { kind: 'link', nsid, deleted, own, byKernel, ifindex: link.ifindex, link };
      }
      case RTM.NEWADDR:
      case RTM.DELADDR: {
        if (body.length < 8) return undefined;
        return { kind: 'address', nsid, deleted: m.type === RTM.DELADDR, own, byKernel, ifindex: body.readUInt32LE(4) };
      }
      case RTM.NEWROUTE:
      case RTM.DELROUTE: {
        if (body.length < 12) return undefined;
        return { kind: 'route', nsid, deleted: m.type === RTM.DELROUTE, own, byKernel, ...routeWhere(body) };
      }
      case RTM.NEWRULE:
      case RTM.DELRULE: {
        if (body.length < 12) return undefined;
        return { kind: 'rule', nsid, deleted: m.type === RTM.DELRULE, own, byKernel };
      }
      case RTM.NEWNEIGH:
      case RTM.DELNEIGH: {
        if (body.length < 12) return undefined;
        return { kind: 'neighbour', nsid, deleted: m.type === RTM.DELNEIGH, own, byKernel, ifindex: body.readInt32LE(4) };
      }
      case RTM_TC.NEWQDISC:
      case RTM_TC.DELQDISC:
      case RTM_TC.NEWTFILTER:
      case RTM_TC.DELTFILTER:
      case RTM_TC.NEWCHAIN:
      case RTM_TC.DELCHAIN: {
        if (body.length < 8) return undefined;
        const deleted = m.type === RTM_TC.DELQDISC || m.type === RTM_TC.DELTFILTER || m.type === RTM_TC.DELCHAIN;
        return { kind: 'tc', nsid, deleted, own, byKernel, ifindex: body.readInt32LE(4) };
      }
      default:
        // nftables: every commit ends with NEWGEN, which names the committing process; the objects' own
        // notifications before it add nothing a reconcile needs (it re-reads the table).
        if (m.type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN) && body.length >= 4) {
          const a = parseAttrs(body, 4);
          const pid = a.get(NFTA_GEN_PROC_PID);
          const committer = pid && pid.length >= 4 ? pid.readUInt32BE(0) : undefined;
          return { kind: 'nft', nsid, deleted: false, own: ownCommit(committer, getStr(a.get(NFTA_GEN_PROC_NAME))), byKernel: false };
        }
        return undefined;
    }
  }
}

/**
 * Whether an nftables commit was ours. The kernel names the committing task (a thread id) and its name: ours commit
 * on short-lived threads named nftThreadName(), usually gone by the time the notification is read. A live task is
 * ours when it is one of this process's threads; a task that is gone is ours when it bore our name (nftThreadName:
 * native/nft.cc names them).
 */
function ownCommit(tid: number | undefined, name: string | undefined): boolean {
  if (tid === undefined) return false;
  if (tid === process.pid || existsSync(`/proc/self/task/${tid}`)) return true;
  return name === nftThreadName() && !existsSync(`/proc/${tid}`);
}

interface Message {
  type: number;
  flags: number;
  pid: number;
  body: Buffer;
}

/** The netlink messages of one datagram (nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32). */
function messages(d: Buffer): Message[] {
  const out: Message[] = [];
  for (let o = 0; o + 16 <= d.length; ) {
    const len = d.readUInt32LE(o);
    if (len < 16 || o + len > d.length) break;
    out.push({ type: d.readUInt16LE(o + 4), flags: d.readUInt16LE(o + 6), pid: d.readUInt32LE(o + 12), body: d.subarray(o + 16, o + len) });
    o += (len + 3) & ~3;
  }
  return out;
}
