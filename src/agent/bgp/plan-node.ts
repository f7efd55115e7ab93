/**
 * `opentransit plan`'s BGP part: what the agent's BGP pass (manager.ts) would change now — the anycast endpoints on
 * lo, the BIRD config it would write (vs the file present), BIRD started/reconfigured/stopped, and which networks
 * would be announced or withdrawn — reading only (lo's addresses, the config file, BIRD's control socket).
 *
 * The plan assumes the rest of the plan is carried out: an account whose own plan has no error is taken as
 * reconciled at its current revision (so its advertised prefixes count as announceable), the host as ready when
 * the host and data-plane plans have no error.
 */
import { readFile } from 'node:fs/promises';
import { birdCommand, renderBirdConfig } from '../../kernel/bird.js';
import { effectiveNodeBgp, type NodeConfig as NodeDocument } from '../../model/node-config.js';
import type { AccountStatus } from '../../model/node-status.js';
import type { AccountDocument, Settings } from '../../model/schemas.js';
import type { NodeConfig } from '../desired/node.js';
import { errorText } from '../reconcile/engine.js';
import { anycastLoopbackDesired, reconcileAnycastLoopback } from './anycast-local.js';
import { desiredEdgeBird, edgeBirdPaths, uplinkRouterId } from './manager.js';

export interface BgpPlanInput {
  node: NodeConfig;
  dataDir: string;
  settings: Settings;
  nodeConfig: NodeDocument;
  drained: boolean;
  docs: ReadonlyMap<string, { doc: AccountDocument; revision: number }>;
  /** Account ids whose plan has errors (they would not be ready: their prefixes are withdrawn). */
  failing: ReadonlySet<string>;
  hostReady: boolean;
}

export interface BgpPlan {
  changes: string[];
  errors: string[];
  /** Networks BIRD would announce after the change (customer prefixes, then anycast endpoints). */
  announced: string[];
  /** Networks it announces now that it would announce too… */
  announce: string[];
  /** …and those it announces now and would stop announcing. */
  withdraw: string[];
  withheld?: string;
  refused: { account_id?: string; value: string; reason: string }[];
  bird: {
    config: string;
    running: boolean;
    action: 'none' | 'start' | 'configure' | 'stop';
    protocols_added: string[];
    protocols_removed: string[];
    /** The config lines that would change ("+ …" / "- …"; passwords elided). */
    diff: string[];
  };
}

/** `protocol <type> <name>` of a BIRD config text. */
function protocolNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^protocol \S+ (\S+)/gm)].map((m) => m[1]!));
}

/** The networks a config of ours announces: its static routes (each peer exports only those). */
function announcedBy(text: string): string[] {
  return [...text.matchAll(/^ {2}route (\S+) blackhole;$/gm)].map((m) => m[1]!);
}

/** Line diff as sets (our renderer's lines are unique enough for a review); TCP-MD5 passwords never shown. */
function lineDiff(before: string, after: string): string[] {
  const hide = (l: string) => l.replace(/password ".*"/, 'password "…"');
  const a = before.split('\n');
  const b = after.split('\n');
  const sa = new Set(a);
  const sb = new Set(b);
  return [...a.filter((l) => !sb.has(l)).map((l) => `- ${hide(l)}`), ...b.filter((l) => !sa.has(l)).map((l) => `+ ${hide(l)}`)];
}

async function birdAnswers(socket: string): Promise<boolean> {
  try {
    await birdCommand(socket, 'show status', { timeoutMs: 2_000 });
    return true;
  } catch {
    return false;
  }
}

export async function planBgp(i: BgpPlanInput): Promise<BgpPlan> {
  const { node } = i;
  const changes: string[] = [];
  const errors: string[] = [];
  const paths = edgeBirdPaths(i.dataDir);
  const present = await readFile(paths.config, 'utf8').catch(() => undefined);
  const running = await birdAnswers(paths.socket);
  const now = running && present !== undefined ? announcedBy(present) : [];
  const out: BgpPlan = {
    changes,
    errors,
    announced: [],
    announce: [],
    withdraw: [],
    refused: [],
    bird: { config: paths.config, running, action: 'none', protocols_added: [], protocols_removed: [], diff: [] },
  };
  const finish = (announced: string[]) => {
    out.announced = announced;
    out.announce = announced.filter((n) => !now.includes(n));
    out.withdraw = now.filter((n) => !announced.includes(n));
    for (const n of out.announce) changes.push(`announce ${n}`);
    for (const n of out.withdraw) changes.push(`withdraw ${n}`);
    return out;
  };

  let localEndpoints: string[] = [];
  try {
    localEndpoints = await reconcileAnycastLoopback(node.hostNetns, anycastLoopbackDesired(i.settings.anycast_endpoints), true, changes, { dryRun: true });
  } catch (err) {
    errors.push(`anycast endpoints on lo: ${errorText(err)}`);
  }

  const bgp = effectiveNodeBgp(i.settings, i.nodeConfig);
  if (bgp.peers.length === 0) {
    if (running) {
      out.bird.action = 'stop';
      changes.push(`stop BIRD (no BGP peers configured), withdrawing everything first`);
    }
    return finish([]);
  }
  const routerId = bgp.routerId ?? (await uplinkRouterId(node));
  if (!routerId) {
    errors.push(`no BGP router id: set bgp.router_id in the node config, or give the uplink ${node.uplink} an IPv4 address`);
    return finish(now);
  }
  const states: Record<string, AccountStatus> = {};
  for (const [id, { doc, revision }] of i.docs)
    states[id] = i.failing.has(id) ? { name: doc.name, state: 'error', error: 'its plan has errors' } : { name: doc.name, state: 'ok', applied_revision: revision };
  const { plan, spec, announcements } = desiredEdgeBird({
    node,
    view: { docs: i.docs, states, drained: i.drained, hostState: i.hostReady ? 'ok' : 'error' },
    bgp,
    routerId,
    localEndpoints,
    applied: new Map(),
  });
  out.refused = [
    ...announcements.refused.map((r) => ({ ...(r.accountId ? { account_id: r.accountId } : {}), value: r.value, reason: r.reason })),
    ...plan.held.map((h) => ({ account_id: h.accountId, value: h.value, reason: h.reason })),
  ];
  if (announcements.withheld) out.withheld = announcements.withheld;
  let text: string;
  try {
    text = renderBirdConfig(spec);
  } catch (err) {
    errors.push(`BIRD config: ${errorText(err)}`);
    return finish(now);
  }
  const before = protocolNames(present ?? '');
  const after = protocolNames(text);
  out.bird.protocols_added = [...after].filter((p) => !before.has(p));
  out.bird.protocols_removed = [...before].filter((p) => !after.has(p));
  if (text !== present) out.bird.diff = lineDiff(present ?? '', text);
  if (!running) {
    out.bird.action = 'start';
    changes.push(`start BIRD in ${node.hostNetns}${text !== present ? `, writing ${paths.config}` : ''} (${spec.bgpPeers.length} BGP session(s))`);
  } else if (text !== present) {
    out.bird.action = 'configure';
    changes.push(`write ${paths.config} and birdc configure (${out.bird.diff.length} line(s) differ)`);
  }
  for (const p of out.bird.protocols_added) changes.push(`BIRD: add protocol ${p}`);
  for (const p of out.bird.protocols_removed) changes.push(`BIRD: remove protocol ${p}`);
  return finish(announcements.all);
}
