/**
 * Per-node operator endpoints (operator token only):
 *   GET|PUT|DELETE /v1/nodes/{id}/config   the node's BGP router id, AS and peers (src/model/node-config.ts);
 *                                           passwords are never returned (password_set)
 *   POST /v1/nodes/{id}/drain              the node withdraws every announcement; its BGP sessions stay up
 *   POST /v1/nodes/{id}/undrain            it announces again
 * A node need not have reported yet: an operator may configure or drain a server before its agent first runs.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DrainInput, NodeConfigInput, nodeConfigView } from '../../model/node-config.js';
import type { Store } from '../../store/store.js';
import type { ApiContext } from '../context.js';
import { errorResponses, ifMatchOf, setEtag } from '../http.js';
import { NodeRepo } from '../node-repo.js';

const NodeParams = Type.Object({ id: Type.String({ description: 'Node id (the agent\'s --node-id).' }) });
const NodeConfigView = Type.Object(
  { bgp: Type.Object({}, { additionalProperties: true, description: 'router_id, asn, peers (with password_set instead of password).' }) },
  { additionalProperties: true },
);
const DrainState = Type.Object({
  node_id: Type.String(),
  drained: Type.Boolean(),
  drained_at: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});

export function nodeRoutes(app: FastifyInstance, _ctx: ApiContext, store: Store): void {
  const nodes = new NodeRepo(store);
  type P = { Params: { id: string } };

  app.get<P>(
    '/v1/nodes/:id/config',
    {
      config: { access: 'operator' },
      schema: { tags: ['nodes'], summary: "A node's configuration (ETag: its revision, 0 before the first PUT)", params: NodeParams, response: { 200: NodeConfigView, ...errorResponses } },
    },
    async (request, reply) => {
      const { value, revision } = await nodes.config(request.params.id);
      setEtag(reply, revision);
      return nodeConfigView(value);
    },
  );

  app.put<P>(
    '/v1/nodes/:id/config',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['nodes'],
        summary: "Replace a node's configuration (absent fields take the operator's settings)",
        params: NodeParams,
        body: NodeConfigInput,
        response: { 200: NodeConfigView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const w = await nodes.replaceConfig(request.params.id, request.body, ifMatchOf(request));
      setEtag(reply, w.revision);
      return nodeConfigView(w.value);
    },
  );

  app.delete<P>(
    '/v1/nodes/:id/config',
    {
      config: { access: 'operator' },
      schema: { tags: ['nodes'], summary: "Remove a node's configuration: it follows the operator's settings", params: NodeParams, response: errorResponses },
    },
    async (request, reply) => {
      await nodes.deleteConfig(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<P>(
    '/v1/nodes/:id/drain',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['nodes'],
        summary: 'Drain a node: it withdraws every BGP announcement (sessions stay up) until undrained',
        params: NodeParams,
        body: DrainInput,
        response: { 200: DrainState, ...errorResponses },
      },
    },
    async (request) => {
      const record = await nodes.setDrain(request.params.id, request.body);
      return { node_id: request.params.id, drained: true, ...record };
    },
  );

  app.post<P>(
    '/v1/nodes/:id/undrain',
    {
      config: { access: 'operator' },
      schema: { tags: ['nodes'], summary: 'End a drain: the node announces again', params: NodeParams, response: { 200: DrainState, ...errorResponses } },
    },
    async (request) => {
      await nodes.undrain(request.params.id);
      return { node_id: request.params.id, drained: false };
    },
  );
}
