/**
 * `opentransit delete account|prefix|tunnel|route REF`: REF is an id, or the object's natural key where it has
 * one (an account's name, a prefix's CIDR, a tunnel's name), so people need not look ids up first.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { findAccount, listAccounts, resolveAccount } from './accounts.js';
import { seg } from './client.js';
import { verbContext, type CliIo } from './context.js';
import { UsageError } from './errors.js';

type Item = Record<string, unknown>;

interface Deletable {
  /** Path under /v1/accounts/{id}. */
  path: string;
  /** The singular the user types and we print. */
  noun: string;
  /** The field besides `id` that names the object, if any. */
  naturalKey?: string;
}

const DELETABLE: Record<string, Deletable> = {
  prefix: { path: 'prefixes', noun: 'prefix', naturalKey: 'cidr' },
  tunnel: { path: 'gre_tunnels', noun: 'tunnel', naturalKey: 'name' },
  route: { path: 'routes', noun: 'route' },
};

export function registerDeleteCommand(program: Command, io: CliIo): void {
  const del = program.command('delete').description('delete an account or one of its objects');

  del
    .command('account')
    .description('delete an account and everything in it (operator token)')
    .argument('<name|id>', "the account's name or id")
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const account = findAccount(await listAccounts(ctx.client), ref);
      if (!account) throw new UsageError(`account "${ref}" not found`, 'account');
      await ctx.client.delete(`/v1/accounts/${seg(account.id)}`);
      if (ctx.settings.output === 'json') return ctx.printJson({ deleted: { kind: 'account', ...account } });
      io.stdout(`deleted account ${account.name} (id ${account.id})\n`);
    });

  for (const [verb, d] of Object.entries(DELETABLE)) {
    const what = d.naturalKey ? `<${d.naturalKey}|id>` : '<id>';
    del
      .command(verb)
      .description(`delete a ${d.noun} of an account`)
      .argument(what, `the ${d.noun}'s ${d.naturalKey ? `${d.naturalKey} or ` : ''}id`)
      .addOption(new Option('--account <name|id>', 'the account (implied by an account token)'))
      .action(async (ref: string, opts: { account?: string }, cmd: Command) => {
        const ctx = verbContext(cmd, io);
        const account = await resolveAccount(ctx.client, opts.account);
        const base = `/v1/accounts/${seg(account.id)}/${d.path}`;
        const { items } = await ctx.client.get<{ items?: Item[] }>(base);
        const target = findItem(items ?? [], ref, d.naturalKey);
        if (!target) throw new UsageError(`${d.noun} "${ref}" not found in account ${account.name}`, d.noun);
        const id = String(target.id);
        await ctx.client.delete(`${base}/${seg(id)}`);
        if (ctx.settings.output === 'json') {
          return ctx.printJson({ deleted: { kind: d.noun, account: account.id, ...target } });
        }
        const label = d.naturalKey && target[d.naturalKey] !== undefined ? `${String(target[d.naturalKey])} (id ${id})` : id;
        io.stdout(`deleted ${d.noun} ${label} from account ${account.name}\n`);
      });
  }
}

function findItem(items: readonly Item[], ref: string, naturalKey: string | undefined): Item | undefined {
  return items.find((i) => i.id === ref) ?? (naturalKey ? items.find((i) => i[naturalKey] === ref) : undefined);
}
