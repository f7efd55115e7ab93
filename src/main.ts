/**
 * Composition root of the `opentransit` command (bin/opentransit imports the compiled dist/src/main.js).
 *
 * Two kinds of verbs:
 *  - client verbs (apply, get, delete, account, status) come from src/cli and talk to the HTTP API only;
 *  - daemon verbs (api; later agent, plan, lab, demo, bench) are registered below, but each one's
 *    implementation lives in its own folder and is imported only when that verb runs. So `opentransit get`
 *    never loads fastify, lmdb or the kernel layer, and src/cli never depends on them.
 */
import { Command } from 'commander';
import { processIo, registerClientCommands, runProgram, type CliIo } from './cli/index.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('opentransit')
    .description('OpenTransit: self-hosted anycast DoS protection, customer firewalls and GRE delivery')
    .showHelpAfterError('(run with --help for usage)')
    // Every verb's help lists --api, --token and -o too (set before the verbs exist, so they inherit it).
    .configureHelp({ showGlobalOptions: true });
  registerClientCommands(program, io);
  registerDaemonCommands(program);
  return program;
}

/**
 * Daemon verbs. The pattern for adding one (agent, plan, lab, demo, bench): declare its options here and, in
 * the action, `await import('./<folder>/<module>.js')` and call its start function with the parsed options.
 * Keep the import inside the action: that is what keeps the other verbs fast and free of its dependencies.
 */
function registerDaemonCommands(program: Command): void {
  program
    .command('api')
    .description('run the HTTP API server (operator token: OPENTRANSIT_OPERATOR_TOKEN, else one is generated and printed once)')
    .option('--listen <host:port>', 'address and port to listen on (port 0 picks a free one)', '127.0.0.1:8080')
    .option('--data-dir <dir>', 'directory of the embedded store (and of the operator token hash)', '/var/lib/opentransit')
    .option('--store <spec>', 'lmdb:DIR or etcd://host:port[,host:port…] (default: the embedded store in --data-dir)')
    .action(async (opts: { listen: string; dataDir: string; store?: string }) => {
      const { startApiServer } = await import('./api/server.js');
      // A store given by spec is opened here; the server does not close a store it was given, the process exit does.
      const store = opts.store === undefined ? undefined : await (await import('./store/open.js')).openStore(opts.store);
      // Prints its URL (and a generated operator token, if any); the open server keeps the process alive.
      await startApiServer({ listen: opts.listen, dataDir: opts.dataDir, ...(store ? { store } : {}) });
    });

  const nodeOptions = (cmd: Command) =>
    cmd
      .requiredOption('--node-id <id>', 'this edge server\'s id (names its status and kernel objects)')
      .requiredOption('--host-netns <ns>', 'the network namespace that stands for this server (never implied)')
      .requiredOption('--uplink <if>', 'the uplink interface in the host netns')
      .requiredOption('--store <spec>', 'lmdb:DIR (the API\'s data dir) or etcd://host:port[,host:port…]')
      .option('--data-dir <dir>', "the agent's own directory (local replica)")
      .option('--netns-prefix <prefix>', 'prefix of the customer namespaces this agent makes', 'ot-')
      .option('--fast-path <on|off>', 'route customer traffic in eBPF (bpf_fib_lookup), skipping the host netns stack and its netfilter hooks; off if the host netns has netfilter rules or XFRM policies of its own', 'on');

  nodeOptions(program.command('agent').description('run the edge agent: reconcile the kernel to the desired state, continuously'))
    .option('--resync-ms <ms>', 'resync period of the shared state (host netns, data plane, BGP); every account too with --kernel-watch off', (v) => Number(v), 5000)
    .option('--kernel-watch <on|off>', 'repair drift as the kernel reports it (netlink notifications, /run/netns); off: re-check every account every resync period', 'on')
    .option('--account-resync-ms <ms>', 'with --kernel-watch on: each account is checked in full at least this often, for drift the kernel does not report', (v) => Number(v), 60000)
    .option('--heartbeat-ms <ms>', 'status republish period; the liveness lease lasts three of them', (v) => Number.parseInt(v, 10))
    .option('--bpf-pin-base <dir>', 'bpffs directory of the data plane pins (default /sys/fs/bpf/opentransit)')
    .action(async (opts: import('./agent/main.js').AgentCliOptions) => {
      const { runAgent } = await import('./agent/main.js');
      await runAgent(opts);
    });

  nodeOptions(program.command('plan').description('show what the agent would change now (kernel, eBPF maps, BGP), changing nothing'))
    .option('--bpf-pin-base <dir>', "the agent's bpffs directory of data plane pins (default /sys/fs/bpf/opentransit)")
    .option('-o, --output <format>', 'table | json', 'table')
    .action(async (opts: import('./agent/main.js').AgentCliOptions & { output: string }) => {
      const { planNode, formatPlan } = await import('./agent/main.js');
      const plan = await planNode(opts);
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
    });

  program
    .command('demo')
    .description("the seed's story in the lab: bring it up, provision Acme, and check each step (run as root)")
    .option('-f, --file <topology.yaml>', 'the lab topology (default examples/lab.yaml)')
    .action(async (opts: { file?: string }) => {
      const { runDemo } = await import('./lab/demo.js');
      process.exitCode = await runDemo(opts);
    });

  // The lab (src/lab): `-o` is the program's global output option, hence optsWithGlobals().
  const lab = program.command('lab').description('the simulated internet in network namespaces (run as root)');
  const labCmd = () => import('./lab/command.js');
  const named = (cmd: Command) => cmd.option('-n, --name <lab>', 'which lab (default: the only one)').option('-f, --file <topology.yaml>', 'take the lab name from this file');
  lab.command('up').description('build the lab of a topology file (default examples/lab.yaml)')
    .option('-f, --file <topology.yaml>', 'the topology file')
    .action(async (_o, cmd: Command) => (await labCmd()).labUpCommand(cmd.optsWithGlobals()));
  named(lab.command('down').description('remove every namespace, process and file of the lab'))
    .action(async (_o, cmd: Command) => (await labCmd()).labDownCommand(cmd.optsWithGlobals()));
  named(lab.command('status').description('hosts, addresses, edges, BGP sessions, API URL and operator token'))
    .action(async (_o, cmd: Command) => (await labCmd()).labStatusCommand(cmd.optsWithGlobals()));
  named(lab.command('cpe-controller').description("(started by lab up) keep the customer routers' GRE tunnels equal to the store"))
    .action(async (_o, cmd: Command) => {
      const { runCpeController } = await import('./lab/cpe-controller.js');
      await runCpeController((cmd.optsWithGlobals() as { name: string }).name);
    });
  named(lab.command('exec').description('run a command inside a lab host: lab exec HOST -- CMD…').argument('<host>').argument('<command...>'))
    .action(async (host: string, argv: string[], _o, cmd: Command) => (await labCmd()).labExecCommand(cmd.optsWithGlobals(), host, argv));
  named(lab.command('store').description("rehearse store outages (store: etcd): kill (SIGKILL) or restart members of the lab's etcd cluster")
    .argument('<action>', 'stop | start').argument('[member]', 'etcd1, etcd2 or etcd3 (default: every member)'))
    .action(async (action: string, member: string | undefined, _o, cmd: Command) => (await labCmd()).labStoreCommand(cmd.optsWithGlobals(), action, member));

  // Benchmarks (bench/): JSON per benchmark + summary under bench/results/, a table on stdout. Run as root.
  program.command('bench').description('run the benchmarks (JSON under bench/results/, a table on stdout; run as root)')
    .option('--quick', 'small sizes: checks the machinery in a minute or two, not the numbers')
    .option('--only <names>', 'comma-separated benchmark names (see --list)')
    .option('--results <dir>', 'where the JSON goes (default bench/results in the repository)')
    .option('--set <bench.key=value...>', 'override a size, e.g. agent-cold-reconcile.customers=200')
    .option('--list', 'list the benchmarks and exit')
    .action(async (opts: import('../bench/lib/runner.js').BenchCommandOptions) => {
      const { benchCommand } = await import('../bench/lib/runner.js');
      await benchCommand(opts);
    });
}

const io = processIo();
// exitCode, not exit(): a daemon verb's server keeps the process alive after its action returns.
process.exitCode = await runProgram(buildProgram(io), process.argv, io);
