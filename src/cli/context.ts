/**
 * What every client verb needs: where the API is, which token to present, how to print — resolved from the
 * command line first, then the environment, then defaults — and the I/O the verb writes to (injected so the
 * verbs can be exercised in-process by tests).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ApiClient, type FetchLike } from './client.js';
import { UsageError } from './errors.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
export const ENV_API = 'OPENTRANSIT_API';
export const ENV_TOKEN = 'OPENTRANSIT_TOKEN';

export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  readFile: (path: string) => Promise<string>;
  readStdin: () => Promise<string>;
  /** Node's global fetch unless a test injects one. */
  fetch?: FetchLike;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    readFile: (path) => readFile(path, 'utf8'),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** The program-wide options as commander parsed them (absent when not given). */
export interface GlobalFlags {
  api?: string;
  token?: string;
  output?: string;
}

export interface Settings {
  apiUrl: string;
  token: string | undefined;
  output: OutputFormat;
}

/** Flag beats environment beats default; an empty environment variable counts as unset. */
export function resolveSettings(flags: GlobalFlags, env: CliIo['env']): Settings {
  const fromEnv = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const output = flags.output ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`output format "${output}" is not one of ${OUTPUT_FORMATS.join(', ')}`, 'output');
  }
  return {
    apiUrl: flags.api ?? fromEnv(ENV_API) ?? DEFAULT_API_URL,
    token: flags.token ?? fromEnv(ENV_TOKEN),
    output: output as OutputFormat,
  };
}

/** Everything a verb's action needs, built from the command that runs. */
export interface VerbContext {
  client: ApiClient;
  settings: Settings;
  io: CliIo;
  /** Prints a value as JSON (for `-o json`), pretty and newline-terminated. */
  printJson: (value: unknown) => void;
}

export function verbContext(cmd: Command, io: CliIo): VerbContext {
  const settings = resolveSettings(cmd.optsWithGlobals<GlobalFlags>(), io.env);
  const client = new ApiClient({
    baseUrl: settings.apiUrl,
    token: settings.token,
    ...(io.fetch ? { fetch: io.fetch } : {}),
  });
  return { client, settings, io, printJson: (value) => io.stdout(JSON.stringify(value, null, 2) + '\n') };
}
