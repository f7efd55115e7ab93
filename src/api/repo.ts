/**
 * The API's reads and writes of the store. Every write is one compare-and-swap transaction:
 *  - on the account document (so a write never loses another writer's change);
 *  - plus the registry when the account's name, prefixes or tunnel endpoints change (cross-account uniqueness);
 *  - plus the settings when tunnels or prefixes change (they were checked against the anycast endpoints).
 * A transaction that loses a race is retried from a fresh read (a few times, then 409). With If-Match the caller
 * asked for one exact revision of the account: if the account moved, that is 409 "stale" at once, never a retry.
 */
import { nodeItems } from '../model/node-status.js';
import { isDeepStrictEqual } from 'node:util';
import { accountSummary, decodeAccountDocument, encodeAccountDocument, newAccountDocument } from '../model/account.js';
import { checkSettingsChange, decodeSettings } from '../model/settings.js';
import { ConflictError, NotFoundError, StaleError } from '../model/errors.js';
import { isId, newId } from '../model/ids.js';
import { keys } from '../model/keys.js';
import { emptyRegistry, registryEntryChanged, withAccount, withoutAccount } from '../model/registry.js';
import type { ModelContext } from '../model/operations.js';
import type { AccountDocument, AccountSummary, Registry, Settings, TokenRecord } from '../model/schemas.js';
import type { Compare, Op, Store } from '../store/store.js';
import { newToken, tokenHash } from './auth.js';

/** How many times a write is retried after losing a compare-and-swap race before answering 409. */
export const MAX_ATTEMPTS = 8;

export interface Versioned<T> {
  value: T;
  /** modRevision of the key; 0 when the key does not exist (the value is then the default). */
  revision: number;
}

export interface WriteResult<R> {
  result: R;
  /** The account document's revision after the write (unchanged when the write changed nothing). */
  revision: number;
  changed: boolean;
}

function concurrencyConflict(): ConflictError {
  return new ConflictError(undefined, 'the account is being changed by others at the same time; try again');
}

/** `subject` names what moved and its verb: "the account is", "the settings are". */
function checkIfMatch(ifMatch: number[] | undefined, revision: number, subject: string): void {
  if (ifMatch !== undefined && !ifMatch.includes(revision)) {
    throw new StaleError(`${subject} at revision ${revision}, not ${ifMatch.join(' or ')} (If-Match); read it again`);
  }
}

export class Repo {
  constructor(private readonly store: Store) {}

  async account(id: string): Promise<Versioned<AccountDocument>> {
    const kv = isId(id) ? await this.store.get(keys.account(id)) : undefined;
    if (!kv) throw new NotFoundError(`no account with id ${id}`);
    return { value: decodeAccountDocument(kv.value), revision: kv.modRevision };
  }

  async registry(): Promise<Versioned<Registry>> {
    const kv = await this.store.get(keys.registry);
    return kv ? { value: JSON.parse(kv.value) as Registry, revision: kv.modRevision } : { value: emptyRegistry(), revision: 0 };
  }

  async settings(): Promise<Versioned<Settings>> {
    const kv = await this.store.get(keys.settings);
    return { value: decodeSettings(kv?.value), revision: kv?.modRevision ?? 0 };
  }

  /** Every account as {id, name}, by name. */
  async accountList(): Promise<Array<{ id: string; name: string }>> {
    const { value } = await this.registry();
    return Object.entries(value.names)
      .map(([name, id]) => ({ id, name }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Changes one account: `change` gets the current document and the context to validate against, and returns the
   * next document (or throws a ModelError). Retries on lost races unless `ifMatch` pins the revision. With
   * `dryRun`, validates and returns the result without writing.
   */
  async updateAccount<R>(
    id: string,
    ifMatch: number[] | undefined,
    change: (doc: AccountDocument, ctx: ModelContext) => { doc: AccountDocument; result: R },
    options: { dryRun?: boolean } = {},
  ): Promise<WriteResult<R>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const account = await this.account(id);
      checkIfMatch(ifMatch, account.revision, 'the account is');
      const [registry, settings] = await Promise.all([this.registry(), this.settings()]);
      const { doc, result } = change(account.value, { settings: settings.value, registry: registry.value, newId });
      if (options.dryRun || isDeepStrictEqual(doc, account.value)) {
        return { result, revision: account.revision, changed: false };
      }
      const compares: Compare[] = [{ key: keys.account(id), modRevision: account.revision }];
      const ops: Op[] = [{ type: 'put', key: keys.account(id), value: encodeAccountDocument(doc) }];
      if (registryEntryChanged(registry.value, doc)) {
        compares.push({ key: keys.registry, modRevision: registry.revision });
        ops.push({ type: 'put', key: keys.registry, value: JSON.stringify(withAccount(registry.value, doc)) });
      }
      const old = account.value;
      if (!isDeepStrictEqual(old.gre_tunnels, doc.gre_tunnels) || !isDeepStrictEqual(old.prefixes, doc.prefixes)) {
        compares.push({ key: keys.settings, modRevision: settings.revision });
      }
      const txn = await this.store.txn(compares, ops);
      if (txn.succeeded) return { result, revision: txn.revision, changed: true };
    }
    throw concurrencyConflict();
  }

  /** Creates an account and its token (the token is returned once and stored only hashed). */
  async createAccount(name: string): Promise<{ summary: AccountSummary; token: string; revision: number }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const registry = await this.registry();
      if (registry.value.names[name] !== undefined) {
        throw new ConflictError('name', `an account named "${name}" already exists`);
      }
      const doc = newAccountDocument(newId(), name);
      const token = newToken();
      const record: TokenRecord = { account_id: doc.id, created_at: doc.created_at };
      const txn = await this.store.txn(
        [
          { key: keys.registry, modRevision: registry.revision },
          { key: keys.account(doc.id), modRevision: 0 },
        ],
        [
          { type: 'put', key: keys.account(doc.id), value: encodeAccountDocument(doc) },
          { type: 'put', key: keys.registry, value: JSON.stringify(withAccount(registry.value, doc)) },
          { type: 'put', key: keys.token(tokenHash(token)), value: JSON.stringify(record) },
        ],
      );
      if (txn.succeeded) return { summary: accountSummary(doc), token, revision: txn.revision };
    }
    throw concurrencyConflict();
  }

  /** Deletes an account, its registry entry and every token of it, in one transaction. */
  async deleteAccount(id: string, ifMatch: number[] | undefined): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const account = await this.account(id);
      checkIfMatch(ifMatch, account.revision, 'the account is');
      const registry = await this.registry();
      const tokens = await this.store.list(keys.tokensPrefix);
      const ownTokens = tokens.items.filter((kv) => (JSON.parse(kv.value) as TokenRecord).account_id === id);
      const txn = await this.store.txn(
        [
          { key: keys.account(id), modRevision: account.revision },
          { key: keys.registry, modRevision: registry.revision },
          ...ownTokens.map((kv) => ({ key: kv.key, modRevision: kv.modRevision })),
        ],
        [
          { type: 'delete', key: keys.account(id) },
          { type: 'put', key: keys.registry, value: JSON.stringify(withoutAccount(registry.value, id)) },
          ...ownTokens.map((kv): Op => ({ type: 'delete', key: kv.key })),
        ],
      );
      if (txn.succeeded) return;
    }
    throw concurrencyConflict();
  }

  /**
   * Replaces the operator settings after checking no account breaks (a tunnel on a removed anycast endpoint, an
   * endpoint inside a customer prefix). Compares every account document and the registry: an account created or
   * changed meanwhile makes the write retry against it. `nextOf` may be a function of the stored settings.
   */
  async replaceSettings(nextOf: Settings | ((current: Settings) => Settings), ifMatch: number[] | undefined): Promise<WriteResult<Settings>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.settings();
      checkIfMatch(ifMatch, current.revision, 'the settings are');
      // A function sees the stored settings: it resolves what the input leaves to them (kept BGP passwords).
      const next = typeof nextOf === 'function' ? nextOf(current.value) : nextOf;
      if (current.revision > 0 && isDeepStrictEqual(current.value, next)) {
        return { result: next, revision: current.revision, changed: false };
      }
      const registry = await this.registry();
      const accounts = await this.store.list(keys.accountsPrefix);
      const docs = accounts.items.map((kv) => decodeAccountDocument(kv.value));
      checkSettingsChange(current.value, next, docs, registry.value);
      const txn = await this.store.txn(
        [
          { key: keys.settings, modRevision: current.revision },
          { key: keys.registry, modRevision: registry.revision },
          ...accounts.items.map((kv) => ({ key: kv.key, modRevision: kv.modRevision })),
        ],
        [{ type: 'put', key: keys.settings, value: JSON.stringify(next) }],
      );
      if (txn.succeeded) return { result: next, revision: txn.revision, changed: true };
    }
    throw new ConflictError(undefined, 'the accounts or settings are being changed at the same time; try again');
  }

  /** Agents' reported status, one item per node: `{id, ...status, alive, age_ms, stale}` (see nodeItems). */
  async nodes(): Promise<Array<Record<string, unknown>>> {
    const { items } = await this.store.list(keys.nodesPrefix);
    return nodeItems(items, Date.now());
  }
}
