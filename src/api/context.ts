import type { Authenticator, Access, Principal } from './auth.js';
import type { Repo } from './repo.js';

/** What every route module gets. */
export interface ApiContext {
  repo: Repo;
  auth: Authenticator;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see Access); every route must say. */
    access?: Access;
  }
  interface FastifyRequest {
    /** Set by the auth hook; undefined on public routes. */
    principal: Principal | undefined;
  }
}
