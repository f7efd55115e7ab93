/** Unauthenticated endpoints: liveness and the OpenAPI document. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../store/store.js';
import { errorResponses } from '../http.js';

export function metaRoutes(app: FastifyInstance, store: Store): void {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: { tags: ['meta'], summary: 'Liveness: the API answers and reaches its store', response: { 200: Type.Object({ ok: Type.Boolean() }), ...errorResponses } },
    },
    async () => {
      await store.revision();
      return { ok: true };
    },
  );
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());
}
