/** Operator-wide endpoints: settings (anycast endpoints, BGP peers, blocklist) and the nodes' reported status. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parseSettingsInput } from '../../model/settings.js';
import { Settings, SettingsInput } from '../../model/schemas.js';
import type { ApiContext } from '../context.js';
import { errorResponses, ifMatchOf, listOf, setEtag } from '../http.js';

export function operatorRoutes(app: FastifyInstance, { repo }: ApiContext): void {
  app.get(
    '/v1/settings',
    {
      config: { access: 'operator' },
      schema: { tags: ['operator'], summary: 'Operator settings (ETag: their revision, 0 before the first PUT)', response: { 200: Settings, ...errorResponses } },
    },
    async (_request, reply) => {
      const { value, revision } = await repo.settings();
      setEtag(reply, revision);
      return value;
    },
  );

  app.put(
    '/v1/settings',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Replace the operator settings (409 if a tunnel uses a removed anycast endpoint)',
        body: SettingsInput,
        response: { 200: Settings, ...errorResponses },
      },
    },
    async (request, reply) => {
      const next = parseSettingsInput(request.body);
      const w = await repo.replaceSettings(next, ifMatchOf(request));
      setEtag(reply, w.revision);
      return w.result;
    },
  );

  app.get(
    '/v1/nodes',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['operator'],
        summary: "Edge nodes' reported status",
        response: { 200: listOf(Type.Object({ id: Type.String() }, { additionalProperties: true })), ...errorResponses },
      },
    },
    async () => ({ items: await repo.nodes() }),
  );
}
