/**
 * The objects inside an account — prefixes, GRE tunnels, routes, the firewall — and the whole declarative
 * document (`/config`). Reads carry the account document's revision as ETag; writes accept If-Match and answer
 * with the new ETag. All changes go through the pure model operations, then one compare-and-swap (repo.ts).
 */
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { accountToConfig } from '../../model/account.js';
import { planConfig, type Change } from '../../model/config.js';
import { NotFoundError } from '../../model/errors.js';
import {
  addGreTunnel,
  addPrefix,
  addRoute,
  deleteGreTunnel,
  deletePrefix,
  deleteRoute,
  replaceFirewall,
  replaceGreTunnel,
  replaceRoute,
  updatePrefix,
  type Changed,
  type ModelContext,
} from '../../model/operations.js';
import {
  ConfigDocument,
  ConfigDocumentInput,
  Firewall,
  FirewallInput,
  GreTunnel,
  GreTunnelInput,
  Prefix,
  PrefixInput,
  PrefixPatch,
  Route,
  RouteInput,
  type AccountDocument,
} from '../../model/schemas.js';
import type { ApiContext } from '../context.js';
import { AccountParams, DryRunQuery, errorResponses, ifMatchOf, listOf, objectParams, setEtag } from '../http.js';

type Params = Record<string, string>;
type Op<T> = (doc: AccountDocument, ctx: ModelContext) => Changed<T>;

const ChangeSchema = Type.Object({
  op: Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('delete')]),
  kind: Type.Union(['prefix', 'gre_tunnel', 'route', 'firewall_rule', 'firewall'].map((k) => Type.Literal(k))),
  key: Type.String(),
  before: Type.Optional(Type.Object({})),
  after: Type.Optional(Type.Object({})),
});
const ConfigResult = Type.Object({
  changes: Type.Array(ChangeSchema),
  revision: Type.Integer({ description: "The account document's revision after the apply (its new ETag)." }),
});

export function accountObjectRoutes(app: FastifyInstance, { repo }: ApiContext): void {
  const base = '/v1/accounts/:id';

  async function read(request: FastifyRequest, reply: FastifyReply): Promise<AccountDocument> {
    const { value, revision } = await repo.account((request.params as Params).id!);
    setEtag(reply, revision);
    return value;
  }

  async function write<T>(request: FastifyRequest, reply: FastifyReply, op: Op<T>): Promise<T> {
    const id = (request.params as Params).id!;
    const w = await repo.updateAccount(id, ifMatchOf(request), (doc, ctx) => {
      const r = op(doc, ctx);
      return { doc: r.doc, result: r.item };
    });
    setEtag(reply, w.revision);
    return w.result;
  }

  function one<T extends { id: string }>(list: readonly T[], id: string, what: string): T {
    const item = list.find((o) => o.id === id);
    if (!item) throw new NotFoundError(`this account has no ${what} with id ${id}`);
    return item;
  }

  const schema = (tag: string, summary: string, extra: Record<string, unknown>, ok: Record<number, TSchema>) => ({
    tags: [tag],
    summary,
    ...extra,
    response: { ...ok, ...errorResponses },
  });
  const tenant = { access: 'tenant' as const };
  const P = objectParams('pid');
  const T = objectParams('tid');
  const R = objectParams('rid');

  // --- prefixes ---
  app.get(`${base}/prefixes`, { config: tenant, schema: schema('prefixes', 'List prefixes', { params: AccountParams }, { 200: listOf(Prefix) }) }, async (req, reply) => ({
    items: (await read(req, reply)).prefixes,
  }));
  app.post(`${base}/prefixes`, { config: tenant, schema: schema('prefixes', 'Add a prefix', { params: AccountParams, body: PrefixInput }, { 201: Prefix }) }, async (req, reply) => {
    const item = await write(req, reply, (doc, ctx) => addPrefix(doc, req.body, ctx));
    return reply.code(201).send(item);
  });
  app.get(`${base}/prefixes/:pid`, { config: tenant, schema: schema('prefixes', 'One prefix', { params: P }, { 200: Prefix }) }, async (req, reply) =>
    one((await read(req, reply)).prefixes, (req.params as Params).pid!, 'prefix'),
  );
  app.patch(`${base}/prefixes/:pid`, { config: tenant, schema: schema('prefixes', 'Change advertised or description', { params: P, body: PrefixPatch }, { 200: Prefix }) }, async (req, reply) =>
    write(req, reply, (doc, ctx) => updatePrefix(doc, (req.params as Params).pid!, req.body, ctx)),
  );
  app.delete(`${base}/prefixes/:pid`, { config: tenant, schema: schema('prefixes', 'Delete a prefix (409 while a route needs it)', { params: P }, {}) }, async (req, reply) => {
    await write(req, reply, (doc, ctx) => deletePrefix(doc, (req.params as Params).pid!, ctx));
    return reply.code(204).send();
  });

  // --- GRE tunnels ---
  app.get(`${base}/gre_tunnels`, { config: tenant, schema: schema('gre_tunnels', 'List GRE tunnels', { params: AccountParams }, { 200: listOf(GreTunnel) }) }, async (req, reply) => ({
    items: (await read(req, reply)).gre_tunnels,
  }));
  app.post(`${base}/gre_tunnels`, { config: tenant, schema: schema('gre_tunnels', 'Add a GRE tunnel', { params: AccountParams, body: GreTunnelInput }, { 201: GreTunnel }) }, async (req, reply) => {
    const item = await write(req, reply, (doc, ctx) => addGreTunnel(doc, req.body, ctx));
    return reply.code(201).send(item);
  });
  app.get(`${base}/gre_tunnels/:tid`, { config: tenant, schema: schema('gre_tunnels', 'One GRE tunnel', { params: T }, { 200: GreTunnel }) }, async (req, reply) =>
    one((await read(req, reply)).gre_tunnels, (req.params as Params).tid!, 'GRE tunnel'),
  );
  app.put(`${base}/gre_tunnels/:tid`, { config: tenant, schema: schema('gre_tunnels', 'Replace a GRE tunnel (omitted fields take defaults)', { params: T, body: GreTunnelInput }, { 200: GreTunnel }) }, async (req, reply) =>
    write(req, reply, (doc, ctx) => replaceGreTunnel(doc, (req.params as Params).tid!, req.body, ctx)),
  );
  app.delete(`${base}/gre_tunnels/:tid`, { config: tenant, schema: schema('gre_tunnels', 'Delete a GRE tunnel (409 while a route uses it)', { params: T }, {}) }, async (req, reply) => {
    await write(req, reply, (doc, ctx) => deleteGreTunnel(doc, (req.params as Params).tid!, ctx));
    return reply.code(204).send();
  });

  // --- routes ---
  app.get(`${base}/routes`, { config: tenant, schema: schema('routes', 'List routes', { params: AccountParams }, { 200: listOf(Route) }) }, async (req, reply) => ({
    items: (await read(req, reply)).routes,
  }));
  app.post(`${base}/routes`, { config: tenant, schema: schema('routes', 'Add a route', { params: AccountParams, body: RouteInput }, { 201: Route }) }, async (req, reply) => {
    const item = await write(req, reply, (doc, ctx) => addRoute(doc, req.body, ctx));
    return reply.code(201).send(item);
  });
  app.get(`${base}/routes/:rid`, { config: tenant, schema: schema('routes', 'One route', { params: R }, { 200: Route }) }, async (req, reply) =>
    one((await read(req, reply)).routes, (req.params as Params).rid!, 'route'),
  );
  app.put(`${base}/routes/:rid`, { config: tenant, schema: schema('routes', 'Replace a route', { params: R, body: RouteInput }, { 200: Route }) }, async (req, reply) =>
    write(req, reply, (doc, ctx) => replaceRoute(doc, (req.params as Params).rid!, req.body, ctx)),
  );
  app.delete(`${base}/routes/:rid`, { config: tenant, schema: schema('routes', 'Delete a route', { params: R }, {}) }, async (req, reply) => {
    await write(req, reply, (doc, ctx) => deleteRoute(doc, (req.params as Params).rid!, ctx));
    return reply.code(204).send();
  });

  // --- firewall ---
  app.get(`${base}/firewall`, { config: tenant, schema: schema('firewall', 'The firewall', { params: AccountParams }, { 200: Firewall }) }, async (req, reply) =>
    (await read(req, reply)).firewall,
  );
  app.put(`${base}/firewall`, { config: tenant, schema: schema('firewall', 'Replace the firewall (rules keep ids by id, content, then position)', { params: AccountParams, body: FirewallInput }, { 200: Firewall }) }, async (req, reply) =>
    write(req, reply, (doc, ctx) => replaceFirewall(doc, req.body, ctx)),
  );

  // --- the whole declarative document ---
  app.get(`${base}/config`, { config: tenant, schema: schema('config', 'The declarative account document, with ids', { params: AccountParams }, { 200: ConfigDocument }) }, async (req, reply) =>
    accountToConfig(await read(req, reply)),
  );
  app.put<{ Querystring: { dry_run?: 'true' | 'false' } }>(
    `${base}/config`,
    {
      config: tenant,
      schema: schema(
        'config',
        'Make the account match the document, atomically (dry_run=true: only the diff)',
        { params: AccountParams, querystring: DryRunQuery, body: ConfigDocumentInput },
        { 200: ConfigResult },
      ),
    },
    async (req, reply) => {
      const id = (req.params as Params).id!;
      const w = await repo.updateAccount(
        id,
        ifMatchOf(req),
        (doc, ctx): { doc: AccountDocument; result: Change[] } => {
          const plan = planConfig(doc, req.body, ctx);
          return { doc: plan.doc, result: plan.changes };
        },
        { dryRun: req.query.dry_run === 'true' },
      );
      setEtag(reply, w.revision);
      return { changes: w.result, revision: w.revision };
    },
  );
}
