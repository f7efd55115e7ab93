/**
 * Structural validation against the TypeBox schemas: types, ranges, required and unknown fields. Returns a copy
 * with defaults filled in, or throws a ValidationError naming the first offending field as a path
 * ("gre_tunnels[0].mtu") and the reason in words.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { joinField, ValidationError } from './errors.js';

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerOf(schema: TSchema): TypeCheck<TSchema> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c;
}

/** "/gre_tunnels/0/mtu" → "gre_tunnels[0].mtu" (JSON pointer, RFC 6901 escapes). */
export function pointerToField(pointer: string, base = ''): string {
  if (pointer === '' || pointer === '/') return base;
  let field = base;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field = /^\d+$/.test(part) ? joinField(field, Number(part)) : joinField(field, part);
  }
  return field;
}

function typeName(schema: TSchema): string {
  const t = (schema as { type?: unknown }).type;
  switch (t) {
    case 'integer':
      return 'an integer';
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    default:
      return typeof t === 'string' ? `a ${t}` : 'a value of the right type';
  }
}

function describe(error: ValueError): string {
  const s = error.schema as Record<string, unknown>;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field';
    case ValueErrorType.ObjectMinProperties:
      return 'must have at least one field';
    case ValueErrorType.Union: {
      const options = ((s.anyOf as Array<{ const?: unknown }> | undefined) ?? []).map((o) => o.const);
      if (options.length > 0 && options.every((o) => typeof o === 'string')) {
        return `must be one of: ${options.join(', ')}`;
      }
      return 'has the wrong type';
    }
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(s.const)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${String(s.maximum)}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${String(s.minimum)}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(s.maxLength)} characters long`;
    case ValueErrorType.StringMinLength:
      return s.minLength === 1 ? 'must not be empty' : `must be at least ${String(s.minLength)} characters long`;
    case ValueErrorType.StringPattern: {
      // Our keyword for the reason a pattern states (an OpenAPI extension, hence "x-"); `errorMessage` also works.
      const reason = s['x-error-message'] ?? s.errorMessage;
      return typeof reason === 'string' ? reason : `must match ${String(s.pattern)}`;
    }
    case ValueErrorType.ArrayMaxItems:
      return s.maxItems === 0 ? 'must be empty' : `must have at most ${String(s.maxItems)} items`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${String(s.minItems)} items`;
    case ValueErrorType.Integer:
    case ValueErrorType.Number:
    case ValueErrorType.String:
    case ValueErrorType.Boolean:
    case ValueErrorType.Object:
    case ValueErrorType.Array:
      if (error.value === undefined) return `is missing (expected ${typeName(error.schema)})`;
      return `must be ${typeName(error.schema)}, not ${describeValue(error.value)}`;
    default:
      return error.message;
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : `the number ${v}`;
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/**
 * Validates `input` against `schema` and returns a copy with defaults applied; throws ValidationError whose field
 * is `base` joined with the path of the first error.
 */
export function checkShape<T extends TSchema>(schema: T, input: unknown, base = ''): Static<T> {
  let value: unknown;
  try {
    value = Value.Default(schema, structuredClone(input));
  } catch {
    throw new ValidationError(base || undefined, 'is not plain JSON data');
  }
  const checker = checkerOf(schema);
  if (checker.Check(value)) return value as Static<T>;
  const first = checker.Errors(value).First();
  if (!first) throw new ValidationError(base || undefined, 'is invalid');
  const field = pointerToField(first.path, base);
  return fail(field, describe(first));
}

function fail(field: string, reason: string): never {
  // An error at the root has no field to name: say what it is about.
  throw new ValidationError(field || undefined, field ? reason : `the input ${reason}`);
}
