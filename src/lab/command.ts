/**
 * `opentransit lab up|down|status|exec|store`: the command-line face of lab.ts. src/main.ts declares the options and
 * imports this module only when a lab verb runs.
 *
 * Which lab: `-n NAME`, else the name in `-f FILE`, else the only lab on this machine (run directory or
 * namespaces); `up` defaults to examples/lab.yaml.
 */
import { readFile } from 'node:fs/promises';
import { labDown, labExec, labStatus, labUp, listLabs, LabError, type LabStatus } from './lab.js';
import { defaultTopologyFile } from './paths.js';
import { parseTopology } from './topology.js';

export interface LabCommandOptions {
  name?: string;
  file?: string;
  output?: string;
}

const out = (s: string) => void process.stdout.write(s);
const err = (s: string) => void process.stderr.write(s);

async function resolveName(opts: LabCommandOptions, verb: string): Promise<string | undefined> {
  if (opts.name) return opts.name;
  if (opts.file) return parseTopology(await readFile(opts.file, 'utf8'), opts.file).name;
  const labs = await listLabs();
  if (labs.length === 1) return labs[0];
  if (labs.length > 1) throw new LabError(`several labs exist (${labs.join(', ')}); say which: opentransit lab ${verb} -n NAME`);
  return undefined;
}

export async function labUpCommand(opts: LabCommandOptions): Promise<void> {
  requireRoot();
  const file = opts.file ?? defaultTopologyFile();
  const { alreadyUp, state } = await labUp(file, { log: (l) => err(`${l}\n`) });
  if (alreadyUp) err(`lab ${state.name} is already up (since ${state.createdAt}); \`opentransit lab down -n ${state.name}\` first to rebuild it\n`);
  if (opts.output === 'json') out(JSON.stringify(await labStatus(state.name), null, 2) + '\n');
  else out(`lab ${state.name} is up: API ${state.api?.url ?? '?'}; see \`opentransit lab status\`\n`);
}

export async function labDownCommand(opts: LabCommandOptions): Promise<void> {
  requireRoot();
  const name = await resolveName(opts, 'down');
  if (name === undefined) {
    out('no lab to remove\n');
    return;
  }
  const r = await labDown(name);
  out(`lab ${name}: removed ${r.namespaces.length} namespaces, stopped ${r.processes} processes${r.runDir ? ', removed its run directory' : ''}\n`);
}

export async function labStatusCommand(opts: LabCommandOptions): Promise<void> {
  const name = await resolveName(opts, 'status');
  if (name === undefined) throw new LabError('no lab is up; start one with `opentransit lab up`');
  const s = await labStatus(name);
  out(opts.output === 'json' ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
}

/** `lab store stop|start [MEMBER]`: stop = SIGKILL (a crash), start = same data and cluster config (rejoins). */
export async function labStoreCommand(opts: LabCommandOptions, action: string, member?: string): Promise<void> {
  if (action !== 'stop' && action !== 'start') throw new LabError(`lab store ${action}: the actions are stop and start`);
  requireRoot();
  const name = await resolveName(opts, 'store');
  if (name === undefined) throw new LabError('no lab is up; start one with `opentransit lab up -f examples/lab-etcd.yaml`');
  const { labStoreStart, labStoreStop } = await import('./store.js');
  const r = action === 'stop' ? await labStoreStop(name, member) : await labStoreStart(name, member);
  const list = (xs: string[]) => xs.join(', ');
  const parts: string[] = [];
  if (r.changed.length) parts.push(action === 'stop' ? `killed ${list(r.changed)} (SIGKILL, as a crash)` : `started ${list(r.changed)}`);
  if (r.unchanged.length) parts.push(`${list(r.unchanged)} already ${action === 'stop' ? 'stopped' : 'running'}`);
  if (r.quorum !== undefined) parts.push(r.quorum ? 'the cluster has a quorum and serves' : 'no quorum yet: the cluster serves once a majority of members runs');
  out(`lab ${name}: etcd ${parts.join('; ')}\n`);
}

export async function labExecCommand(opts: LabCommandOptions, host: string, argv: string[]): Promise<void> {
  const name = await resolveName(opts, 'exec');
  if (name === undefined) throw new LabError('no lab is up; start one with `opentransit lab up`');
  const r = await labExec(name, host, argv, { stdio: 'inherit' });
  // The command's own status is ours (a shell's convention for signals: 128 + number).
  process.exit(r.exitCode ?? 128 + (r.signal ? signalNumber(r.signal) : 0));
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 } as Record<string, number>)[sig] ?? 0;
}

function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new LabError('the lab creates network namespaces: run it as root');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatStatus(s: LabStatus): string {
  const lines = [
    `lab ${s.name}: ${s.phase}${s.healthy ? '' : ' (NOT healthy: a process or namespace is missing)'}`,
    `api: ${s.api_url}   store: ${s.store.spec}   run directory: ${s.run_dir}`,
    `operator token: ${s.operator_token}`,
    `anycast endpoints: ${s.anycast_endpoints.join(', ')}`,
    '',
  ];
  if (s.store.kind === 'etcd') {
    lines.push(`etcd: ${s.store.members.map((m) => `${m.name} ${m.pid === null ? 'stopped' : `pid ${m.pid} ${m.health}`} ${m.client_url}`).join(' | ')}`, '');
  }
  const hosts = [['HOST', 'ROLE', 'NETNS', 'ADDRESSES'], ...Object.entries(s.hosts).map(([n, h]) => [n, h.role, h.present ? h.netns : `${h.netns} (missing)`, h.addresses.join(' ')])];
  let text = lines.join('\n') + table(hosts);
  const edges = Object.entries(s.edges);
  if (edges.length) {
    text +=
      '\n' +
      table([
        ['EDGE', 'NODE ID', 'AGENT', 'UPLINK', 'BGP', 'STORE'],
        ...edges.map(([n, e]) => [n, e.node_id, e.up ? 'up' : 'down', e.uplink, e.bgp ?? '-', e.store_reachable === undefined ? '-' : e.store_reachable ? 'reachable' : 'UNREACHABLE']),
      ]);
  }
  const core = s.bgp.filter((b) => !s.edges[b.peerHost]);
  if (core.length) text += '\n' + table([['ROUTER', 'PEER', 'BGP'], ...core.map((b) => [b.host, b.peerHost, b.state])]);
  return text;
}
