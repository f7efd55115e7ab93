/**
 * Synthetic customers for benchmarks, written through the real API (build() on an LMDB store in a temporary
 * directory, via test/support's fixture) so they pass the same validation as an operator's.
 *
 * Customer i (0 ≤ i < 1000): prefix 198.18.0.0/15 cut into /26s (198.18.0.0/26, 198.18.0.64/26 …); one GRE
 * tunnel from 198.51.100.x to 192.0.2.y (pairs unique across accounts) over 10.100.x.y/31; one route of its
 * prefix over that tunnel; a firewall of one allow rule and a default block.
 */
import { decodeAccountDocument } from '../../src/model/account.js';
import { keys } from '../../src/model/keys.js';
import type { AccountDocument } from '../../src/model/schemas.js';
import { openApi, type ApiFixture } from '../../test/support/api-fixture.js';

export const MAX_CUSTOMERS = 1000;
export const ANYCAST_ENDPOINTS = ['192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13'];

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const BASE_198_18 = (198 << 24) | (18 << 16);
const BASE_10_100 = (10 << 24) | (100 << 16);

export function customerPrefix(i: number): string {
  return `${ipv4((BASE_198_18 + i * 64) >>> 0)}/26`;
}

export function customerConfig(i: number, priority = 100): Record<string, unknown> {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_CUSTOMERS) throw new Error(`customer index ${i}: must be in 0..${MAX_CUSTOMERS - 1}`);
  const net = (BASE_198_18 + i * 64) >>> 0;
  const tun = (BASE_10_100 + i * 2) >>> 0;
  return {
    account: `bench-${i}`,
    prefixes: [{ cidr: customerPrefix(i), advertised: true }],
    gre_tunnels: [
      {
        name: `bench-${i}`,
        // (customer, edge) endpoint pairs must be unique across accounts; the documentation ranges play the Internet.
        customer_gre_endpoint: `198.51.100.${(i % 250) + 1}`,
        edge_gre_endpoint: ANYCAST_ENDPOINTS[Math.floor(i / 250)]!,
        interface_address: `${ipv4(tun)}/31`,
      },
    ],
    routes: [{ prefix: customerPrefix(i), nexthop: ipv4(tun + 1), priority }],
    firewall: {
      default_action: 'block',
      rules: [{ action: 'allow', expression: `ip.dst == ${ipv4(net + 10)} and tcp.dstport in {80 443}` }],
    },
  };
}

export interface WrittenCustomer {
  index: number;
  id: string;
  /** The account document's revision after its config was written. */
  revision: number;
}

export interface BenchApi {
  api: ApiFixture;
  customers: WrittenCustomer[];
}

/** Opens an API on a fresh LMDB store and writes customers 0..n-1 (not timed: set-up). */
export async function openApiWithCustomers(n: number, log?: (m: string) => void): Promise<BenchApi> {
  const api = await openApi();
  const customers: WrittenCustomer[] = [];
  try {
    // Four anycast endpoints: a (customer, edge) endpoint pair must be unique, and 198.51.100.0/24 has 250 hosts.
    const settings = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ANYCAST_ENDPOINTS, bgp_peers: [], blocklist: [] } });
    if (settings.statusCode !== 200) throw new Error(`operator settings: ${settings.statusCode} ${settings.body}`);
    for (let i = 0; i < n; i++) customers.push(await writeCustomer(api, i));
    if (n >= 100) log?.(`wrote ${n} customers through the API`);
  } catch (e) {
    await api.close();
    throw e;
  }
  return { api, customers };
}

export async function writeCustomer(api: ApiFixture, i: number): Promise<WrittenCustomer> {
  const account = await api.createAccount(`bench-${i}`);
  const res = await api.call('PUT', `/v1/accounts/${account.id}/config`, { body: customerConfig(i) });
  if (res.statusCode !== 200) throw new Error(`writing customer ${i}: ${res.statusCode} ${res.body}`);
  return { index: i, id: account.id, revision: (res.json() as { revision: number }).revision };
}

/** The stored document of an account (what the agent decodes). */
export async function accountDocument(api: ApiFixture, id: string): Promise<AccountDocument> {
  const kv = await api.store.get(keys.account(id));
  if (!kv) throw new Error(`account ${id} is not in the store`);
  return decodeAccountDocument(kv.value);
}
