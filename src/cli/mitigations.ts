/**
 * `opentransit mitigations list|add|del` (operator token): DoS rules every edge applies in XDP to traffic towards a
 * destination prefix — drop, or rate-limit to N packets per second per edge.
 *
 *   opentransit mitigations add 203.0.113.0/24 --protocol udp --dport 53 --length 1000-65535 --action drop --expires 1h
 *   opentransit mitigations add 203.0.113.10/32 --protocol tcp --tcp-flags syn,!ack --action rate-limit --pps 1000
 */
import type { Command } from 'commander';
import { seg } from './client.js';
import { verbContext, type CliIo } from './context.js';
import { UsageError } from './errors.js';
import { renderObjects } from './table.js';
import { formatTime } from './status.js';

interface Range {
  min: number;
  max: number;
}
export interface MitigationItem {
  id: string;
  prefix: string;
  protocol: string | number;
  source_ports?: Range;
  destination_ports?: Range;
  tcp_flags?: { set: string[]; unset: string[] };
  length?: Range;
  ttl?: Range;
  action: string;
  rate_limit?: { pps: number; burst: number };
  expires_at: string | null;
  description: string;
  created_at: string;
  expired?: boolean;
  stats?: { packets: number; dropped_packets: number };
}

/** "53" → 53..53, "1024-65535" → 1024..65535; the field names the option in errors. */
export function parseRange(text: string, field: string, max: number): Range {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a number or a range like 1000-2000`, field);
  const min = Number(m[1]);
  const hi = m[2] === undefined ? min : Number(m[2]);
  if (min > max || hi > max) throw new UsageError(`"${text}": values go up to ${max}`, field);
  if (min > hi) throw new UsageError(`"${text}": the range is backwards`, field);
  return { min, max: hi };
}

/** "syn,!ack" → set [syn], unset [ack]. */
export function parseTcpFlags(text: string): { set: string[]; unset: string[] } {
  const set: string[] = [];
  const unset: string[] = [];
  for (const raw of text.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean)) {
    const neg = raw.startsWith('!');
    const name = neg ? raw.slice(1) : raw;
    if (!/^(fin|syn|rst|psh|ack|urg|ece|cwr)$/.test(name)) throw new UsageError(`"${raw}" is not a TCP flag (fin syn rst psh ack urg ece cwr, ! for clear)`, 'tcp-flags');
    (neg ? unset : set).push(name);
  }
  if (set.length + unset.length === 0) throw new UsageError('name at least one flag, e.g. syn,!ack', 'tcp-flags');
  return { set, unset };
}

/** "90", "90s", "10m", "2h", "1d" → seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a duration like 90s, 10m, 2h or 1d`, 'expires');
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

interface AddOptions {
  action?: string;
  protocol?: string;
  sport?: string;
  dport?: string;
  tcpFlags?: string;
  length?: string;
  ttl?: string;
  pps?: string;
  burst?: string;
  expires?: string;
  expiresAt?: string;
  description?: string;
}

const integer = (text: string, field: string): number => {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`"${text}" is not a whole number`, field);
  return Number(text);
};

/** The API body of `mitigations add`. */
export function mitigationBody(prefix: string, o: AddOptions): Record<string, unknown> {
  // Checked here, not by commander: its own usage errors end the process instead of returning an exit code.
  if (o.action !== 'drop' && o.action !== 'rate-limit')
    throw new UsageError(o.action === undefined ? '--action is required: drop or rate-limit' : `--action must be drop or rate-limit, not "${o.action}"`, 'action');
  const body: Record<string, unknown> = { prefix, action: o.action };
  if (o.protocol !== undefined) body.protocol = /^\d+$/.test(o.protocol) ? Number(o.protocol) : o.protocol.toLowerCase();
  if (o.sport !== undefined) body.source_ports = parseRange(o.sport, 'sport', 65535);
  if (o.dport !== undefined) body.destination_ports = parseRange(o.dport, 'dport', 65535);
  if (o.tcpFlags !== undefined) body.tcp_flags = parseTcpFlags(o.tcpFlags);
  if (o.length !== undefined) body.length = parseRange(o.length, 'length', 65535);
  if (o.ttl !== undefined) body.ttl = parseRange(o.ttl, 'ttl', 255);
  if (o.pps !== undefined || o.burst !== undefined) {
    if (o.pps === undefined) throw new UsageError('--burst needs --pps', 'pps');
    body.rate_limit = { pps: integer(o.pps, 'pps'), ...(o.burst !== undefined ? { burst: integer(o.burst, 'burst') } : {}) };
  }
  if (o.expires !== undefined && o.expiresAt !== undefined) throw new UsageError('give --expires or --expires-at, not both', 'expires');
  if (o.expires !== undefined) body.expires_in = parseDuration(o.expires);
  if (o.expiresAt !== undefined) body.expires_at = o.expiresAt;
  if (o.description !== undefined) body.description = o.description;
  return body;
}

const range = (name: string, r: Range | undefined) => (r ? `${name} ${r.min === r.max ? r.min : `${r.min}-${r.max}`}` : undefined);

/** What a rule matches, in one short line: "udp dport 53 len 1000-65535". */
export function matchSummary(m: MitigationItem): string {
  const flags = m.tcp_flags ? `flags ${[...m.tcp_flags.set, ...m.tcp_flags.unset.map((f) => `!${f}`)].join(',')}` : undefined;
  const parts = [
    m.protocol === 'any' ? undefined : String(m.protocol),
    range('sport', m.source_ports),
    range('dport', m.destination_ports),
    flags,
    range('len', m.length),
    range('ttl', m.ttl),
  ].filter((p): p is string => p !== undefined);
  return parts.length ? parts.join(' ') : 'any';
}

export function formatMitigations(items: readonly MitigationItem[], now: number): string {
  if (items.length === 0) return 'no mitigation rules\n';
  return renderObjects(
    [
      { header: 'id', value: (m: MitigationItem) => m.id },
      { header: 'prefix', value: (m) => m.prefix },
      { header: 'match', value: (m) => matchSummary(m) },
      { header: 'action', value: (m) => (m.rate_limit ? `rate-limit ${m.rate_limit.pps}/s burst ${m.rate_limit.burst}` : m.action) },
      { header: 'expires', value: (m) => (m.expired ? 'expired' : m.expires_at === null ? 'never' : formatTime(m.expires_at, now)) },
      { header: 'matched', value: (m) => m.stats?.packets ?? 0 },
      { header: 'dropped', value: (m) => m.stats?.dropped_packets ?? 0 },
      { header: 'description', value: (m) => m.description, optional: true },
    ],
    items,
  );
}

export function registerMitigationsCommand(program: Command, io: CliIo): void {
  const mitigations = program.command('mitigations').description('DoS rules applied in XDP at every edge (operator token)');
  mitigations
    .command('list')
    .description('list the rules with what they matched and dropped')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const body = await ctx.client.get<{ items?: MitigationItem[] }>('/v1/mitigations');
      if (ctx.settings.output === 'json') return ctx.printJson(body);
      io.stdout(formatMitigations(body.items ?? [], Date.now()));
    });
  mitigations
    .command('add')
    .description('add a rule for traffic towards PREFIX')
    .argument('<prefix>', 'destination network, e.g. 203.0.113.0/24')
    .option('--action <action>', 'drop or rate-limit (required)')
    .option('--protocol <p>', 'any, tcp, udp, icmp, icmpv6, gre, esp or a protocol number (default any)')
    .option('--sport <range>', 'source ports: 53 or 1024-65535 (tcp/udp)')
    .option('--dport <range>', 'destination ports: 53 or 1024-65535 (tcp/udp)')
    .option('--tcp-flags <flags>', 'e.g. syn,!ack: SYN set, ACK clear (tcp)')
    .option('--length <range>', 'IP length in bytes, e.g. 1000-65535')
    .option('--ttl <range>', 'TTL / hop limit, e.g. 0-2')
    .option('--pps <n>', 'rate-limit: packets per second admitted per edge')
    .option('--burst <n>', 'rate-limit: bucket depth in packets (default: pps)')
    .option('--expires <duration>', 'lifetime: 90s, 10m, 2h, 1d (default: never)')
    .option('--expires-at <time>', 'ISO 8601 expiry time')
    .option('--description <text>', 'why the rule exists')
    .action(async (prefix: string, opts: AddOptions, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const created = await ctx.client.post<MitigationItem>('/v1/mitigations', mitigationBody(prefix, opts));
      if (ctx.settings.output === 'json') return ctx.printJson(created);
      io.stdout(`added mitigation ${created.id}: ${created.prefix} ${matchSummary(created)} → ${created.action}\n`);
    });
  mitigations
    .command('del')
    .alias('delete')
    .description('delete a rule')
    .argument('<id>', "the rule's id (see list)")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      await ctx.client.delete(`/v1/mitigations/${seg(id)}`);
      if (ctx.settings.output === 'json') return ctx.printJson({ deleted: { kind: 'mitigation', id } });
      io.stdout(`deleted mitigation ${id}\n`);
    });
}
