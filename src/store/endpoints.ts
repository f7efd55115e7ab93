/**
 * etcd endpoint parsing, shared by the store spec parser (open.ts) and the etcd store, kept apart from etcd.ts
 * so parsing a spec does not load the gRPC client.
 */
import { StoreInputError } from './txn-validation.js';

/**
 * Normalises "host:port" or "http(s)://host:port" (host: a DNS name, IPv4, or [IPv6]) to "http(s)://host:port".
 * `field` names the input in the error message.
 */
export function parseEndpoint(text: unknown, field: string, defaultScheme: 'http' | 'https' = 'http'): string {
  if (typeof text !== 'string') throw new StoreInputError(`${field}: must be a string`);
  const m = /^(https?):\/\/(.*)$/.exec(text);
  const scheme = m ? m[1] : defaultScheme;
  const hostPort = m ? m[2]! : text;
  const hp = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(hostPort);
  if (!hp) throw new StoreInputError(`${field}: ${JSON.stringify(text)} is not host:port`);
  const port = Number(hp[2]);
  if (port < 1 || port > 65535) throw new StoreInputError(`${field}: port ${port} is out of range`);
  return `${scheme}://${hp[1]}:${port}`;
}
