/**
 * BIRD's control socket, spoken directly (what `birdc -s SOCK <command>` does, without a spawn per question).
 *
 * The protocol (BIRD 2 sysdep/unix cli): on connect the daemon greets with `0001 BIRD 2.0.12 ready.`; a command
 * is one line; the reply is lines `DDDD-text` (more follow), ` text` (continues the previous code) and a last line
 * `DDDD text`. Codes: 0xxx done, 1xxx table rows, 2xxx table headings, 8xxx run-time errors, 9xxx parse errors.
 *
 * Every call has a deadline: a BIRD whose event loop hangs still accepts connections (the kernel queues them) but
 * never greets nor replies, and the deadline is how health checks tell "hung" from "busy".
 */
import { connect } from 'node:net';
import { KernelInputError } from './exec.js';

export const BIRD_CONTROL_TIMEOUT_MS = 5_000;

export type BirdErrorKind =
  /** No BIRD listening on the socket (missing file, connection refused). */
  | 'unreachable'
  /** No greeting or no complete reply before the deadline. */
  | 'timeout'
  /** BIRD answered with an error code (8xxx/9xxx). */
  | 'reply'
  /** The connection closed before the reply ended. */
  | 'closed'
  /** `bird -p` refused a config. */
  | 'config'
  /** The daemon did not start, or exited. */
  | 'process';

export class BirdError extends Error {
  override readonly name = 'BirdError';
  constructor(
    readonly kind: BirdErrorKind,
    message: string,
    /** For 'reply': BIRD's numeric reply code. */
    readonly replyCode?: number,
  ) {
    super(message);
  }
}

export interface BirdReplyLine {
  code: number;
  text: string;
}

export interface BirdReply {
  /** Every line with its code (continuation lines carry the code of the line they continue). */
  lines: BirdReplyLine[];
  /** Code of the last line. */
  code: number;
  /** Text of the last line. */
  message: string;
}

/** Commands we send are fixed words plus validated names: refuse anything that could start a second command. */
function checkCommand(command: string): string {
  if (typeof command !== 'string' || command.length === 0 || command.length > 1000 || !/^[A-Za-z0-9_ .:/-]+$/.test(command))
    throw new KernelInputError('command', `must be 1–1000 characters of [A-Za-z0-9_ .:/-] (one command), got ${JSON.stringify(command)}`);
  return command;
}

/**
 * Incremental reply parser: feed it text, it says when the reply is complete. Exported for unit tests.
 * `greeting` true: the first complete reply expected is the 0001 greeting.
 */
export class BirdReplyParser {
  private buffer = '';
  private lines: BirdReplyLine[] = [];
  private lastCode = 0;

  /** Adds text; returns the completed reply, or undefined while more is expected. */
  push(chunk: string): BirdReply | undefined {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const raw = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d{4})([ -])(.*)$/.exec(raw);
      if (m) {
        this.lastCode = Number(m[1]);
        this.lines.push({ code: this.lastCode, text: m[3]! });
        if (m[2] === ' ') {
          const reply: BirdReply = { lines: this.lines, code: this.lastCode, message: m[3]! };
          this.lines = [];
          return reply;
        }
      } else if (raw.startsWith(' ')) {
        this.lines.push({ code: this.lastCode, text: raw.slice(1) });
      } else if (raw.startsWith('+')) {
        // Asynchronous messages (`echo` subscriptions): not part of a reply.
      } else {
        this.lines.push({ code: this.lastCode, text: raw });
      }
    }
    return undefined;
  }

  /** Text left after the last complete reply (should be empty between commands). */
  get pending(): string {
    return this.buffer;
  }
}

export interface BirdCommandOptions {
  timeoutMs?: number;
  /** Reply codes ≥ 8000 resolve instead of rejecting (the caller inspects them). */
  allowErrors?: boolean;
}

/**
 * Twin: `birdc -s SOCKET COMMAND`. Connects, waits for the greeting, sends one command and returns its reply.
 * Rejects with BirdError: 'unreachable' (nothing listening), 'timeout', 'closed', or 'reply' for codes ≥ 8000.
 * `down` is special: BIRD may close the socket right after (or instead of) its reply; that counts as success.
 */
export function birdCommand(socketPath: string, command: string, opts: BirdCommandOptions = {}): Promise<BirdReply> {
  let cmd: string;
  try {
    cmd = checkCommand(command);
  } catch (e) {
    return Promise.reject(e);
  }
  const timeoutMs = opts.timeoutMs ?? BIRD_CONTROL_TIMEOUT_MS;
  return new Promise<BirdReply>((resolve, reject) => {
    const parser = new BirdReplyParser();
    let greeted = false;
    let settled = false;
    const sock = connect({ path: socketPath });
    const finish = (err: BirdError | undefined, reply?: BirdReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => finish(new BirdError('timeout', `BIRD at ${socketPath} did not ${greeted ? `answer "${cmd}"` : 'greet'} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const unreachable = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK';
      finish(new BirdError(unreachable ? 'unreachable' : 'closed', `BIRD control socket ${socketPath}: ${e.message}`));
    });
    sock.on('close', () => {
      if (greeted && cmd === 'down') finish(undefined, { lines: [], code: 7, message: 'Shutdown requested (connection closed)' });
      finish(new BirdError('closed', `BIRD at ${socketPath} closed the connection before answering "${cmd}"`));
    });
    sock.on('data', (chunk: string) => {
      let reply: BirdReply | undefined;
      while ((reply = parser.push(chunk)) !== undefined) {
        chunk = '';
        if (!greeted) {
          greeted = true;
          if (reply.code !== 1) return finish(new BirdError('reply', `unexpected greeting from BIRD: ${reply.message}`, reply.code));
          sock.write(`${cmd}\n`);
          continue;
        }
        if (reply.code >= 8000 && !opts.allowErrors) return finish(new BirdError('reply', `BIRD refused "${cmd}": ${reply.message}`, reply.code));
        return finish(undefined, reply);
      }
    });
  });
}
