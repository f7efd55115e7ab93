/**
 * Synthetic customers for benchmarks, written through the real API (build() on an LMDB store in a temporary
 * directory, via test/support's fixture) so they pass the same validation as an operator's.
 *
 * Customer i (0 ≤ i < MAX_CUSTOMERS = 767): prefix 198.18.0.0/15 cut into /26s (198.18.0.0/26, 198.18.0.64/26 …);
 * one GRE tunnel from its own router address (documentation ranges) to the anycast endpoint 192.0.2.10 over
 * 10.100.x.y/31; one route of its prefix over that tunnel; a firewall of one allow rule and a default block.
 */
import { decodeAccountDocument } from '../../src/model/account.js';
import { keys } from '../../src/model/keys.js';
import type { AccountDocument } from '../../src/model/schemas.js';
import { openApi, type ApiFixture } from '../../test/support/api-fixture.js';

/** The anycast endpoint of a fresh store (the model's default settings). */
export const ANYCAST_ENDPOINT = '192.0.2.10';

/**
 * Customer router addresses: every address of the three IPv4 documentation ranges but the anycast endpoint. An
 * agent accepts GRE from a customer router for one account only (decap knows the router by its address), so each
 * customer needs its own — which is what bounds a benchmark's customer count, not the machine.
 */
const ROUTERS: string[] = ['198.51.100', '203.0.113', '192.0.2']
  .flatMap((net) => Array.from({ length: 256 }, (_, h) => `${net}.${h}`))
  .filter((a) => a !== ANYCAST_ENDPOINT);
export const MAX_CUSTOMERS = ROUTERS.length;

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
        customer_gre_endpoint: ROUTERS[i]!,
        edge_gre_endpoint: ANYCAST_ENDPOINT,
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
