/**
 * Errors the CLI prints for people. Every failure ends as one `error: …` line on stderr and a non-zero exit,
 * whether it came from the API, the network, a YAML file or a bad argument.
 */

/** A failure described by the API: `{"error": {code, message, field}}` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The API could not be reached at all (refused, unknown host, reset…). */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the OpenTransit API at ${url} (${reason}); is \`opentransit api\` running there? `
      + 'Set --api URL or OPENTRANSIT_API to point elsewhere');
    this.name = 'ConnectionError';
  }
}

/** A mistake in what the user gave us (arguments, files) — found before or without the API. */
export class UsageError extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The one line printed for a failure: `error: <message> (field: <field>)`. */
export function formatError(err: unknown): string {
  if (err instanceof ApiError || err instanceof UsageError) {
    if (!err.field) return `error: ${err.message}`;
    // The API's sentences start with the field ("prefixes[0].cidr: must be…"); it is said once, at the end.
    const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    return `error: ${message} (field: ${err.field})`;
  }
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}
