import { randomBytes } from 'node:crypto';

/** Object ids are random 32 lowercase hex digits, like Cloudflare's. */
export const ID_PATTERN = '^[0-9a-f]{32}$';
const ID_RE = new RegExp(ID_PATTERN);

export function newId(): string {
  return randomBytes(16).toString('hex');
}

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_RE.test(value);
}
