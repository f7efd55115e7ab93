/**
 * Opening a Store from one configuration string, as given on command lines and in config files:
 *
 *   lmdb:DIR                          the embedded store in DIR (lmdb:///abs/dir is accepted too)
 *   etcd://host:port[,host:port…]     an etcd cluster (plain gRPC)
 *   etcds://host:port[,host:port…]    an etcd cluster over TLS (system CAs)
 *
 * Backends are imported on demand, so a process using LMDB never loads gRPC and one using etcd never loads LMDB.
 */
import type { Store } from './store.js';
import type { LmdbStoreOptions } from './lmdb.js';
import type { EtcdStoreOptions } from './etcd.js';
import { StoreInputError } from './txn-validation.js';
import { parseEndpoint } from './endpoints.js';

export type StoreSpec = { kind: 'lmdb'; dir: string } | { kind: 'etcd'; endpoints: string[] };

export interface OpenStoreOptions {
  lmdb?: LmdbStoreOptions;
  etcd?: EtcdStoreOptions;
}

const EXPECTED = 'expected lmdb:DIR or etcd://host:port[,host:port…]';

/** Parses a store spec; throws StoreInputError naming what is wrong. */
export function parseStoreSpec(spec: string): StoreSpec {
  if (typeof spec !== 'string' || spec.trim() === '') throw new StoreInputError(`store spec: empty; ${EXPECTED}`);
  const s = spec.trim();
  const colon = s.indexOf(':');
  const scheme = colon > 0 ? s.slice(0, colon).toLowerCase() : '';
  const rest = colon > 0 ? s.slice(colon + 1) : '';
  if (scheme === 'lmdb') {
    // lmdb:///var/lib/x (URL style) means /var/lib/x; lmdb:data means ./data.
    const dir = rest.startsWith('//') ? rest.slice(2) : rest;
    if (dir === '') throw new StoreInputError(`store spec ${JSON.stringify(spec)}: lmdb needs a directory (lmdb:DIR)`);
    if (dir.includes('\0')) throw new StoreInputError(`store spec ${JSON.stringify(spec)}: directory contains a NUL byte`);
    return { kind: 'lmdb', dir };
  }
  if (scheme === 'etcd' || scheme === 'etcds') {
    if (!rest.startsWith('//')) throw new StoreInputError(`store spec ${JSON.stringify(spec)}: write ${scheme}://host:port`);
    const list = rest.slice(2).replace(/\/$/, '');
    if (list === '') throw new StoreInputError(`store spec ${JSON.stringify(spec)}: no etcd endpoint given`);
    const endpoints = list
      .split(',')
      .map((e, i) => parseEndpoint(e.trim(), `store spec ${JSON.stringify(spec)}: endpoint ${i + 1}`, scheme === 'etcds' ? 'https' : 'http'));
    return { kind: 'etcd', endpoints };
  }
  throw new StoreInputError(`store spec ${JSON.stringify(spec)}: unknown store kind ${JSON.stringify(scheme || s)}; ${EXPECTED}`);
}

/** Opens the store a spec names (see parseStoreSpec). */
export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const parsed = parseStoreSpec(spec);
  if (parsed.kind === 'lmdb') {
    const { openLmdbStore } = await import('./lmdb.js');
    return openLmdbStore(parsed.dir, opts.lmdb);
  }
  const { openEtcdStore } = await import('./etcd.js');
  return openEtcdStore(parsed.endpoints, opts.etcd);
}
