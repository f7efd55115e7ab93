/** Accounts (tenants): created and deleted by the operator; each account token sees only its own. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { accountSummary } from '../../model/account.js';
import { AccountCreate, AccountSummary } from '../../model/schemas.js';
import { checkShape } from '../../model/shape.js';
import { AccountParams, errorResponses, ifMatchOf, listOf, setEtag } from '../http.js';
import type { ApiContext } from '../context.js';

const AccountRef = Type.Object({ id: Type.String(), name: Type.String() });
const Created = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Type.String(),
  token: Type.String({ description: "The account's token: shown only in this response, stored hashed." }),
});

export function accountRoutes(app: FastifyInstance, { repo }: ApiContext): void {
  app.post(
    '/v1/accounts',
    {
      config: { access: 'operator' },
      schema: { tags: ['accounts'], summary: 'Create an account and its token', body: AccountCreate, response: { 201: Created, ...errorResponses } },
    },
    async (request, reply) => {
      const { name } = checkShape(AccountCreate, request.body);
      const { summary, token, revision } = await repo.createAccount(name);
      setEtag(reply, revision);
      return reply.code(201).send({ ...summary, token });
    },
  );

  app.get(
    '/v1/accounts',
    {
      config: { access: 'any' },
      schema: { tags: ['accounts'], summary: 'List accounts (an account token sees only its own)', response: { 200: listOf(AccountRef), ...errorResponses } },
    },
    async (request) => {
      const principal = request.principal;
      if (principal?.kind === 'account') {
        const { value } = await repo.account(principal.accountId);
        return { items: [{ id: value.id, name: value.name }] };
      }
      return { items: await repo.accountList() };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/accounts/:id',
    {
      config: { access: 'tenant' },
      schema: { tags: ['accounts'], summary: 'One account', params: AccountParams, response: { 200: AccountSummary, ...errorResponses } },
    },
    async (request, reply) => {
      const { value, revision } = await repo.account(request.params.id);
      setEtag(reply, revision);
      return accountSummary(value);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/accounts/:id',
    {
      config: { access: 'operator' },
      schema: { tags: ['accounts'], summary: 'Delete an account, its objects and its tokens', params: AccountParams, response: { ...errorResponses } },
    },
    async (request, reply) => {
      await repo.deleteAccount(request.params.id, ifMatchOf(request));
      return reply.code(204).send();
    },
  );
}
