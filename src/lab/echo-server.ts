/**
 * The small server the lab runs on each customer host (one process per host, inside its namespace):
 *   TCP: answers one line "<label> <port>\n", then echoes whatever it receives;
 *   UDP: echoes each datagram back to its sender.
 * So a test or a person at a client sees at once which host and port it reached, through which path.
 * Sockets are dual-stack (`::`, IPv6-only off): one socket per port answers IPv4 and IPv6 alike.
 *
 * argv: --label acme-ftp --listen tcp/21 [--listen udp/53 …]. Prints `ready <label> <listens>` once every socket
 * is bound (the lab waits for that line in the log), and exits on SIGTERM/SIGINT.
 */
import dgram from 'node:dgram';
import net from 'node:net';

interface Listen {
  proto: 'tcp' | 'udp';
  port: number;
}

function parseArgs(argv: readonly string[]): { label: string; listens: Listen[] } {
  let label = '';
  const listens: Listen[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--label' && value && /^[a-z0-9-]{1,64}$/.test(value)) label = value;
    else if (flag === '--listen' && value) {
      const m = /^(tcp|udp)\/(\d{1,5})$/.exec(value);
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65535) throw new Error(`--listen ${value}: expected tcp/PORT or udp/PORT`);
      listens.push({ proto: m[1] as Listen['proto'], port });
    } else throw new Error(`unexpected argument ${flag ?? ''} ${value ?? ''}`);
  }
  if (!label) throw new Error('--label is required ([a-z0-9-])');
  return { label, listens };
}

function listenTcp(label: string, port: number): Promise<net.Server> {
  const server = net.createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.write(`${label} ${port}\n`);
    sock.pipe(sock);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => resolve(server));
  });
}

function listenUdp(port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '::', () => resolve(sock));
  });
}

async function main(): Promise<void> {
  const { label, listens } = parseArgs(process.argv.slice(2));
  const closers: (() => void)[] = [];
  for (const l of listens) {
    if (l.proto === 'tcp') {
      const s = await listenTcp(label, l.port);
      closers.push(() => s.close());
    } else {
      const s = await listenUdp(l.port);
      closers.push(() => s.close());
    }
  }
  const stop = () => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`ready ${label} ${listens.map((l) => `${l.proto}/${l.port}`).join(' ')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`echo-server: ${(e as Error).message}\n`);
  process.exit(1);
});
