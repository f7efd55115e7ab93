/**
 * `opentransit apply -f FILE [--dry-run]`: makes each account named in FILE match its document, atomically per
 * account (`PUT /v1/accounts/{id}/config`), and prints what changed. Documents are applied in file order; an
 * account that does not exist yet is created first when the token is the operator's (its token is printed once).
 */
import type { Command } from 'commander';
import { findAccount, listAccounts, type AccountRef } from './accounts.js';
import { seg, type ApiClient } from './client.js';
import { verbContext, type CliIo } from './context.js';
import { formatChanges, summarizeChanges, type Change } from './diff.js';
import { parseConfigDocuments, type ConfigDocument } from './documents.js';
import { ApiError, UsageError } from './errors.js';

interface ConfigResult {
  changes?: Change[];
  revision?: number;
}

export interface ApplyResult {
  account: AccountRef;
  /** Set when apply created the account: its token, which the API never shows again. */
  token?: string;
  dryRun: boolean;
  /** True when a dry run met an account that does not exist yet: nothing was validated by the API. */
  accountMissing?: boolean;
  changes: Change[];
  revision?: number;
}

interface ApplyOptions {
  filename: string;
  dryRun?: boolean;
}

export function registerApplyCommand(program: Command, io: CliIo): void {
  program
    .command('apply')
    .description('make accounts match a YAML file (one document per account, separated by ---)')
    .requiredOption('-f, --filename <file>', 'the YAML file, or - for stdin')
    .option('--dry-run', 'show the changes without storing them')
    .action(async (opts: ApplyOptions, cmd: Command) => {
      const ctx = verbContext(cmd, io);
      const fromStdin = opts.filename === '-';
      const source = fromStdin ? '<stdin>' : opts.filename;
      const text = fromStdin ? await io.readStdin() : await readSource(io, opts.filename);
      const documents = parseConfigDocuments(text, source);
      const json = ctx.settings.output === 'json';
      const results: ApplyResult[] = [];
      let accounts = await listAccounts(ctx.client);
      for (const doc of documents) {
        const result = await applyDocument(ctx.client, doc, accounts, opts.dryRun === true);
        if (result.token !== undefined) accounts = [...accounts, result.account];
        results.push(result);
        if (!json) io.stdout(formatApplyResult(result));
      }
      if (json) ctx.printJson({ results });
    });
}

async function readSource(io: CliIo, path: string): Promise<string> {
  try {
    return await io.readFile(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new UsageError(`cannot read ${path}: ${reason}`, 'filename');
  }
}

export async function applyDocument(
  client: ApiClient,
  doc: ConfigDocument,
  accounts: readonly AccountRef[],
  dryRun: boolean,
): Promise<ApplyResult> {
  let account = accounts.find((a) => a.name === doc.account) ?? findAccount(accounts, doc.account);
  let token: string | undefined;
  if (!account) {
    // A dry run must not create anything, so the API cannot diff against the (absent) account: show what the
    // document would create, marked as unvalidated.
    if (dryRun) {
      return { account: { id: '', name: doc.account }, dryRun, accountMissing: true, changes: previewCreates(doc.body) };
    }
    const created = await createAccount(client, doc.account);
    account = { id: created.id, name: created.name };
    token = created.token;
  }
  const result = await client.put<ConfigResult>(`/v1/accounts/${seg(account.id)}/config`, doc.body, {
    query: dryRun ? { dry_run: 'true' } : {},
  });
  return {
    account,
    ...(token !== undefined ? { token } : {}),
    dryRun,
    changes: Array.isArray(result?.changes) ? result.changes : [],
    ...(typeof result?.revision === 'number' ? { revision: result.revision } : {}),
  };
}

async function createAccount(client: ApiClient, name: string): Promise<{ id: string; name: string; token: string }> {
  try {
    return await client.post('/v1/accounts', { name });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      throw new UsageError(`account "${name}" does not exist, and only the operator's token can create it`, 'account');
    }
    throw err;
  }
}

/**
 * What a document would change in a new, empty account (whose firewall allows everything), with the same kinds
 * and keys as the API's diff.
 */
export function previewCreates(body: Record<string, unknown>): Change[] {
  const list = (value: unknown): Record<string, unknown>[] =>
    Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
  const changes: Change[] = [];
  for (const p of list(body.prefixes)) changes.push({ op: 'create', kind: 'prefix', key: String(p.cidr), after: p });
  for (const t of list(body.gre_tunnels)) changes.push({ op: 'create', kind: 'gre_tunnel', key: String(t.name), after: t });
  for (const r of list(body.routes)) {
    changes.push({ op: 'create', kind: 'route', key: `${String(r.prefix)} via ${String(r.nexthop)}`, after: r });
  }
  const firewall = (body.firewall ?? {}) as Record<string, unknown>;
  list(firewall.rules).forEach((rule, i) => changes.push({ op: 'create', kind: 'firewall_rule', key: `rules[${i}]`, after: rule }));
  if (firewall.default_action !== undefined && firewall.default_action !== 'allow') {
    changes.push({
      op: 'update', kind: 'firewall', key: 'firewall',
      before: { default_action: 'allow' }, after: { default_action: firewall.default_action },
    });
  }
  return changes;
}

/** The human report of one document: a header naming the account, the diff, and what happened. */
export function formatApplyResult(r: ApplyResult): string {
  let out = `account ${r.account.name}`;
  if (r.accountMissing) {
    out += ' does not exist yet; apply would create it with:\n';
    out += formatChanges(r.changes);
    return out + `${summarizeChanges(r.changes)} (dry run: nothing stored; the API validates only once the account exists)\n`;
  }
  out += r.token !== undefined ? ` (created, id ${r.account.id}):\n` : ':\n';
  if (r.token !== undefined) out += `  token (shown only this once): ${r.token}\n`;
  out += formatChanges(r.changes);
  if (r.dryRun) return out + `${summarizeChanges(r.changes)} (dry run: nothing stored)\n`;
  if (r.changes.length === 0) return out;
  return out + `${summarizeChanges(r.changes, true)}${r.revision !== undefined ? ` at revision ${r.revision}` : ''}\n`;
}
