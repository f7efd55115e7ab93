/**
 * An API on a real LMDB store in a fresh temporary directory, driven through fastify's inject; `close()` removes
 * everything it created. Also a few builders of valid objects, so tests only spell out what they vary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { build } from '../../src/api/app.js';
import { openLmdbStore, type LmdbStore } from '../../src/store/lmdb.js';

export const OPERATOR_TOKEN = 'ot_test-operator-token-0123456789';

export interface Account {
  id: string;
  name: string;
  token: string;
}

export interface ApiFixture {
  app: FastifyInstance;
  store: LmdbStore;
  dir: string;
  /** Request with the operator token (or `token`, or none with token: null). */
  call(method: InjectOptions['method'], url: string, opts?: CallOptions): Promise<LightMyRequestResponse>;
  createAccount(name: string): Promise<Account>;
  /** Every key and value of the store, to prove a refused request changed nothing. */
  snapshot(): Promise<{ revision: number; data: Record<string, string> }>;
  close(): Promise<void>;
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  /** A raw body (string or Buffer) sent as is. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export async function openApi(opts: { bodyLimit?: number } = {}): Promise<ApiFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-api-test-'));
  const store = await openLmdbStore(dir);
  const app = await build({ store, operatorToken: OPERATOR_TOKEN, ...opts });
  const call: ApiFixture['call'] = (method, url, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token === undefined ? OPERATOR_TOKEN : o.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (o.raw !== undefined) payload = o.raw;
    else if (o.body !== undefined) payload = JSON.stringify(o.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    return app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  };
  return {
    app,
    store,
    dir,
    call,
    async createAccount(name) {
      const res = await call('POST', '/v1/accounts', { body: { name } });
      if (res.statusCode !== 201) throw new Error(`creating account ${name}: ${res.statusCode} ${res.body}`);
      return res.json() as Account;
    },
    async snapshot() {
      const { items, revision } = await store.list('/');
      return { revision, data: Object.fromEntries(items.map((kv) => [kv.key, kv.value])) };
    },
    async close() {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const tunnel = (over: Record<string, unknown> = {}) => ({
  name: 'acme-chi',
  customer_gre_endpoint: '198.51.100.2',
  edge_gre_endpoint: '192.0.2.10',
  interface_address: '10.200.0.0/31',
  ...over,
});

export const route = (over: Record<string, unknown> = {}) => ({
  prefix: '203.0.113.0/24',
  nexthop: '10.200.0.1',
  priority: 100,
  ...over,
});

/** The example account document of the contract. */
export const ACME_CONFIG = {
  account: 'acme',
  prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
  gre_tunnels: [tunnel()],
  routes: [route()],
  firewall: {
    default_action: 'block',
    rules: [{ action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}' }],
  },
};

/** The parsed error envelope of a response, asserting it has the one shape. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string; field?: string } {
  const body = res.json() as { error?: { code: string; message: string; field?: string } };
  if (!body.error || typeof body.error.code !== 'string' || typeof body.error.message !== 'string') {
    throw new Error(`not an error envelope: ${res.body}`);
  }
  return body.error;
}
