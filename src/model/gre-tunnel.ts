/** GRE tunnels: how clean traffic reaches the customer's router. */
import { ValidationError, joinField } from './errors.js';
import {
  addressAt,
  cidrOf,
  formatCidr,
  formatIp,
  IpFormatError,
  isRfc1918,
  parseAddressWithLength,
  parseIpv4,
  whyNotPublicUnicast,
  type Cidr,
  type IpAddress,
} from './ip.js';
import { GreTunnelInput, type HealthCheck } from './schemas.js';
import { checkShape } from './shape.js';

export function ipv4Field(text: string, field: string): IpAddress {
  try {
    return parseIpv4(text);
  } catch (err) {
    if (err instanceof IpFormatError) throw new ValidationError(field, err.message);
    throw err;
  }
}

/**
 * A public unicast IPv4 address, as endpoints on the Internet must be. The documentation ranges
 * (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) count as public: the lab plays the Internet with them; with
 * `allowBenchmarking`, so does 198.18.0.0/15 (RFC 2544: benchmarks need more customer routers than those hold).
 */
export function publicIpv4Field(text: string, field: string, options: { allowBenchmarking?: boolean } = {}): string {
  const a = ipv4Field(text, field);
  const why = whyNotPublicUnicast(a, { allowDocumentation: true, allowBenchmarking: options.allowBenchmarking ?? false });
  if (why) throw new ValidationError(field, why);
  return formatIp(a);
}

/** The two ends of a tunnel's interface subnet. */
export interface TunnelAddresses {
  /** The subnet, e.g. "10.200.0.0/31". */
  subnet: string;
  /** 31 or 30. */
  length: number;
  /** The edge side, without length, e.g. "10.200.0.0". */
  edge: string;
  /** The customer side: the nexthop of routes over this tunnel, e.g. "10.200.0.1". */
  customer: string;
}

function interfaceParts(text: string, field: string): { address: IpAddress; subnet: Cidr; customer: IpAddress } {
  let parsed: { address: IpAddress; length: number };
  try {
    parsed = parseAddressWithLength(text);
  } catch (err) {
    if (err instanceof IpFormatError) throw new ValidationError(field, err.message);
    throw err;
  }
  const { address, length } = parsed;
  if (address.family !== 4) throw new ValidationError(field, `"${text}" must be IPv4`);
  if (length !== 31 && length !== 30) {
    throw new ValidationError(field, `"${text}" must be a /31 or a /30 (a point-to-point subnet), not /${length}`);
  }
  const subnet = cidrOf(address, length);
  if (!isRfc1918(subnet)) {
    throw new ValidationError(field, `"${text}" must lie in private RFC 1918 space (10/8, 172.16/12, 192.168/16)`);
  }
  const offset = address.value - subnet.network;
  let customerOffset: bigint;
  if (length === 31) {
    customerOffset = offset === 0n ? 1n : 0n;
  } else {
    // A /30 has two usable hosts, .1 and .2; .0 is the network and .3 the broadcast address.
    if (offset === 0n || offset === 3n) {
      throw new ValidationError(
        field,
        `"${text}" is the ${offset === 0n ? 'network' : 'broadcast'} address of its /30: write the edge side, ` +
          `e.g. ${formatIp(addressAt(subnet, 1))}/30`,
      );
    }
    customerOffset = offset === 1n ? 2n : 1n;
  }
  return { address, subnet, customer: addressAt(subnet, customerOffset) };
}

/**
 * Validates and normalises an interface address. The address written is the edge side; the customer side is the
 * other usable address of the subnet: 10.200.0.0/31 → edge .0, customer .1; 10.200.0.1/31 → edge .1, customer .0;
 * 10.200.0.1/30 → edge .1, customer .2 (and 10.200.0.2/30 the reverse).
 */
export function normaliseInterfaceAddress(text: string, field: string): string {
  const { address, subnet } = interfaceParts(text, field);
  return `${formatIp(address)}/${subnet.length}`;
}

/** Both sides of a (valid, normalised) interface address; throws ValidationError on a bad one. */
export function tunnelAddresses(interfaceAddress: string): TunnelAddresses {
  const { address, subnet, customer } = interfaceParts(interfaceAddress, 'interface_address');
  return { subnet: formatCidr(subnet), length: subnet.length, edge: formatIp(address), customer: formatIp(customer) };
}

export interface GreTunnelDraft {
  id?: string;
  name: string;
  customer_gre_endpoint: string;
  edge_gre_endpoint: string;
  interface_address: string;
  ttl: number;
  mtu: number;
  health_check: HealthCheck;
  description: string;
}

/** Validates one tunnel on its own; membership of the anycast pool is checked with the settings (consistency.ts). */
export function parseGreTunnelInput(input: unknown, base = ''): GreTunnelDraft {
  const t = checkShape(GreTunnelInput, input, base);
  const hc = t.health_check ?? {};
  return {
    ...(t.id !== undefined ? { id: t.id } : {}),
    name: t.name,
    // Customer routers may be in the benchmarking range: a benchmark's thousand customers each need their own.
    customer_gre_endpoint: publicIpv4Field(t.customer_gre_endpoint, joinField(base, 'customer_gre_endpoint'), { allowBenchmarking: true }),
    edge_gre_endpoint: formatIp(ipv4Field(t.edge_gre_endpoint, joinField(base, 'edge_gre_endpoint'))),
    interface_address: normaliseInterfaceAddress(t.interface_address, joinField(base, 'interface_address')),
    ttl: t.ttl ?? 64,
    mtu: t.mtu ?? 1476,
    health_check: { enabled: hc.enabled ?? true, type: hc.type ?? 'reply', rate: hc.rate ?? 'mid' },
    description: t.description ?? '',
  };
}
