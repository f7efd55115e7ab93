/**
 * `opentransit node …` (operator token): one edge node at a time.
 *   node drain NODE [--reason TEXT]    the node withdraws every BGP announcement (sessions stay up): maintenance
 *   node undrain NODE                  it announces again
 *   node config get NODE               its BGP router id, AS and peers (passwords shown as password_set)
 *   node config set NODE -f FILE       replace them (YAML or JSON; - reads stdin); absent fields follow the settings
 *   node config delete NODE            forget them: the node follows the operator's settings
 * `opentransit status` shows what each node announces.
 */
import type { Command } from 'commander';
import { seg } from './client.js';
import { verbContext, type CliIo } from './context.js';
import { readDataFile } from './data-file.js';
import { formatPeer, type PeerView } from './settings.js';
import { renderObjects } from './table.js';

interface NodeConfigView {
  bgp: { router_id?: string; asn?: number; peers?: PeerView[] };
}

interface DrainState {
  node_id: string;
  drained: boolean;
  drained_at?: string;
  reason?: string;
}

export function registerNodeCommand(program: Command, io: CliIo): void {
  const node = program.command('node').description('one edge node: drain, undrain, its BGP configuration (operator token)');

  node
    .command('drain')
    .description('withdraw every BGP announcement of NODE (its sessions stay up) until undrained')
    .argument('<node>', 'node id')
    .option('--reason <text>', 'why (kept with the drain)')
    .action(async (id: string, opts: { reason?: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const r = await ctx.client.post<DrainState>(`/v1/nodes/${seg(id)}/drain`, opts.reason !== undefined ? { reason: opts.reason } : {});
      if (ctx.settings.output === 'json') return ctx.printJson(r);
      io.stdout(`node ${id}: drained${r.reason ? ` (${r.reason})` : ''}; its agent withdraws every announcement (see \`opentransit status\`)\n`);
    });

  node
    .command('undrain')
    .description('end the drain of NODE: it announces again')
    .argument('<node>', 'node id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const r = await ctx.client.post<DrainState>(`/v1/nodes/${seg(id)}/undrain`, {});
      if (ctx.settings.output === 'json') return ctx.printJson(r);
      io.stdout(`node ${id}: undrained; its agent announces again once ready\n`);
    });

  const config = node.command('config').description("a node's BGP configuration (router id, AS, peers)");
  config
    .command('get')
    .argument('<node>', 'node id')
    .description("show NODE's configuration")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const c = await ctx.client.get<NodeConfigView>(`/v1/nodes/${seg(id)}/config`);
      if (ctx.settings.output === 'json') return ctx.printJson(c);
      io.stdout(formatNodeConfig(c));
    });
  config
    .command('set')
    .argument('<node>', 'node id')
    .requiredOption('-f, --file <file>', 'the configuration, YAML or JSON: {bgp: {router_id, asn, peers}} (- reads stdin)')
    .description("replace NODE's configuration")
    .action(async (id: string, opts: { file: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const body = await readDataFile(io, opts.file);
      const c = await ctx.client.put<NodeConfigView>(`/v1/nodes/${seg(id)}/config`, body);
      if (ctx.settings.output === 'json') return ctx.printJson(c);
      io.stdout(formatNodeConfig(c));
    });
  config
    .command('delete')
    .argument('<node>', 'node id')
    .description("remove NODE's configuration: it follows the operator's settings")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      await ctx.client.delete(`/v1/nodes/${seg(id)}/config`);
      if (ctx.settings.output === 'json') return ctx.printJson({ node_id: id, deleted: true });
      io.stdout(`node ${id}: configuration removed (it follows the operator's settings)\n`);
    });
}

export function formatNodeConfig(c: NodeConfigView): string {
  const b = c.bgp ?? {};
  return renderObjects(
    [
      { header: 'setting', value: (r: { k: string; v: string }) => r.k },
      { header: 'value', value: (r: { k: string; v: string }) => r.v },
    ],
    [
      { k: 'bgp.router_id', v: b.router_id ?? '(the uplink address)' },
      { k: 'bgp.asn', v: b.asn !== undefined ? String(b.asn) : '(settings)' },
      { k: 'bgp.peers', v: b.peers ? (b.peers.length ? b.peers.map(formatPeer).join(', ') : 'none') : '(settings)' },
    ],
  );
}
