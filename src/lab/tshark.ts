/**
 * tshark as an independent decoder (privileged tests, and the demo showing the GRE on the wire): capture in a netns
 * with a capture filter, validate checksums (tshark only does when asked), print chosen fields. Start the capture,
 * make the traffic, await `done`.
 *
 *   const cap = await tsharkCapture({ netns, dev: 'uplink', filter: 'ip proto 47', fields: ['ip.src', 'gre.proto'] });
 *   …send…
 *   const rows = await cap.done;   // one string[] per packet
 */
import { spawn } from 'node:child_process';

export interface TsharkCaptureOptions {
  netns: string;
  dev: string;
  /** A pcap capture filter (`ip proto 47`, `tcp port 8080`). */
  filter: string;
  /** Fields to print (`-e`), e.g. ip.src; repeated layers (outer and inner IP) come comma-separated. */
  fields: string[];
  /** Stop after this many packets (default 1). */
  count?: number;
  /** Give up after this many seconds (default 15): `done` rejects when fewer than `count` packets came. */
  timeoutS?: number;
}

export interface TsharkCapture {
  /** One row per captured packet: the fields in order. */
  done: Promise<string[][]>;
  /** Ends the capture early (done then rejects unless enough packets came). */
  stop(): void;
}

/** Resolves once tshark is capturing. */
export async function tsharkCapture(o: TsharkCaptureOptions): Promise<TsharkCapture> {
  const count = o.count ?? 1;
  const args = ['netns', 'exec', o.netns, 'tshark', '-i', o.dev, '-f', o.filter, '-c', String(count), '-a', `duration:${o.timeoutS ?? 15}`, '-l', '-n'];
  for (const proto of ['ip', 'tcp', 'udp']) args.push('-o', `${proto}.check_checksum:TRUE`);
  args.push('-T', 'fields', '-E', 'separator=|', ...o.fields.flatMap((f) => ['-e', f]));
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      // "Capturing on" comes before dumpcap really captures (packets sent right then were missed, 6 in 20);
      // "Capture started" comes once it does. Fall back to a pause in case a tshark build never prints it.
      if (err.includes('Capture started')) resolve();
      else if (err.includes('Capturing on')) setTimeout(resolve, 1000).unref();
    });
    child.on('exit', (c) => reject(new Error(`tshark exited (${c}) before capturing: ${err}`)));
  });
  const done = new Promise<string[][]>((resolve, reject) =>
    child.on('exit', (c) => {
      const rows = out
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('|'));
      if (c === 0 && rows.length >= count) resolve(rows);
      else reject(new Error(`tshark on ${o.dev} (${o.filter}) got ${rows.length} of ${count} packets (exit ${c}): ${err.trim()}\n${out}`));
    }),
  );
  done.catch(() => {}); // a caller that fails before awaiting must not leave an unhandled rejection
  await ready;
  return { done, stop: () => child.kill('SIGINT') };
}
