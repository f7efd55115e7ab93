/**
 * The README's main command, end to end: `opentransit demo` in a lab of its own (a copy of examples/lab.yaml
 * under another name, so it never touches a lab the user left up), then `lab down` leaves nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { listNetns } from '../../src/kernel/netns.js';

/** The repository root: the nearest folder above this file with bin/opentransit (works from dist/ and from source). */
function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'bin', 'opentransit'))) d = path.dirname(d);
  return d;
}
const root = repoRoot();
const bin = path.join(root, 'bin', 'opentransit');
const name = `e2e${process.pid % 100000}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-demo-e2e-'));
const file = path.join(dir, 'lab.yaml');

function cli(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 180_000 });
}

after(() => {
  cli(['lab', 'down', '-n', name]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('opentransit demo tells the whole story and checks every step; lab down leaves nothing', async () => {
  const topology = YAML.parse(fs.readFileSync(path.join(root, 'examples', 'lab.yaml'), 'utf8')) as { name: string };
  topology.name = name;
  fs.writeFileSync(file, YAML.stringify(topology));
  const demo = cli(['demo', '-f', file]);
  assert.equal(demo.status, 0, `${demo.stdout}\n${demo.stderr}`);
  assert.match(demo.stdout, /\[1\/\d+\] Provision Acme/);
  assert.doesNotMatch(demo.stdout, /FAILED/);
  // Every step of the story is built and checked: none is left "not built yet".
  assert.match(demo.stdout, /Done: (\d+) steps checked, 0 not built yet/, demo.stdout);
  assert.doesNotMatch(demo.stdout, /not built yet:/);
  for (const evidence of [/banner "acme-ftp 21"/, /IP checksums good/, /dropped by XDP/, /decapsulated replies per edge/, /the client connected 6\/6 meanwhile/]) {
    assert.match(demo.stdout, evidence);
  }
  const down = cli(['lab', 'down', '-n', name]);
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(await listNetns(`otl-${name}-`), []);
  assert.ok(!fs.existsSync(`/run/opentransit-lab/${name}`));
});
