/**
 * Reading one JSON or YAML value from a file (or `-` for stdin) for verbs that send a structured body, e.g.
 * `opentransit node config set NODE -f node.yaml`. YAML is a superset of JSON; syntax errors name file:line:col.
 * The contents are validated by the API.
 */
import { parseDocument } from 'yaml';
import type { CliIo } from './context.js';
import { UsageError } from './errors.js';

export async function readDataFile(io: CliIo, file: string): Promise<unknown> {
  const source = file === '-' ? 'stdin' : file;
  let text: string;
  try {
    text = file === '-' ? await io.readStdin() : await io.readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read ${source}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    throw new UsageError(`${source}${pos ? `:${pos.line}:${pos.col}` : ''}: ${(error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) throw new UsageError(`${source}: is empty`);
  return value;
}
