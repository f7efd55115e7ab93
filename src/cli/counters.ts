/**
 * `opentransit counters [--account A]`: what the edges' data planes did with packets — per account, verdict and
 * reason, packets and bytes, summed over every edge that reports (GET /v1/counters). An account's token sees its
 * own account only; the operator sees every account and the traffic of none (shown as "-").
 */
import type { Command } from 'commander';
import { findAccount, listAccounts } from './accounts.js';
import { verbContext, type CliIo } from './context.js';
import { UsageError } from './errors.js';
import { renderObjects } from './table.js';

export interface CounterRow {
  account_id: string | null;
  account?: string | null;
  verdict: string;
  reason: string;
  packets: number;
  bytes: number;
}

export function formatCounters(items: readonly CounterRow[]): string {
  if (items.length === 0) return 'no counters reported yet\n';
  return renderObjects(
    [
      { header: 'account', value: (r: CounterRow) => r.account ?? r.account_id ?? undefined },
      { header: 'verdict', value: (r) => r.verdict },
      { header: 'reason', value: (r) => r.reason },
      { header: 'packets', value: (r) => r.packets },
      { header: 'bytes', value: (r) => r.bytes },
    ],
    items,
  );
}

export function registerCountersCommand(program: Command, io: CliIo): void {
  program
    .command('counters')
    .description('data-plane counters per account, verdict and reason, summed over the edges')
    .option('--account <name|id>', 'only this account')
    .action(async (opts: { account?: string }, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      let query: Record<string, string> = {};
      if (opts.account !== undefined) {
        const account = findAccount(await listAccounts(ctx.client), opts.account);
        if (!account) throw new UsageError(`account "${opts.account}" not found`, 'account');
        query = { account: account.id };
      }
      const body = await ctx.client.get<{ items?: CounterRow[] }>('/v1/counters', { query });
      if (ctx.settings.output === 'json') return ctx.printJson(body);
      io.stdout(formatCounters(body.items ?? []));
    });
}
