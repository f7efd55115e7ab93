/**
 * The account document: everything about one tenant in one JSON value under keys.account(id). Agents consume it
 * (decodeAccountDocument); the API changes it only through the pure functions of operations.ts and config.ts.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DEFAULT_FIREWALL } from './firewall.js';
import { AccountDocument, type AccountSummary, type ConfigDocument } from './schemas.js';
import { pointerToField } from './shape.js';

export function newAccountDocument(id: string, name: string, createdAt: Date = new Date()): AccountDocument {
  return {
    id,
    name,
    created_at: createdAt.toISOString(),
    prefixes: [],
    gre_tunnels: [],
    routes: [],
    firewall: structuredClone(DEFAULT_FIREWALL),
  };
}

export function accountSummary(doc: AccountDocument): AccountSummary {
  return { id: doc.id, name: doc.name, created_at: doc.created_at };
}

/** The declarative view of an account (`GET /config`): ids and every default included, so it round-trips. */
export function accountToConfig(doc: AccountDocument): ConfigDocument {
  return {
    account: doc.name,
    prefixes: doc.prefixes,
    gre_tunnels: doc.gre_tunnels,
    routes: doc.routes,
    firewall: doc.firewall,
  };
}

const accountDocumentCheck = TypeCompiler.Compile(AccountDocument);

/** Thrown when a stored account document is not what this version writes (corruption or a version skew). */
export class AccountDocumentError extends Error {
  override name = 'AccountDocumentError';
}

/**
 * Parses a stored account document (the JSON text of keys.account(id)) and checks its shape; throws
 * AccountDocumentError naming the first bad field. Values are trusted to be normalised (the API wrote them).
 */
export function decodeAccountDocument(text: string): AccountDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AccountDocumentError(`account document is not JSON: ${(err as Error).message}`);
  }
  if (!accountDocumentCheck.Check(value)) {
    const first = accountDocumentCheck.Errors(value).First();
    throw new AccountDocumentError(
      `account document: ${first ? `${pointerToField(first.path) || '(root)'}: ${first.message}` : 'invalid'}`,
    );
  }
  return value;
}

export function encodeAccountDocument(doc: AccountDocument): string {
  return JSON.stringify(doc);
}
