/**
 * What every in-process agent test shares: where its data-plane pins live, Acme's configuration, and a teardown
 * that removes everything the test made — even when one step of it fails — and proves no pin is left.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Agent } from '../../src/agent/agent.js';
import { openDataplane, type Dataplane } from '../../src/kernel/bpf/dataplane.js';
import { BPFFS, unpin } from '../../src/kernel/bpf/index.js';
import type { ApiFixture } from './api-fixture.js';
import { stopCustomerRouterGre, type CustomerRouterPins } from './customer-site.js';
import type { NetnsHarness } from './netns.js';

/** A bpffs directory of this test process only (removed by teardownAgentTest). */
export const testPinBase = (label: string): string => `${BPFFS}/ot-test-${label}-${process.pid}`;

/**
 * Acme as the seed text has it (one prefix, one tunnel, one route), with what a test varies. `morePrefixes` are
 * routed through the same tunnel, like the first (e.g. an IPv6 prefix inside the IPv4 tunnel).
 */
export function acmeConfig(o: { router?: string; anycast?: string; priority?: number; firewall?: unknown; morePrefixes?: string[] } = {}) {
  const cidrs = ['203.0.113.0/24', ...(o.morePrefixes ?? [])];
  return {
    account: 'acme',
    prefixes: cidrs.map((cidr) => ({ cidr, advertised: true })),
    gre_tunnels: [{ name: 'acme-chi', customer_gre_endpoint: o.router ?? '198.51.100.2', edge_gre_endpoint: o.anycast ?? '192.0.2.10', interface_address: '10.200.0.0/31' }],
    routes: cidrs.map((prefix) => ({ prefix, nexthop: '10.200.0.1', priority: o.priority ?? 100 })),
    firewall: o.firewall ?? { default_action: 'block', rules: [{ action: 'allow', expression: 'ip.dst == 203.0.113.100 and tcp.dstport in {20..21}' }] },
  };
}

/** Runs `fn` on the agent's pinned data plane (opened for the call only: the agent may replace the pins meanwhile). */
export function withDataplane<T>(pins: { node: string; base: string }, fn: (dp: Dataplane) => T): T {
  const dp = openDataplane(pins);
  try {
    return fn(dp);
  } finally {
    dp.close();
  }
}

/**
 * Stops the agent, closes the API, removes the data dir, the customer router's GRE (customer-site.ts; before the
 * namespaces, it needs CR's), the namespaces and the pins; every step runs.
 */
export async function teardownAgentTest(o: {
  agent?: Agent;
  api?: ApiFixture;
  dataDir?: string;
  harness: NetnsHarness;
  pinBase: string;
  customerRouter?: CustomerRouterPins & { netns: string };
}): Promise<void> {
  const errors: unknown[] = [];
  const step = async (fn: () => unknown) => {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  };
  const cpe = o.customerRouter;
  await step(() => o.agent?.stop());
  await step(() => o.api?.close());
  await step(() => o.dataDir && fs.rmSync(o.dataDir, { recursive: true, force: true }));
  if (cpe) await step(() => stopCustomerRouterGre(cpe.netns, cpe));
  await step(() => o.harness.cleanup());
  await step(() => unpin(o.pinBase));
  if (cpe) await step(() => unpin(cpe.base));
  if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'agent test teardown');
  assert.equal(fs.existsSync(o.pinBase), false, 'no pins left');
  if (cpe) assert.equal(fs.existsSync(cpe.base), false, 'no customer router pins left');
}
