/** Customer prefixes: the networks OpenTransit announces and protects for an account. */
import { ValidationError, joinField } from './errors.js';
import { formatCidr, IpFormatError, parseCidr, unroutableRangeOverlapping, type Cidr } from './ip.js';
import { PrefixInput, PrefixPatch } from './schemas.js';
import { checkShape } from './shape.js';

/** Allowed prefix lengths: shorter than /8 or /16 is no customer's; longer than a host is not a network. */
export const PREFIX_LENGTHS = { 4: { min: 8, max: 32 }, 6: { min: 16, max: 128 } } as const;

/** Parses text as a network, throwing ValidationError(field) with the reason (host bits, syntax). */
export function cidrField(text: string, field: string): Cidr {
  try {
    return parseCidr(text);
  } catch (err) {
    if (err instanceof IpFormatError) throw new ValidationError(field, err.message);
    throw err;
  }
}

/**
 * Validates and normalises a customer prefix: lengths per PREFIX_LENGTHS, host bits zero, and no overlap with a
 * range that is never routed (loopback, multicast, link-local, "this network", reserved). Private, shared and
 * documentation space is accepted: labs and private deployments use it.
 */
export function normalisePrefixCidr(text: string, field: string): string {
  const c = cidrField(text, field);
  const { min, max } = PREFIX_LENGTHS[c.family];
  if (c.length < min || c.length > max) {
    throw new ValidationError(field, `/${c.length} is outside the allowed IPv${c.family} prefix lengths /${min}–/${max}`);
  }
  const bad = unroutableRangeOverlapping(c);
  if (bad) throw new ValidationError(field, `${formatCidr(c)} overlaps ${bad.text}, ${bad.name}, which is never routed`);
  return formatCidr(c);
}

/** A prefix as written by a user, validated on its own (cross-object rules live in consistency.ts). */
export interface PrefixDraft {
  id?: string;
  cidr: string;
  advertised: boolean;
  description: string;
}

export function parsePrefixInput(input: unknown, base = ''): PrefixDraft {
  const p = checkShape(PrefixInput, input, base);
  return {
    ...(p.id !== undefined ? { id: p.id } : {}),
    cidr: normalisePrefixCidr(p.cidr, joinField(base, 'cidr')),
    advertised: p.advertised ?? false,
    description: p.description ?? '',
  };
}

export function parsePrefixPatch(input: unknown, base = ''): PrefixPatch {
  return checkShape(PrefixPatch, input, base);
}
