/**
 * The lab's API as the e2e tests use it: one operator request helper, and the wait until every edge applied an
 * account at (at least) a given revision.
 */
import assert from 'node:assert/strict';

export interface LabApiResponse {
  status: number;
  /** Whatever the endpoint returns (null for 204). */
  json: any;
}

export type LabApi = (method: string, url: string, body?: unknown) => Promise<LabApiResponse>;

/** One request to the lab's API with its operator token; `timeoutMs` aborts a request that hangs (etcd outages). */
export async function labRequest(
  lab: { api_url: string; operator_token: string },
  method: string,
  url: string,
  body?: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<LabApiResponse> {
  const res = await fetch(`${lab.api_url}${url}`, {
    method,
    headers: { authorization: `Bearer ${lab.operator_token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    ...(opts.timeoutMs !== undefined ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
  });
  return { status: res.status, json: res.status === 204 ? null : await res.json() };
}

/** Waits until `edges` nodes report `accountId` applied at `revision` or later (fails after `timeoutMs`). */
export async function waitAppliedOnEveryEdge(api: LabApi, accountId: string, revision: number, edges: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = (await api('GET', '/v1/nodes')).json.items as Array<{ accounts?: Record<string, { state: string; applied_revision?: number }> }>;
    if (nodes.length === edges && nodes.every((n) => (n.accounts?.[accountId]?.applied_revision ?? 0) >= revision)) return;
    assert.ok(Date.now() < deadline, `not applied everywhere: ${JSON.stringify(nodes.map((n) => n.accounts?.[accountId]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
