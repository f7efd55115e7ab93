/**
 * The lab's API on an etcd store: `node api-process.js --listen HOST:PORT --data-dir DIR --store SPEC`.
 * `opentransit api` opens only the embedded store in its data directory (it has no --store option yet), so for
 * `store: etcd` the lab runs the same server (startApiServer) on a store opened from its spec. The data directory
 * still holds what the server keeps there besides the store (the operator token's hash, when not given in the
 * environment). Prints the server's "listening on URL" line, which the lab waits for.
 */
import { startApiServer } from '../api/server.js';
import { openStore } from '../store/open.js';

function parseArgs(argv: readonly string[]): { listen: string; dataDir: string; store: string } {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if ((flag === '--listen' || flag === '--data-dir' || flag === '--store') && value !== undefined) o[flag.slice(2)] = value;
    else throw new Error(`unexpected argument ${flag ?? ''}; usage: --listen HOST:PORT --data-dir DIR --store SPEC`);
  }
  for (const k of ['listen', 'data-dir', 'store']) if (!o[k]) throw new Error(`--${k} is required`);
  return { listen: o.listen!, dataDir: o['data-dir']!, store: o.store! };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const store = await openStore(args.store);
  // The server does not close a store it was given: exiting (on SIGTERM, after the server closed) does.
  await startApiServer({ listen: args.listen, dataDir: args.dataDir, store });
}

main().catch((e: unknown) => {
  process.stderr.write(`lab api: ${(e as Error).message}\n`);
  process.exit(1);
});
