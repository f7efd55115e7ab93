/**
 * `opentransit api`: opens the embedded store in the data directory and serves the HTTP API.
 *
 * The operator token comes from OPENTRANSIT_OPERATOR_TOKEN; without it, the first start generates one, prints it
 * once, and keeps only its SHA-256 in DIR/operator-token.sha256 (mode 0600) — later starts use that hash.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openLmdbStore } from '../store/lmdb.js';
import type { Store } from '../store/store.js';
import { build } from './app.js';
import { newToken, tokenHash } from './auth.js';

export const OPERATOR_TOKEN_ENV = 'OPENTRANSIT_OPERATOR_TOKEN';
export const OPERATOR_TOKEN_FILE = 'operator-token.sha256';

export interface StartApiServerOptions {
  /** "host:port" ("[::1]:8080" for IPv6); port 0 picks a free port. */
  listen: string;
  /** Directory of the embedded LMDB store and the operator token hash. */
  dataDir: string;
  /** Use this store instead of opening LMDB in dataDir (it is then not closed by close()). */
  store?: Store;
  /** Environment to read OPENTRANSIT_OPERATOR_TOKEN from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Where the listening URL and a generated token are printed (default stdout). */
  print?: (line: string) => void;
  /** Close cleanly on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  bodyLimit?: number;
}

export interface ApiServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen "${listen}": expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080`);
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The operator token's hash: from the environment, else from DIR/operator-token.sha256, else a new token
 * (printed once; its hash written to that file, mode 0600).
 */
export function operatorTokenHash(
  dataDir: string,
  env: Record<string, string | undefined>,
  print: (line: string) => void,
): string {
  const fromEnv = env[OPERATOR_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return tokenHash(fromEnv);
  const file = path.join(dataDir, OPERATOR_TOKEN_FILE);
  try {
    const stored = fs.readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(stored)) throw new Error(`${file} does not hold a SHA-256 hex digest; delete it to generate a new token`);
    return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = newToken();
  const hash = tokenHash(token);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // 'wx': never overwrite a hash another process wrote meanwhile.
  fs.writeFileSync(file, `${hash}\n`, { mode: 0o600, flag: 'wx' });
  print(`Generated the operator token (shown only this once; only its SHA-256 is kept in ${file}):`);
  print(`  ${token}`);
  print(`Use it as OPENTRANSIT_TOKEN for the CLI, or set ${OPERATOR_TOKEN_ENV} to choose your own.`);
  return hash;
}

export async function startApiServer(opts: StartApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(opts.listen);
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const ownStore = opts.store === undefined;
  const store = opts.store ?? (await openLmdbStore(opts.dataDir));
  let app: FastifyInstance;
  try {
    const hash = operatorTokenHash(opts.dataDir, opts.env ?? process.env, print);
    app = await build({ store, operatorTokenSha256: hash, ...(opts.bodyLimit !== undefined ? { bodyLimit: opts.bodyLimit } : {}) });
    await app.listen({ host, port });
  } catch (err) {
    if (ownStore) await store.close();
    throw err;
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  print(`OpenTransit API listening on ${url} (store: ${store.kind} in ${path.resolve(opts.dataDir)})`);

  let closing: Promise<void> | undefined;
  const onSignal = () => {
    void close().then(() => process.exit(0));
  };
  async function close(): Promise<void> {
    closing ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await app.close();
      if (ownStore) await store.close();
    })();
    return closing;
  }
  if (opts.handleSignals ?? true) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { app, url, close };
}
