/**
 * Bearer tokens. The operator's token opens everything; an account's token sees and changes only its own account
 * — another account's resources answer 404 (not 403), so a tenant cannot even learn which ids exist — and gets
 * 403 on operator endpoints. Tokens are random; only their SHA-256 is stored (keys.token(hash) → account), so a
 * copy of the store (or an edge server, which never holds the tokens prefix) yields no usable credential.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { keys } from '../model/keys.js';
import { isId } from '../model/ids.js';
import type { TokenRecord } from '../model/schemas.js';
import type { Store } from '../store/store.js';
import { ApiError } from './errors.js';

export type Principal = { kind: 'operator' } | { kind: 'account'; accountId: string };

/**
 * Who may call a route: `public` (no token), `operator` (operator only; accounts get 403), `tenant` (the operator,
 * or the account named by the `:id` path parameter), `any` (any valid token; the handler scopes the answer).
 */
export type Access = 'public' | 'operator' | 'tenant' | 'any';

/** A new secret token: 32 random bytes, base64url, with a prefix that secret scanners and people recognise. */
export function newToken(): string {
  return `ot_${randomBytes(32).toString('base64url')}`;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (!header) throw new ApiError('unauthorized', 'missing Authorization header (expected "Bearer <token>")');
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m) throw new ApiError('unauthorized', 'the Authorization header must be "Bearer <token>"');
  return m[1]!;
}

export class Authenticator {
  private readonly operatorHash: Buffer;

  constructor(
    private readonly store: Store,
    operatorTokenSha256: string,
  ) {
    if (!/^[0-9a-f]{64}$/.test(operatorTokenSha256)) throw new Error('operator token hash must be 64 lowercase hex digits');
    this.operatorHash = Buffer.from(operatorTokenSha256, 'hex');
  }

  /** The principal behind the request's token; throws 401 for a missing or unknown token. */
  async principalOf(request: FastifyRequest): Promise<Principal> {
    const token = bearerToken(request);
    const hash = tokenHash(token);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), this.operatorHash)) return { kind: 'operator' };
    const kv = await this.store.get(keys.token(hash));
    if (kv) {
      const record = JSON.parse(kv.value) as TokenRecord;
      if (isId(record.account_id)) return { kind: 'account', accountId: record.account_id };
    }
    throw new ApiError('unauthorized', 'invalid token');
  }

  /** Enforces `access` for the request; `accountId` is the `:id` path parameter of tenant routes. */
  async authorize(request: FastifyRequest, access: Access, accountId: string | undefined): Promise<Principal | undefined> {
    if (access === 'public') return undefined;
    const principal = await this.principalOf(request);
    if (principal.kind === 'operator') return principal;
    if (access === 'operator') throw new ApiError('forbidden', 'this endpoint needs the operator token');
    if (access === 'tenant' && principal.accountId !== accountId) throw accountNotFound(accountId ?? '');
    return principal;
  }
}

export function accountNotFound(id: string): ApiError {
  return new ApiError('not_found', `no account with id ${id}`);
}
