/**
 * The CLI's only way to the control plane: a small JSON-over-HTTP client for the OpenTransit API using Node's
 * global fetch. It turns the API's error envelope into ApiError and network failures into ConnectionError, so
 * every verb can simply `await` and let the top level print one clear line.
 */
import { ApiError, ConnectionError, UsageError } from './errors.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  baseUrl: string;
  /** Bearer token (operator or account); omitted when undefined. */
  token?: string | undefined;
  /** Injected in tests; Node's global fetch otherwise. */
  fetch?: FetchLike;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  etag: string | undefined;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly fetchFn: FetchLike;

  constructor(opts: ApiClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.token = opts.token;
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await this.fetchFn(url.toString(), { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    } catch (err) {
      throw new ConnectionError(this.baseUrl, describeNetworkError(err));
    }
    const text = await res.text();
    const body = parseJson(text);
    if (!res.ok) throw toApiError(res, body, this.token === undefined);
    return { status: res.status, body: body as T, etag: res.headers.get('etag') ?? undefined };
  }

  async get<T = unknown>(path: string, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>('GET', path, opts)).body;
  }
  async post<T = unknown>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>('POST', path, { ...opts, body })).body;
  }
  async put<T = unknown>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>('PUT', path, { ...opts, body })).body;
  }
  async patch<T = unknown>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>('PATCH', path, { ...opts, body })).body;
  }
  async delete(path: string, opts?: RequestOptions): Promise<void> {
    await this.request('DELETE', path, opts);
  }
}

/** Path segment escaping for ids and names taken from the command line. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`API URL "${raw}" is not a valid URL (expected e.g. http://127.0.0.1:8080)`, 'api');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`API URL "${raw}" must use http or https`, 'api');
  }
  if (url.search || url.hash) throw new UsageError(`API URL "${raw}" must not have a query or fragment`, 'api');
  return url.toString().replace(/\/+$/, '');
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toApiError(res: Response, body: unknown, noToken: boolean): ApiError {
  const envelope = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
  const code = typeof envelope?.code === 'string' ? envelope.code : `http_${res.status}`;
  let message = typeof envelope?.message === 'string'
    ? envelope.message
    : `HTTP ${res.status} ${res.statusText}`.trim();
  // The commonest 401 is simply a forgotten token: say how to pass one.
  if (res.status === 401 && noToken) message += ' (no token given: use --token or OPENTRANSIT_TOKEN)';
  const field = typeof envelope?.field === 'string' && envelope.field !== '' ? envelope.field : undefined;
  return new ApiError(res.status, code, message, field);
}

/** fetch hides the socket error in `cause` (sometimes an AggregateError of one per address). */
function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause as
    | { code?: string; message?: string; errors?: Array<{ code?: string }> }
    | undefined;
  const code = cause?.code ?? cause?.errors?.find((e) => e.code)?.code;
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host not found';
    case 'ECONNRESET': return 'connection reset';
    case 'ETIMEDOUT': case 'UND_ERR_CONNECT_TIMEOUT': return 'connection timed out';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host unreachable';
    default: break;
  }
  const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
  return code ? `${code}: ${message}` : message;
}
