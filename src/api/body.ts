/**
 * Request body parsers: JSON (application/json), and YAML (application/yaml, application/x-yaml, text/yaml) so the
 * declarative document can be sent as written. Both refuse prototype-poisoning keys and report syntax errors with
 * their position.
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ApiError } from './errors.js';

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

function poisoned(key: string, value: unknown): boolean {
  return key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null && 'prototype' in value);
}

function forbidden(key: string): ApiError {
  return new ApiError('invalid_json', `the request body has a forbidden key "${key}"`);
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (poisoned(key, value)) throw forbidden(key);
      return value;
    });
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function checkKeys(value: unknown): void {
  if (Array.isArray(value)) {
    value.forEach(checkKeys);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (poisoned(k, v)) throw forbidden(k);
      checkKeys(v);
    }
  }
}

export function parseYamlBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    // One document; the default (YAML 1.2 core) schema only yields JSON types; aliases are capped (no "billion laughs").
    value = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      const reason = (err.message.split('\n')[0] ?? err.message).replace(/ at line \d+, column \d+:?$/, '');
      throw new ApiError('invalid_yaml', `the request body is not valid YAML${where}: ${reason}`);
    }
    throw new ApiError('invalid_yaml', `the request body is not valid YAML: ${(err as Error).message}`);
  }
  checkKeys(value);
  return value;
}
