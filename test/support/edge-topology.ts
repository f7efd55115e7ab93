/**
 * The small internet the agent's data-plane tests run on, IPv4 part (each test adds what it needs on top):
 *
 *   H (the edge's host netns, uplink up0 100.64.0.0/31) ── R (router) ── C (client, `client`/32 on eth0)
 *                                                           └── CR (customer router, `router`/32 on eth0)
 *
 * R routes `prefix` and `anycast` to H, the client and the customer router to their links; H, C and CR default to
 * R (C and CR with their public address as source). Forwarding on in R, reverse-path filtering off.
 */
import { runIpOps } from '../../src/kernel/ip.js';
import { sysctlIn, vethLinker, type NetnsHarness } from './netns.js';

export interface EdgeTopology {
  H: string;
  R: string;
  C: string;
  CR: string;
  /** Makes more veths between namespaces (MACs unique within this topology). */
  link: ReturnType<typeof vethLinker>;
}

export async function buildEdgeTopology(
  harness: NetnsHarness,
  o: { client: string; router: string; anycast: string; prefix: string; macByte: number },
): Promise<EdgeTopology> {
  const link = vethLinker(o.macByte);
  const H = await harness.create('host');
  const R = await harness.create('router');
  const C = await harness.create('client');
  const CR = await harness.create('custrtr');
  await link(H, 'up0', ['100.64.0.0/31'], R, 'rh', ['100.64.0.1/31']);
  await link(R, 'rc', ['100.64.0.2/31'], C, 'eth0', ['100.64.0.3/31', `${o.client}/32`]);
  await link(R, 'rcr', ['100.64.0.4/31'], CR, 'eth0', ['100.64.0.5/31', `${o.router}/32`]);
  for (const ns of [H, R, C, CR]) await runIpOps(ns, [{ args: ['link', 'set', 'lo', 'up'] }]);
  await runIpOps(H, [{ args: ['route', 'replace', 'default', 'via', '100.64.0.1'] }]);
  await runIpOps(C, [{ args: ['route', 'replace', 'default', 'via', '100.64.0.2', 'src', o.client] }]);
  await runIpOps(CR, [{ args: ['route', 'replace', 'default', 'via', '100.64.0.4', 'src', o.router] }]);
  await runIpOps(R, [
    { args: ['route', 'replace', o.prefix, 'via', '100.64.0.0'] },
    { args: ['route', 'replace', `${o.anycast}/32`, 'via', '100.64.0.0'] },
    { args: ['route', 'replace', `${o.client}/32`, 'via', '100.64.0.3'] },
    { args: ['route', 'replace', `${o.router}/32`, 'via', '100.64.0.5'] },
  ]);
  await sysctlIn(R, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
  return { H, R, C, CR, link };
}
