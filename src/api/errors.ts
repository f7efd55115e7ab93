/**
 * The one error shape of the API: `{"error": {"code", "message", "field"?}}`. Everything that can go wrong —
 * model errors, fastify's own (bad JSON, body too large, unknown media type), auth, a missing store — ends here,
 * so clients handle one envelope. `message` is a full sentence naming the field (when there is one) and the
 * reason; `field` is the path into the request ("gre_tunnels[0].mtu") for programs.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ModelError } from '../model/errors.js';
import { StoreUnavailableError } from '../store/store.js';

export type ErrorCode =
  | 'invalid_json'
  | 'invalid_yaml'
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'stale'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unavailable'
  | 'internal';

export const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_yaml: 400,
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  stale: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unavailable: 503,
  internal: 500,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

/** Maps anything thrown while serving a request to an ApiError (unknown errors become a 500 without details). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ModelError) return new ApiError(err.code, err.message, err.field);
  if (err instanceof StoreUnavailableError) return new ApiError('unavailable', `the store is unavailable: ${err.message}`);
  const fe = err as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'the request body must be JSON (Content-Type: application/json) or YAML (application/yaml)');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', `the request body is not valid JSON`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('invalid_json', 'the request body does not match its Content-Length');
    default:
      break;
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code: ErrorCode = fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 415 ? 'unsupported_media_type' : 'invalid';
    return new ApiError(code, fe.message ?? 'bad request');
  }
  return new ApiError('internal', 'internal error (see the server log)');
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(err.body());
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(err);
    if (apiError.code === 'internal') request.log.error({ err }, 'request failed');
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, new ApiError('not_found', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`)),
  );
}
