/**
 * The one error parseExpression throws. `position` is a 0-based offset into the text given to
 * parseExpression (a JavaScript string index, i.e. UTF-16 code units), pointing at the start of the
 * offending token; `expected` lists what would have been accepted there.
 */
export class ExpressionError extends Error {
  override name = 'ExpressionError';

  constructor(
    readonly position: number,
    readonly expected: string[],
    /** The offending text as quoted in the message, or undefined at the end of input. */
    readonly found: string | undefined,
    /** Extra advice appended to the message (e.g. "CIDRs are only allowed inside sets"). */
    readonly hint?: string,
  ) {
    super(
      `at ${position}: expected ${joinAlternatives(expected)}, found ${
        found === undefined ? 'end of input' : JSON.stringify(found)
      }${hint ? ` (${hint})` : ''}`,
    );
  }
}

function joinAlternatives(items: string[]): string {
  if (items.length <= 1) return items[0] ?? 'nothing';
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}
