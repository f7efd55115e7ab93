/** Operator-wide endpoints: settings (anycast endpoints, BGP peers, blocklist) and the nodes' reported status. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parseSettingsInput, settingsView } from '../../model/settings.js';
import { SettingsInput } from '../../model/schemas.js';

/** What GET and PUT return: the settings with password_set instead of each BGP password. */
const SettingsViewSchema = Type.Object({
  anycast_endpoints: Type.Array(Type.String()),
  bgp: Type.Object({ asn: Type.Integer(), peers: Type.Array(Type.Object({ address: Type.String(), asn: Type.Integer(), password_set: Type.Boolean() }, { additionalProperties: true })) }),
  blocklist: Type.Array(Type.Object({ cidr: Type.String(), description: Type.String() })),
});
import type { ApiContext } from '../context.js';
import { errorResponses, ifMatchOf, listOf, setEtag } from '../http.js';

export function operatorRoutes(app: FastifyInstance, { repo }: ApiContext): void {
  app.get(
    '/v1/settings',
    {
      config: { access: 'operator' },
      schema: { tags: ['operator'], summary: 'Operator settings (ETag: their revision, 0 before the first PUT)', response: { 200: SettingsViewSchema, ...errorResponses } },
    },
    async (_request, reply) => {
      const { value, revision } = await repo.settings();
      setEtag(reply, revision);
      // BGP passwords are secrets: never returned (password_set says whether one is stored).
      return settingsView(value);
    },
  );

  app.put(
    '/v1/settings',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Replace the operator settings (409 if a tunnel uses a removed anycast endpoint); a BGP peer with password_set: true keeps its stored password',
        body: SettingsInput,
        response: { 200: SettingsViewSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      // Parsed against the stored settings: a peer's password_set: true keeps the password stored for it.
      const w = await repo.replaceSettings((current) => parseSettingsInput(request.body, '', current), ifMatchOf(request));
      setEtag(reply, w.revision);
      return settingsView(w.result);
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
