/** Routes: which tunnel(s) carry traffic for a destination inside the account's prefixes. */
import { joinField } from './errors.js';
import { ipv4Field } from './gre-tunnel.js';
import { formatCidr, formatIp } from './ip.js';
import { cidrField } from './prefix.js';
import { RouteInput } from './schemas.js';
import { checkShape } from './shape.js';

export interface RouteDraft {
  id?: string;
  prefix: string;
  nexthop: string;
  priority: number;
  weight: number;
  description: string;
}

/** The natural key of a route: one route per (prefix, nexthop). */
export function routeKey(r: { prefix: string; nexthop: string }): string {
  return `${r.prefix} via ${r.nexthop}`;
}

/**
 * Validates one route on its own. The nexthop is IPv4 (tunnel interfaces are); an IPv6 prefix via an IPv4
 * nexthop is allowed (Linux routes it with `via inet`). Containment and nexthop rules live in consistency.ts.
 */
export function parseRouteInput(input: unknown, base = ''): RouteDraft {
  const r = checkShape(RouteInput, input, base);
  return {
    ...(r.id !== undefined ? { id: r.id } : {}),
    prefix: formatCidr(cidrField(r.prefix, joinField(base, 'prefix'))),
    nexthop: formatIp(ipv4Field(r.nexthop, joinField(base, 'nexthop'))),
    priority: r.priority,
    weight: r.weight ?? 1,
    description: r.description ?? '',
  };
}
