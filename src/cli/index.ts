/**
 * The client verbs of `opentransit` — everything that talks to the HTTP API. Nothing here imports the agent,
 * the kernel layer or the store: the CLI is a pure API client, usable from any machine that reaches the API.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerAccountCommand } from './account.js';
import { registerApplyCommand } from './apply.js';
import { registerBlocklistCommand } from './blocklist.js';
import { registerCountersCommand } from './counters.js';
import { DEFAULT_API_URL, ENV_API, ENV_TOKEN, OUTPUT_FORMATS, processIo, type CliIo } from './context.js';
import { registerDeleteCommand } from './delete.js';
import { registerGetCommand } from './get.js';
import { registerMitigationsCommand } from './mitigations.js';
import { formatError } from './errors.js';
import { registerNodeCommand } from './node.js';
import { registerSettingsCommand } from './settings.js';
import { registerStatusCommand } from './status.js';

export { formatError } from './errors.js';
export { processIo, type CliIo } from './context.js';

/** Adds the global client options (`--api`, `--token`, `-o`) to the program. */
export function addGlobalOptions(program: Command): void {
  program
    .addOption(new Option('--api <url>', `API base URL (env ${ENV_API}, default ${DEFAULT_API_URL})`))
    .addOption(new Option('--token <token>', `bearer token, operator or account (env ${ENV_TOKEN})`))
    .addOption(new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'));
}

/** Registers the global options and every client verb on `program`. */
export function registerClientCommands(program: Command, io: CliIo = processIo()): void {
  addGlobalOptions(program);
  registerApplyCommand(program, io);
  registerGetCommand(program, io);
  registerDeleteCommand(program, io);
  registerAccountCommand(program, io);
  registerStatusCommand(program, io);
  registerSettingsCommand(program, io);
  registerNodeCommand(program, io);
  registerBlocklistCommand(program, io);
  registerMitigationsCommand(program, io);
  registerCountersCommand(program, io);
}

/**
 * Parses `argv` (as process.argv: node, script, args…) and runs the chosen verb; resolves to the exit code.
 * Every failure becomes one `error: …` line on stderr — commander's own usage errors print themselves.
 */
export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number> {
  // Commander copies these settings to subcommands only when they are created: apply them to the whole tree, so a
  // usage error in a nested verb (`mitigations add` without a prefix) is reported here, not by process.exit.
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    cmd.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    io.stderr(formatError(err) + '\n');
    return 1;
  }
}
