/**
 * Data-plane endpoints:
 *   /v1/mitigations          operator-wide DoS rules every edge applies in XDP (operator only)
 *   /v1/counters             what the edges' data planes did with packets, per account, verdict and reason;
 *                            an account's token sees its own account only
 * The global blocklist is part of the operator settings (PUT /v1/settings, `opentransit blocklist …`).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Mitigation, MitigationInput } from '../../model/mitigation.js';
import type { Store } from '../../store/store.js';
import { accountNotFound } from '../auth.js';
import type { ApiContext } from '../context.js';
import { DataplaneRepo } from '../dataplane-repo.js';
import { errorResponses, listOf, setEtag } from '../http.js';

const Stats = Type.Object({
  packets: Type.Integer(),
  bytes: Type.Integer(),
  dropped_packets: Type.Integer(),
  dropped_bytes: Type.Integer(),
});
const MitigationView = Type.Composite([
  Mitigation,
  Type.Object({
    expired: Type.Boolean({ description: 'expires_at has passed: edges no longer apply the rule.' }),
    stats: Stats,
  }),
]);
const MitigationParams = Type.Object({ mid: Type.String({ description: 'Mitigation rule id.' }) });

const CounterItem = Type.Object({
  account_id: Type.Union([Type.String(), Type.Null()], { description: 'null: traffic no account was attributed (not to a customer prefix).' }),
  account: Type.Union([Type.String(), Type.Null()], { description: "The account's name." }),
  verdict: Type.String({ description: 'pass, drop, redirect (GRE decapsulated), encap (GRE encapsulated).' }),
  reason: Type.String({ description: 'e.g. drop_blocklist, drop_rule, drop_ratelimit, drop_gre_spoofed, redirect_gre.' }),
  packets: Type.Integer(),
  bytes: Type.Integer(),
});
const CountersQuery = Type.Object(
  { account: Type.Optional(Type.String({ description: 'Only this account (id).' })) },
  { additionalProperties: false },
);
const Counters = Type.Object({
  items: Type.Array(CounterItem),
  nodes: Type.Optional(
    Type.Array(Type.Object({ id: Type.String(), updated_at: Type.String() }), { description: 'The edges whose counters are summed (operator only).' }),
  ),
});

export function dataplaneRoutes(app: FastifyInstance, { repo }: ApiContext, store: Store): void {
  const dp = new DataplaneRepo(store);

  app.get(
    '/v1/mitigations',
    {
      config: { access: 'operator' },
      schema: { tags: ['data plane'], summary: 'Mitigation rules, oldest first, with what they matched and dropped', response: { 200: listOf(MitigationView), ...errorResponses } },
    },
    async () => ({ items: await dp.mitigations() }),
  );

  app.post(
    '/v1/mitigations',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['data plane'],
        summary: 'Add a mitigation rule (409 when a prefix would have more rules than the data plane evaluates)',
        description:
          'A rule matches packets whose destination lies in `prefix` and drops or rate-limits them at every edge, in XDP. ' +
          'Rules of covering prefixes apply too: more specific prefixes first, then by creation; the first match decides.',
        body: MitigationInput,
        response: { 201: MitigationView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { value, revision } = await dp.createMitigation(request.body);
      setEtag(reply, revision);
      return reply.code(201).send(value);
    },
  );

  app.get<{ Params: { mid: string } }>(
    '/v1/mitigations/:mid',
    {
      config: { access: 'operator' },
      schema: { tags: ['data plane'], summary: 'One mitigation rule', params: MitigationParams, response: { 200: MitigationView, ...errorResponses } },
    },
    async (request, reply) => {
      const { value, revision } = await dp.mitigation(request.params.mid);
      setEtag(reply, revision);
      return value;
    },
  );

  app.delete<{ Params: { mid: string } }>(
    '/v1/mitigations/:mid',
    {
      config: { access: 'operator' },
      schema: { tags: ['data plane'], summary: 'Delete a mitigation rule', params: MitigationParams, response: { ...errorResponses } },
    },
    async (request, reply) => {
      await dp.deleteMitigation(request.params.mid);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { account?: string } }>(
    '/v1/counters',
    {
      config: { access: 'any' },
      schema: {
        tags: ['data plane'],
        summary: "Data-plane counters summed over the edges (an account's token sees its own account only)",
        querystring: CountersQuery,
        response: { 200: Counters, ...errorResponses },
      },
    },
    async (request) => {
      const principal = request.principal;
      let account = request.query.account;
      if (principal?.kind === 'account') {
        // Another account's id answers like an unknown one: a tenant cannot learn which ids exist.
        if (account !== undefined && account !== principal.accountId) throw accountNotFound(account);
        account = principal.accountId;
      } else if (account !== undefined) {
        await repo.account(account); // 404 for an unknown account
      }
      const { items, nodes } = await dp.counters(account);
      const names = new Map((await repo.accountList()).map((a) => [a.id, a.name]));
      const named = items.map((i) => ({
        account_id: i.account_id,
        account: i.account_id === null ? null : (names.get(i.account_id) ?? null),
        verdict: i.verdict,
        reason: i.reason,
        packets: i.packets,
        bytes: i.bytes,
      }));
      return principal?.kind === 'account' ? { items: named } : { items: named, nodes };
    },
  );
}
