/**
 * `opentransit settings get` and `opentransit settings set --anycast A[,B…]` (operator token): the operator-wide
 * settings. `set` changes only what it is given: it reads the settings, replaces those fields and writes them back
 * (the blocklist and BGP peers have verbs of their own).
 */
import type { Command } from 'commander';
import { verbContext, type CliIo } from './context.js';
import { renderObjects } from './table.js';

interface Settings {
  anycast_endpoints: string[];
  bgp_peers: unknown[];
  blocklist: unknown[];
  [field: string]: unknown;
}

export function registerSettingsCommand(program: Command, io: CliIo): void {
  const settings = program.command('settings').description('operator settings: anycast endpoints, BGP peers, blocklist (operator token)');
  settings
    .command('get')
    .description('show the operator settings')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const s = await ctx.client.get<Settings>('/v1/settings');
      if (ctx.settings.output === 'json') return ctx.printJson(s);
      io.stdout(formatSettings(s));
    });
  settings
    .command('set')
    .description('change operator settings; fields not given stay as they are')
    .requiredOption('--anycast <addresses>', 'the anycast GRE endpoints, comma-separated (replaces the list)')
    .action(async (opts: { anycast: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const current = await ctx.client.get<Settings>('/v1/settings');
      const anycast = opts.anycast.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
      const updated = await ctx.client.put<Settings>('/v1/settings', { ...current, anycast_endpoints: anycast });
      if (ctx.settings.output === 'json') return ctx.printJson(updated);
      io.stdout(formatSettings(updated));
    });
}

export function formatSettings(s: Settings): string {
  return renderObjects(
    [
      { header: 'setting', value: (r: { k: string; v: string }) => r.k },
      { header: 'value', value: (r: { k: string; v: string }) => r.v },
    ],
    [
      { k: 'anycast_endpoints', v: s.anycast_endpoints.join(' ') || '-' },
      { k: 'bgp_peers', v: String(s.bgp_peers.length) },
      { k: 'blocklist', v: `${s.blocklist.length} entries` },
    ],
  );
}
