/**
 * Turning what the user typed (`--account acme` or an account id) into the account the API path needs.
 * Operators see every account; an account token sees only its own, so with such a token `--account` can be
 * left out. Names and ids are both accepted because people remember names and scripts keep ids.
 */
import type { ApiClient } from './client.js';
import { UsageError } from './errors.js';

export interface AccountRef {
  id: string;
  name: string;
}

interface AccountList {
  items: AccountRef[];
}

export async function listAccounts(client: ApiClient): Promise<AccountRef[]> {
  const body = await client.get<AccountList>('/v1/accounts');
  return Array.isArray(body?.items) ? body.items : [];
}

/** Finds an account by id or name among those listed; undefined when there is no such account. */
export function findAccount(accounts: readonly AccountRef[], ref: string): AccountRef | undefined {
  return accounts.find((a) => a.id === ref) ?? accounts.find((a) => a.name === ref);
}

/**
 * The account a verb works on. Without `ref`, the token's only visible account is taken (an account token
 * implies its own account); when several are visible, the user must choose.
 */
export async function resolveAccount(client: ApiClient, ref: string | undefined): Promise<AccountRef> {
  const accounts = await listAccounts(client);
  if (ref !== undefined) {
    const found = findAccount(accounts, ref);
    if (!found) throw new UsageError(`account "${ref}" not found`, 'account');
    return found;
  }
  const only = accounts[0];
  if (accounts.length === 1 && only) return only;
  if (accounts.length === 0) {
    throw new UsageError('no accounts exist yet: create one with `opentransit account create NAME` or `opentransit apply -f FILE`');
  }
  const names = accounts.slice(0, 5).map((a) => a.name).join(', ');
  throw new UsageError(
    `--account NAME|ID is required: this token sees ${accounts.length} accounts (${names}${accounts.length > 5 ? ', …' : ''})`,
    'account',
  );
}
