/**
 * Synthetic customers for benchmarks, written through the real API (build() on an LMDB store in a temporary
 * directory, via test/support's fixture) so they pass the same validation as an operator's.
 *
 * Customer i (0 ≤ i < MAX_CUSTOMERS = 2048): prefix 198.18.0.0/16 cut into /27s (198.18.0.0/27, 198.18.0.32/27 …);
 * one GRE tunnel from its own router address 198.19.0.0/16 + i + 1 to the anycast endpoint 192.0.2.10 over
 * 10.100.x.y/31; one route of its prefix over that tunnel; a firewall of one allow rule and a default block.
 * Both /16s are halves of the benchmarking range 198.18.0.0/15 (RFC 2544: never routed on the internet, made for
 * test set-ups), which the model accepts for customer routers; routers and prefixes never overlap.
 */
import { decodeAccountDocument } from '../../src/model/account.js';
import { keys } from '../../src/model/keys.js';
import type { AccountDocument } from '../../src/model/schemas.js';
import { openApi, type ApiFixture } from '../../test/support/api-fixture.js';

/** The anycast endpoint of a fresh store (the model's default settings). */
export const ANYCAST_ENDPOINT = '192.0.2.10';

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const BASE_198_18 = (198 << 24) | (18 << 16);
const BASE_198_19 = (198 << 24) | (19 << 16);
const BASE_10_100 = (10 << 24) | (100 << 16);
/** Addresses per customer prefix (/27): 198.18.0.0/16 holds 2048 of them. */
const PREFIX_SIZE = 32;

/**
 * How many customers fit: 198.18.0.0/16 in /27 prefixes. Each also needs a router address of its own — an agent
 * accepts GRE from a customer router for one account only (decap knows the router by its address) — and
 * 198.19.0.0/16 holds 65534 of those.
 */
export const MAX_CUSTOMERS = 65536 / PREFIX_SIZE;

/** Customer i's router (its customer_gre_endpoint): 198.19.0.1, 198.19.0.2 … (never .0.0 nor .255.255). */
export function customerRouter(i: number): string {
  return ipv4((BASE_198_19 + i + 1) >>> 0);
}

export function customerPrefix(i: number): string {
  return `${ipv4((BASE_198_18 + i * PREFIX_SIZE) >>> 0)}/27`;
}

export function customerConfig(i: number, priority = 100): Record<string, unknown> {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_CUSTOMERS) throw new Error(`customer index ${i}: must be in 0..${MAX_CUSTOMERS - 1}`);
  const net = (BASE_198_18 + i * PREFIX_SIZE) >>> 0;
  const tun = (BASE_10_100 + i * 2) >>> 0;
  return {
    account: `bench-${i}`,
    prefixes: [{ cidr: customerPrefix(i), advertised: true }],
    gre_tunnels: [
      {
        name: `bench-${i}`,
        customer_gre_endpoint: customerRouter(i),
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
