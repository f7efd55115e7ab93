/**
 * Reading the declarative files of `opentransit apply -f FILE`: one YAML document per account (several may be
 * separated by `---`, applied in order). Syntax errors name the file, line and column, because a YAML mistake is
 * the commonest failure of a declarative tool and "line 14, column 7" is what the user needs to fix it.
 * The contents are validated by the API (which knows every rule); here we only check what we need to route
 * the document: that it is a mapping naming its account.
 */
import { parseAllDocuments } from 'yaml';
import { UsageError } from './errors.js';

export interface ConfigDocument {
  /** 1-based position of the document in the file. */
  index: number;
  /** 1-based line where the document starts. */
  line: number;
  /** The account's name, from the document's `account` field. */
  account: string;
  /** The whole document as sent to `PUT /v1/accounts/{id}/config`. */
  body: Record<string, unknown>;
}

/** Parses every non-empty document; throws UsageError naming `source:line:col` on the first problem. */
export function parseConfigDocuments(text: string, source: string): ConfigDocument[] {
  const lineOf = lineIndex(text);
  const docs = parseAllDocuments(text);
  // parseAllDocuments returns an EmptyStream (not an array) for input without any document.
  if (!Array.isArray(docs)) throw new UsageError(`${source}: no YAML document found`);
  const out: ConfigDocument[] = [];
  docs.forEach((doc, i) => {
    const index = i + 1;
    const error = doc.errors[0];
    if (error) {
      const pos = error.linePos?.[0];
      const where = pos ? `${source}:${pos.line}:${pos.col}` : `${source}: document ${index}`;
      throw new UsageError(`${where}: ${firstSentence(error.message)}`);
    }
    const startLine = lineOf(doc.contents?.range?.[0] ?? doc.range[0]);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document, e.g. after a trailing `---`
    const where = `${source}:${startLine}`;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new UsageError(`${where}: document ${index} must be a mapping with "account: NAME" and the account's objects`);
    }
    const body = value as Record<string, unknown>;
    if (typeof body.account !== 'string' || body.account.trim() === '') {
      throw new UsageError(`${where}: document ${index} needs "account: NAME" naming the account it configures`, 'account');
    }
    out.push({ index, line: startLine, account: body.account, body });
  });
  if (out.length === 0) throw new UsageError(`${source}: no YAML document found`);
  return out;
}

/** yaml's messages repeat the position and add a code frame; our prefix already says where. */
function firstSentence(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/** Maps a character offset to its 1-based line number. */
function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}
