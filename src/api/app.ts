/**
 * The HTTP API, built by a factory so tests drive it through `inject` and the server (server.ts) listens with it.
 *
 * Bodies may be JSON or YAML (body.ts). Validation has one home, the model: request bodies reach the handlers as parsed JSON and the model's functions
 * check them (shape, values, cross-object rules), so the API and every other caller share the same rules and
 * messages. Route schemas feed the OpenAPI document; only query strings are checked here (strictly: a
 * misspelt `?dryrun=true` must not apply for real).
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ValidationError } from '../model/errors.js';
import { checkShape } from '../model/shape.js';
import type { Store } from '../store/store.js';
import { Authenticator, tokenHash } from './auth.js';
import type { ApiContext } from './context.js';
import { parseJsonBody, parseYamlBody, YAML_TYPES } from './body.js';
import { installErrorHandlers } from './errors.js';
import { NoQuery } from './http.js';
import { Repo } from './repo.js';
import { accountObjectRoutes } from './routes/account-objects.js';
import { accountRoutes } from './routes/accounts.js';
import { dataplaneRoutes } from './routes/dataplane.js';
import { metaRoutes } from './routes/meta.js';
import { nodeRoutes } from './routes/nodes.js';
import { operatorRoutes } from './routes/operator.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface BuildOptions {
  store: Store;
  /** The operator's token in clear (e.g. from OPENTRANSIT_OPERATOR_TOKEN); or give its hash. */
  operatorToken?: string;
  /** SHA-256 (hex) of the operator's token, as kept in the data directory. */
  operatorTokenSha256?: string;
  /** Largest accepted request body in bytes (default 1 MiB); larger → 413. */
  bodyLimit?: number;
  logger?: FastifyServerOptions['logger'];
}

export async function build(opts: BuildOptions): Promise<FastifyInstance> {
  const hash = opts.operatorTokenSha256 ?? (opts.operatorToken !== undefined ? tokenHash(opts.operatorToken) : undefined);
  if (!hash) throw new Error('build: operatorToken or operatorTokenSha256 is required');
  if (opts.operatorToken !== undefined && opts.operatorToken.length === 0) throw new Error('build: operatorToken is empty');
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit, return503OnClosing: true });
  const ctx: ApiContext = { repo: new Repo(opts.store), auth: new Authenticator(opts.store, hash) };

  installErrorHandlers(app);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    try {
      done(null, parseYamlBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (httpPart !== 'querystring') return () => true;
    return (data: unknown) => {
      try {
        return { value: checkShape(schema as never, { ...(data as object) }) };
      } catch (err) {
        if (err instanceof ValidationError && err.reason === 'is not a known field') {
          return { error: new ValidationError(err.field, 'is not a known query parameter') };
        }
        return { error: err as Error };
      }
    };
  });
  // Responses are our own objects: serialise them as they are (response schemas are documentation).
  app.setSerializerCompiler(() => (data: unknown) => JSON.stringify(data));

  app.decorateRequest('principal', undefined);
  app.addHook('onRoute', (route) => {
    if (route.config?.access === undefined) throw new Error(`route ${String(route.method)} ${route.url} does not declare its access`);
    route.schema ??= {};
    route.schema.querystring ??= NoQuery;
  });
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined) return; // the not-found handler
    request.principal = await ctx.auth.authorize(request, access, (request.params as { id?: string }).id);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'OpenTransit API',
        version: '1',
        description:
          'Self-hosted Magic Transit. Authenticate with `Authorization: Bearer <token>`: the operator token, or an ' +
          "account's token (it sees only its own account). Reads of an account carry `ETag: \"<revision>\"`; writes " +
          'accept `If-Match` (409 `stale` when the account moved). Bodies are JSON, or YAML with Content-Type ' +
          'application/yaml. Errors: `{"error": {code, message, field}}`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  metaRoutes(app, opts.store);
  accountRoutes(app, ctx);
  accountObjectRoutes(app, ctx);
  operatorRoutes(app, ctx);
  nodeRoutes(app, ctx, opts.store);
  dataplaneRoutes(app, ctx, opts.store);
  await app.ready();
  return app;
}
