// Composition root of the `opentransit` command; replaced by the CLI work (client verbs in src/cli,
// daemon verbs — api, agent, lab — loaded lazily from their own folders so src/cli never imports them).
process.stdout.write('opentransit\n');
