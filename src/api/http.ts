/** Small HTTP conventions shared by the routes: ETag / If-Match on revisions, and the error schema for OpenAPI. */
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** ETag of a document: its store modRevision, quoted. */
export function setEtag(reply: FastifyReply, revision: number): void {
  reply.header('etag', `"${revision}"`);
}

/**
 * The revisions an If-Match header accepts: `"12"`, `12`, `W/"12"` or a comma-separated list of them; `*` or no
 * header → undefined (no precondition).
 */
export function ifMatchOf(request: FastifyRequest): number[] | undefined {
  const header = request.headers['if-match'];
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(',') : header;
  const revisions: number[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '*') return undefined;
    const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(part);
    if (!m) throw new ApiError('invalid', `If-Match: "${part}" is not a revision (expected e.g. "12", as in the ETag)`, 'If-Match');
    revisions.push(Number(m[1]));
  }
  if (revisions.length === 0) throw new ApiError('invalid', 'If-Match: is empty', 'If-Match');
  return revisions;
}

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'invalid_json, invalid, unauthorized, forbidden, not_found, conflict, stale, payload_too_large…' }),
      message: Type.String({ description: 'The field (if any) and the reason, in words.' }),
      field: Type.Optional(Type.String({ description: 'Path of the offending field, e.g. gre_tunnels[0].mtu.' })),
    }),
  },
  { description: 'Every error has this shape.' },
);

export const errorResponses = { '4xx': ErrorSchema, '5xx': ErrorSchema };

export const AccountParams = Type.Object({ id: Type.String({ description: 'Account id.' }) });
/** Params of an object inside an account, e.g. objectParams('tid') for /v1/accounts/:id/gre_tunnels/:tid. */
export function objectParams<K extends string>(name: K) {
  return Type.Object({ id: Type.String({ description: 'Account id.' }), [name]: Type.String({ description: 'Object id.' }) } as {
    id: ReturnType<typeof Type.String>;
  } & Record<K, ReturnType<typeof Type.String>>);
}
export const NoQuery = Type.Object({}, { additionalProperties: false });
export const DryRunQuery = Type.Object(
  {
    dry_run: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: validate and diff, store nothing.' }),
    ),
  },
  { additionalProperties: false },
);

export function listOf<T extends import('@sinclair/typebox').TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item) });
}
