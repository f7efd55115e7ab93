/**
 * `opentransit account create NAME` (operator token): creates an account and prints its token. The token goes
 * alone to stdout, so `TOKEN=$(opentransit account create acme)` works; the explanation goes to stderr.
 */
import type { Command } from 'commander';
import { verbContext, type CliIo } from './context.js';

interface CreatedAccount {
  id: string;
  name: string;
  token: string;
}

export function registerAccountCommand(program: Command, io: CliIo): void {
  const account = program.command('account').description('manage accounts (operator token)');
  account
    .command('create')
    .description("create an account and print its token (shown only once)")
    .argument('<name>', "the account's name, e.g. acme")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const created = await ctx.client.post<CreatedAccount>('/v1/accounts', { name });
      if (ctx.settings.output === 'json') return ctx.printJson(created);
      io.stderr(`created account ${created.name} (id ${created.id}); its token is shown only this once:\n`);
      io.stdout(`${created.token}\n`);
    });
}
