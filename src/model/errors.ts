/**
 * Errors of the model. Each carries a stable `code` that the API maps to an HTTP status (src/api/errors.ts), and
 * the offending `field` as a path into the input ("gre_tunnels[0].mtu"), so a user can find it.
 */

export type ModelErrorCode = 'invalid' | 'conflict' | 'not_found' | 'stale';

export class ModelError extends Error {
  override name = 'ModelError';
  /** The reason alone, without the field name. */
  readonly reason: string;
  constructor(
    readonly code: ModelErrorCode,
    readonly field: string | undefined,
    reason: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
    this.reason = reason;
  }
}

/** Bad input: a wrong type, a value out of range, a reference to something that does not exist. */
export class ValidationError extends ModelError {
  override name = 'ValidationError';
  constructor(field: string | undefined, reason: string) {
    super('invalid', field, reason);
  }
}

/** Valid on its own but clashes with what is stored: overlap, duplicate, or still in use. */
export class ConflictError extends ModelError {
  override name = 'ConflictError';
  constructor(field: string | undefined, reason: string) {
    super('conflict', field, reason);
  }
}

export class NotFoundError extends ModelError {
  override name = 'NotFoundError';
  constructor(reason: string) {
    super('not_found', undefined, reason);
  }
}

/** The caller's If-Match revision is not the stored one. */
export class StaleError extends ModelError {
  override name = 'StaleError';
  constructor(reason: string) {
    super('stale', undefined, reason);
  }
}

/** Joins a base path and a child: ("gre_tunnels[0]", "mtu") → "gre_tunnels[0].mtu"; ("", "mtu") → "mtu". */
export function joinField(base: string, child: string | number): string {
  if (typeof child === 'number') return `${base}[${child}]`;
  if (child === '') return base;
  return base ? `${base}.${child}` : child;
}
