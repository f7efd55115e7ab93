/**
 * The edge node's own parameters and the names/addresses the agent derives from ids. Pure: the same inputs give
 * the same names on every restart, so an agent finds (and never duplicates) what an earlier run created.
 */
import { createHash } from 'node:crypto';
import { OT_TUNNEL_MAC_0, OT_TUNNEL_MAC_1 } from '../../kernel/bpf/abi.generated.js';
import { macFromKey } from '../../kernel/links.js';
import { formatIp } from '../../model/ip.js';

export interface NodeConfig {
  nodeId: string;
  /** The namespace that stands for this server ("host"). Always explicit: never the agent's own netns. */
  hostNetns: string;
  /** The uplink interface in the host netns (XDP attaches here). */
  uplink: string;
  /**
   * Prefix of every customer namespace this agent makes (default "ot-"). Customer namespaces are global on a
   * machine, so agents sharing one (the lab) each need their own; the lab passes "otl-<lab>-<edge>-".
   */
  netnsPrefix: string;
  /** Packet mark that sends customer traffic to the customer routing table. */
  fwmark: number;
  /** The routing table holding customer prefixes (never the main table). */
  table: number;
  /** Priority of the fwmark policy rule. */
  rulePriority: number;
  /**
   * The eBPF fast path for customer traffic (bpf/lib/fastpath.h; default on): route it with bpf_fib_lookup (the
   * same rules and tables, with `fwmark`) and redirect it, skipping the host netns's stack and so its netfilter
   * hooks, of which only our own `mark` and `mss` chains are accounted for. Off (`--fast-path off`) for an
   * operator with netfilter rules or XFRM policies of their own in the host netns.
   */
  fastPath?: boolean;
}

export const NODE_DEFAULTS = {
  netnsPrefix: 'ot-',
  /** "OT" in ASCII. */
  fwmark: 0x4f54,
  table: 4242,
  rulePriority: 1000,
} as const;

/** Node ids name files, keys and namespaces: keep them to a safe, short slug (the model's rule, shared with the API). */
export { NODE_ID_PATTERN } from '../../model/node-config.js';

/** The part of an account id that names its kernel objects (12 hex digits: collisions are checked, not assumed). */
export function accountShortId(accountId: string): string {
  return accountId.slice(0, 12);
}

export function customerNetns(node: Pick<NodeConfig, 'netnsPrefix'>, accountId: string): string {
  return `${node.netnsPrefix}${accountShortId(accountId)}`;
}

/** Host side of the customer's veth: "ot" + 12 hex = 14 characters (the kernel allows 15). */
export function hostVethName(accountId: string): string {
  return `ot${accountShortId(accountId)}`;
}

/** The customer side lives in the customer's own namespace, so one fixed name serves every customer. */
export const CUSTOMER_VETH = 'edge0';

/**
 * Link addresses of the veth pair: the same pair in every customer, as /32s, so nothing lands in the host's main
 * table (a /30 would add a connected route there per customer) and the customer netns reaches the host with an
 * onlink default route.
 */
export const HOST_LINK_ADDRESS = '169.254.0.1';
export const CUSTOMER_LINK_ADDRESS = '169.254.0.2';
/** IPv6 twins: fixed link-local addresses (fe80::/64 on every veth is routed per device, never globally). */
export const HOST_LINK_ADDRESS6 = 'fe80::1';
export const CUSTOMER_LINK_ADDRESS6 = 'fe80::2';

function mac(bytes: Uint8Array): string {
  return [...bytes].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function hashBytes(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function hostVethMac(node: NodeConfig, accountId: string): string {
  return macFromKey(`host-veth:${node.nodeId}:${accountId}`);
}

export function customerVethMac(node: NodeConfig, accountId: string): string {
  return macFromKey(`customer-veth:${node.nodeId}:${accountId}`);
}

/**
 * Tunnel numbers (the 4 low octets of a tunnel's MAC, which the tc program maps to the tunnel) for an account's
 * tunnels: derived from each tunnel id so they survive restarts and reordering; a collision inside one account
 * (the only scope that matters: the BPF key also holds the namespace) moves the later id to the next free number.
 */
export function tunnelNumbers(tunnelIds: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const id of [...tunnelIds].sort()) {
    let n = hashBytes(`tunnel:${id}`).readUInt32BE(0);
    while (used.has(n)) n = (n + 1) >>> 0;
    used.add(n);
    out.set(id, n);
  }
  return out;
}

export function tunnelMac(tunnelNumber: number): string {
  const b = Buffer.alloc(6);
  b[0] = OT_TUNNEL_MAC_0;
  b[1] = OT_TUNNEL_MAC_1;
  b.writeUInt32BE(tunnelNumber >>> 0, 2);
  return mac(b);
}

/**
 * The IPv6 next hop of a tunnel inside the customer netns: the modified EUI-64 link-local address of the tunnel's
 * MAC (02:4f:a1:b2:c3:d4 → fe80::4f:a1ff:feb2:c3d4). Why: an IPv6 route cannot have the tunnel's IPv4 peer as its
 * gateway (kernel: "IPv6 routes can not use an IPv4 nexthop"), but the tunnel is chosen from the destination MAC
 * only, so any IPv6 next hop whose permanent neighbour entry holds the tunnel MAC selects the same tunnel. Derived
 * from the MAC alone: the same tunnel gets the same address on every node and after every restart.
 */
export function tunnelLinkLocal(tunnelMacText: string): string {
  const b = tunnelMacText.split(':').map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not a MAC address: ${JSON.stringify(tunnelMacText)}`);
  const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const interfaceId = eui.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  return formatIp({ family: 6, value: (0xfe80n << 112n) | interfaceId });
}

/** A short, stable hash of a JSON-able value: the version stamp of a desired nft table. */
export function versionOf(value: unknown): string {
  return hashBytes(JSON.stringify(value)).subarray(0, 12).toString('hex');
}
