/**
 * `opentransit settings get` and `opentransit settings set [--anycast A[,B…]] [--bgp-asn N] [--bgp-peers-file F]`
 * (operator token): the operator-wide settings. `set` changes only what it is given: it reads the settings,
 * replaces those fields and writes them back. BGP passwords are never shown: a peer says `password_set`, and
 * sending that back keeps the stored password (so get → set round trips never lose a secret).
 */
import type { Command } from 'commander';
import { verbContext, type CliIo } from './context.js';
import { readDataFile } from './data-file.js';
import { UsageError } from './errors.js';
import { renderObjects } from './table.js';

export interface PeerView {
  address: string;
  asn: number;
  bfd?: boolean;
  passive?: boolean;
  multihop?: number;
  password_set?: boolean;
  [field: string]: unknown;
}

interface Settings {
  anycast_endpoints: string[];
  bgp?: { asn: number; peers: PeerView[] };
  blocklist: unknown[];
  [field: string]: unknown;
}

export function registerSettingsCommand(program: Command, io: CliIo): void {
  const settings = program.command('settings').description("operator settings: anycast endpoints, the edges' BGP, blocklist (operator token)");
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
    .option('--anycast <addresses>', 'the anycast GRE endpoints, comma-separated (replaces the list)')
    .option('--bgp-asn <asn>', "the edges' AS number")
    .option('--bgp-peers-file <file>', "the edges' BGP peers: a YAML or JSON list (- reads stdin; replaces the list)")
    .action(async (opts: { anycast?: string; bgpAsn?: string; bgpPeersFile?: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      if (opts.anycast === undefined && opts.bgpAsn === undefined && opts.bgpPeersFile === undefined)
        throw new UsageError('give at least one of --anycast, --bgp-asn, --bgp-peers-file');
      let asn: number | undefined;
      if (opts.bgpAsn !== undefined) {
        if (!/^\d{1,10}$/.test(opts.bgpAsn)) throw new UsageError(`--bgp-asn: "${opts.bgpAsn}" is not an AS number`, 'bgp.asn');
        asn = Number(opts.bgpAsn);
      }
      const peers = opts.bgpPeersFile !== undefined ? await readDataFile(io, opts.bgpPeersFile) : undefined;
      if (peers !== undefined && !Array.isArray(peers)) throw new UsageError(`${opts.bgpPeersFile}: must be a list of peers`, 'bgp.peers');
      const current = await ctx.client.get<Settings>('/v1/settings');
      const next: Settings = { ...current };
      if (opts.anycast !== undefined) next.anycast_endpoints = opts.anycast.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
      if (asn !== undefined || peers !== undefined) {
        const bgp = current.bgp ?? { asn: 64512, peers: [] };
        next.bgp = { asn: asn ?? bgp.asn, peers: (peers as PeerView[] | undefined) ?? bgp.peers };
      }
      const updated = await ctx.client.put<Settings>('/v1/settings', next);
      if (ctx.settings.output === 'json') return ctx.printJson(updated);
      io.stdout(formatSettings(updated));
    });
}

/** One line per peer: `198.51.100.1 AS65000 bfd password` (only what is on). */
export function formatPeer(p: PeerView): string {
  const flags = [p.bfd ? 'bfd' : '', p.passive ? 'passive' : '', p.multihop ? `multihop ${p.multihop}` : '', p.password_set ? 'password' : ''].filter(Boolean);
  return [`${p.address} AS${p.asn}`, ...flags].join(' ');
}

export function formatSettings(s: Settings): string {
  return renderObjects(
    [
      { header: 'setting', value: (r: { k: string; v: string }) => r.k },
      { header: 'value', value: (r: { k: string; v: string }) => r.v },
    ],
    [
      { k: 'anycast_endpoints', v: s.anycast_endpoints.join(' ') || '-' },
      { k: 'bgp.asn', v: s.bgp ? String(s.bgp.asn) : '-' },
      { k: 'bgp.peers', v: s.bgp?.peers.length ? s.bgp.peers.map(formatPeer).join(', ') : '-' },
      { k: 'blocklist', v: `${s.blocklist.length} entries` },
    ],
  );
}
