/**
 * Acme's site behind its own router, on top of buildEdgeTopology, for tests that push traffic through an edge to a
 * real far end (fast-path*.test.ts):
 *
 *   C ── R ── CR (customer router: GRE to the anycast in eBPF, src/kernel/bpf/cpe.ts; replies through the tunnel)
 *                └─ lan0 203.0.113.1/24 ── CH (customer host, `host`/24 on eth0, default route via CR)
 *
 * The router's pins live in a bpffs directory of the test process (`<base>/<node>`), so teardownAgentTest can remove
 * them and prove none is left.
 */
import { removeCpeDataplane, setupCustomerRouterGre, teardownCustomerRouterGre } from '../../src/kernel/bpf/cpe.js';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { inNetns } from '../../src/kernel/netns.js';
import type { EdgeTopology } from './edge-topology.js';
import { sysctlIn, type NetnsHarness } from './netns.js';

/** Where a customer router's eBPF pins live: `<base>/<node>` (base: testPinBase of the test file). */
export interface CustomerRouterPins {
  node: string;
  base: string;
}

/** The device of CR that faces R: GRE arrives and leaves there (buildEdgeTopology names it). */
const UPLINK = 'eth0';

/**
 * Adds CH behind CR and makes CR a router (forwarding on, no reverse-path filter: replies leave by the tunnel, not
 * by the link their destination was learnt on). `ipv6` also turns IPv6 forwarding on in CR, for a test that adds
 * IPv6 addresses of its own. Returns CH's netns.
 */
export async function buildCustomerSite(harness: NetnsHarness, topology: EdgeTopology, o: { host: string; ipv6?: boolean }): Promise<string> {
  const { C, CR, link } = topology;
  const CH = await harness.create('custhost');
  await link(CR, 'lan0', ['203.0.113.1/24'], CH, 'eth0', [`${o.host}/24`]);
  await runIpOps(CH, [{ args: ['link', 'set', 'lo', 'up'] }, { args: ['route', 'replace', 'default', 'via', '203.0.113.1'] }]);
  await sysctlIn(CR, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', ...(o.ipv6 ? ['net.ipv6.conf.all.forwarding=1'] : []));
  // Complete checksums from the senders: a partial one (veth offload) does not survive XDP's decap and redirect
  // into the customer netns (no skb metadata there), and the receiver would drop the segment. Real NICs deliver
  // complete checksums.
  for (const [ns, dev] of [[C, 'eth0'], [CH, 'eth0'], [CR, 'eth0'], [CR, 'lan0']] as const) await run(inNetns(ns, ['ethtool', '-K', dev, 'tx', 'off']));
  return CH;
}

/** CR's end of Acme's tunnel (gre0, 10.200.0.1/31 facing the edge's 10.200.0.0), replies from `prefixes` through it. */
export async function startCustomerRouterGre(CR: string, pins: CustomerRouterPins, o: { router: string; anycast: string; prefixes: string[] }): Promise<void> {
  await setupCustomerRouterGre({
    netns: CR,
    node: pins.node,
    base: pins.base,
    uplink: UPLINK,
    tunnels: [{ name: 'gre0', local: o.router, remote: o.anycast, interfaceAddress: '10.200.0.1/31' }],
    returnPath: 'tunnel',
    prefixes: o.prefixes,
  });
}

/**
 * Undoes startCustomerRouterGre. Removing it from CR is best effort (CR may be '' or half set up when `before`
 * failed): deleting the namespace next takes its links, rules and filters along. The pins would outlive it, so they
 * are removed whatever happened, and the caller proves none is left.
 */
export async function stopCustomerRouterGre(CR: string, pins: CustomerRouterPins): Promise<void> {
  if (CR) await teardownCustomerRouterGre({ netns: CR, node: pins.node, base: pins.base, uplink: UPLINK }).catch(() => undefined);
  removeCpeDataplane({ node: pins.node, base: pins.base });
}
