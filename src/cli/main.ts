// Placeholder until the CLI lands; replaced by the CLI work.
process.stdout.write('opentransit\n');
