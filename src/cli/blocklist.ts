/**
 * `opentransit blocklist list|add|del CIDR` (operator token): the global source blocklist every edge drops in XDP.
 * It is a field of the operator settings: each change reads them with their ETag and writes them back with
 * If-Match, so two operators changing settings at once never lose each other's change (a stale write is retried
 * against the fresh settings).
 */
import type { Command } from 'commander';
import { normaliseCidr } from '../model/ip.js';
import { ApiError, UsageError } from './errors.js';
import { verbContext, type CliIo, type VerbContext } from './context.js';
import { renderObjects } from './table.js';

interface BlocklistEntry {
  cidr: string;
  description: string;
}
interface Settings {
  blocklist: BlocklistEntry[];
  [field: string]: unknown;
}

const ATTEMPTS = 5;

/** A CIDR as the API stores it; an address alone means that one host (/32, /128). */
export function blocklistCidr(text: string): string {
  const withLength = text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`;
  try {
    return normaliseCidr(withLength);
  } catch (err) {
    throw new UsageError(`${text}: ${(err as Error).message}`, 'cidr');
  }
}

/** Reads the settings, lets `change` edit them, writes them back unless it returned false; retries stale writes. */
async function updateSettings(ctx: VerbContext, change: (s: Settings) => boolean): Promise<Settings> {
  for (let attempt = 1; ; attempt++) {
    const current = await ctx.client.request<Settings>('GET', '/v1/settings');
    const next = structuredClone(current.body);
    next.blocklist ??= [];
    if (!change(next)) return current.body;
    try {
      const headers: Record<string, string> = current.etag ? { 'if-match': current.etag } : {};
      return (await ctx.client.request<Settings>('PUT', '/v1/settings', { body: next, headers })).body;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'stale' && attempt < ATTEMPTS) continue;
      throw err;
    }
  }
}

export function formatBlocklist(entries: readonly BlocklistEntry[]): string {
  if (entries.length === 0) return 'the blocklist is empty\n';
  return renderObjects(
    [
      { header: 'cidr', value: (e: BlocklistEntry) => e.cidr },
      { header: 'description', value: (e: BlocklistEntry) => e.description, optional: true },
    ],
    entries,
  );
}

export function registerBlocklistCommand(program: Command, io: CliIo): void {
  const blocklist = program.command('blocklist').description('the global source blocklist, dropped in XDP at every edge (operator token)');
  blocklist
    .command('list')
    .description('list the blocked source networks')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const s = await ctx.client.get<Settings>('/v1/settings');
      if (ctx.settings.output === 'json') return ctx.printJson({ items: s.blocklist ?? [] });
      io.stdout(formatBlocklist(s.blocklist ?? []));
    });
  blocklist
    .command('add')
    .description('block a source network (an address alone blocks that host)')
    .argument('<cidr>', 'e.g. 198.51.100.0/24 or 2001:db8::/32')
    .option('--description <text>', 'why it is blocked')
    .action(async (text: string, opts: { description?: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const cidr = blocklistCidr(text);
      let added = false;
      const s = await updateSettings(ctx, (next) => {
        if (next.blocklist.some((e) => e.cidr === cidr)) return false;
        next.blocklist.push({ cidr, description: opts.description ?? '' });
        added = true;
        return true;
      });
      if (ctx.settings.output === 'json') return ctx.printJson({ items: s.blocklist });
      io.stdout(added ? `blocked ${cidr}\n` : `${cidr} is already in the blocklist\n`);
    });
  blocklist
    .command('del')
    .alias('delete')
    .description('unblock a source network')
    .argument('<cidr>', 'exactly as listed')
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const cidr = blocklistCidr(text);
      let found = false;
      const s = await updateSettings(ctx, (next) => {
        const before = next.blocklist.length;
        next.blocklist = next.blocklist.filter((e) => e.cidr !== cidr);
        found = next.blocklist.length !== before;
        return found;
      });
      if (!found) throw new UsageError(`${cidr} is not in the blocklist`, 'cidr');
      if (ctx.settings.output === 'json') return ctx.printJson({ items: s.blocklist });
      io.stdout(`unblocked ${cidr}\n`);
    });
}
