/**
 * `opentransit get accounts|prefixes|tunnels|routes|firewall`: lists what the API holds, as an aligned table
 * for people or, with `-o json`, exactly the API's response body for scripts.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { resolveAccount } from './accounts.js';
import { seg } from './client.js';
import { verbContext, type CliIo } from './context.js';
import { UsageError } from './errors.js';
import { renderObjects, type Column } from './table.js';

type Item = Record<string, unknown>;

interface Listing {
  /** Path under /v1/accounts/{id}; undefined for the account list itself. */
  path?: string;
  plural: string;
  columns: Column<Item>[];
}

const LISTINGS: Record<string, Listing> = {
  accounts: {
    plural: 'accounts',
    columns: [
      { header: 'id', value: (a) => a.id },
      { header: 'name', value: (a) => a.name },
      { header: 'created', value: (a) => a.created_at, optional: true },
    ],
  },
  prefixes: {
    path: 'prefixes',
    plural: 'prefixes',
    columns: [
      { header: 'id', value: (p) => p.id },
      { header: 'cidr', value: (p) => p.cidr },
      { header: 'advertised', value: (p) => p.advertised },
      { header: 'description', value: (p) => p.description, optional: true },
    ],
  },
  tunnels: {
    path: 'gre_tunnels',
    plural: 'GRE tunnels',
    columns: [
      { header: 'id', value: (t) => t.id },
      { header: 'name', value: (t) => t.name },
      { header: 'customer_endpoint', value: (t) => t.customer_gre_endpoint },
      { header: 'edge_endpoint', value: (t) => t.edge_gre_endpoint },
      { header: 'interface', value: (t) => t.interface_address },
      { header: 'ttl', value: (t) => t.ttl },
      { header: 'mtu', value: (t) => t.mtu },
      { header: 'health_check', value: (t) => healthCheckText(t.health_check), optional: true },
      { header: 'description', value: (t) => t.description, optional: true },
    ],
  },
  routes: {
    path: 'routes',
    plural: 'routes',
    columns: [
      { header: 'id', value: (r) => r.id },
      { header: 'prefix', value: (r) => r.prefix },
      { header: 'nexthop', value: (r) => r.nexthop },
      { header: 'priority', value: (r) => r.priority },
      { header: 'weight', value: (r) => r.weight },
      { header: 'description', value: (r) => r.description, optional: true },
    ],
  },
};

/** Singular and API spellings people will type too. */
const ALIASES: Record<string, string> = {
  account: 'accounts',
  prefix: 'prefixes',
  tunnel: 'tunnels',
  gre_tunnels: 'tunnels',
  gre_tunnel: 'tunnels',
  route: 'routes',
  firewall: 'firewall',
};

export const GET_KINDS = ['accounts', 'prefixes', 'tunnels', 'routes', 'firewall'] as const;

export function registerGetCommand(program: Command, io: CliIo): void {
  program
    .command('get')
    .description("list an account's objects (or the accounts)")
    .argument('<kind>', GET_KINDS.join('|'))
    .addOption(new Option('--account <name|id>', 'the account (implied by an account token)'))
    .action(async (kindArg: string, opts: { account?: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const kind = ALIASES[kindArg] ?? kindArg;
      if (!(GET_KINDS as readonly string[]).includes(kind)) {
        throw new UsageError(`cannot get "${kindArg}": expected one of ${GET_KINDS.join(', ')}`, 'kind');
      }
      if (kind === 'accounts') {
        const body = await ctx.client.get<{ items?: Item[] }>('/v1/accounts');
        return print(ctx.settings.output, body, LISTINGS.accounts!);
      }
      const account = await resolveAccount(ctx.client, opts.account);
      const base = `/v1/accounts/${seg(account.id)}`;
      if (kind === 'firewall') {
        const body = await ctx.client.get<Item>(`${base}/firewall`);
        if (ctx.settings.output === 'json') return ctx.printJson(body);
        return io.stdout(formatFirewall(body));
      }
      const listing = LISTINGS[kind]!;
      const body = await ctx.client.get<{ items?: Item[] }>(`${base}/${listing.path}`);
      print(ctx.settings.output, body, listing, account.name);
    });

  function print(output: string, body: { items?: Item[] }, listing: Listing, account?: string): void {
    if (output === 'json') return void io.stdout(JSON.stringify(body, null, 2) + '\n');
    const items = Array.isArray(body?.items) ? body.items : [];
    if (items.length === 0) return void io.stdout(`no ${listing.plural}${account ? ` in account ${account}` : ''}\n`);
    io.stdout(renderObjects(listing.columns, items));
  }
}

/** The firewall reads top to bottom like the rule list it is: the default, then the rules in order. */
export function formatFirewall(firewall: Item): string {
  const rules = Array.isArray(firewall.rules) ? (firewall.rules as Item[]) : [];
  const head = `default action: ${String(firewall.default_action ?? '-')}\n`;
  if (rules.length === 0) return head + 'no rules\n';
  const columns: Column<Item & { '#': number }>[] = [
    { header: '#', value: (r) => r['#'] },
    { header: 'action', value: (r) => r.action },
    // Shown only when some rule is switched off: "enabled: true" on every line is noise.
    { header: 'enabled', value: (r) => (rules.some((x) => x.enabled === false) ? r.enabled : undefined), optional: true },
    { header: 'description', value: (r) => r.description, optional: true },
    { header: 'expression', value: (r) => r.expression },
  ];
  return head + renderObjects(columns, rules.map((r, i) => ({ ...r, '#': i + 1 })));
}

/** "reply/mid" when on, "off" when off, absent when the API did not say. */
function healthCheckText(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const hc = value as { enabled?: unknown; type?: unknown; rate?: unknown };
  if (hc.enabled === false) return 'off';
  return [hc.type, hc.rate].filter((v) => typeof v === 'string').join('/') || 'on';
}
