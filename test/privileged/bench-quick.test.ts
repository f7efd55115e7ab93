/**
 * The bench machinery, end to end: `bin/opentransit bench --quick` into a temporary results directory, then the
 * shape of what it wrote (one JSON per benchmark + summary.json) and of the table it printed. Never the numbers:
 * performance is judged by reading the bench's ratios, not by tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../..' : '../../..', import.meta.url));
const bin = join(root, 'bin', 'opentransit');

function opentransit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

const BETTER = ['lower', 'higher', 'none'];

function checkMetric(where: string, m: Record<string, unknown>): void {
  assert.equal(typeof m.name, 'string', `${where}: name`);
  assert.match(m.name as string, /^[a-z0-9_]+$/, `${where}: name is snake_case`);
  assert.ok(typeof m.value === 'number' && Number.isFinite(m.value), `${where}.${m.name}: value is a finite number, got ${m.value}`);
  assert.equal(typeof m.unit, 'string', `${where}.${m.name}: unit`);
  assert.ok(BETTER.includes(m.better as string), `${where}.${m.name}: better`);
  if (m.baseline !== undefined) {
    const b = m.baseline as Record<string, unknown>;
    assert.equal(typeof b.label, 'string', `${where}.${m.name}: baseline.label`);
    assert.ok(typeof b.value === 'number' && Number.isFinite(b.value), `${where}.${m.name}: baseline.value`);
    // A value of 0 has no ratio (registry.metric leaves it out: "18 spawns vs none" is not a number of times).
    if (m.better !== 'none' && m.value !== 0) assert.ok(typeof m.ratio === 'number' && m.ratio > 0, `${where}.${m.name}: a baseline gives a positive ratio`);
    if (m.value === 0) assert.equal(m.ratio, undefined, `${where}.${m.name}: a value of 0 has no ratio`);
  }
  if (m.goal !== undefined) {
    const g = m.goal as Record<string, unknown>;
    assert.ok(['value', 'ratio'].includes(g.on as string) && ['<=', '>='].includes(g.op as string) && typeof g.target === 'number', `${where}.${m.name}: goal`);
    assert.equal(typeof m.goalMet, 'boolean', `${where}.${m.name}: goalMet`);
  }
}

test('opentransit bench --quick writes one JSON per benchmark, a summary and a table, and leaves nothing behind', { timeout: 300_000 }, async () => {
  assert.ok(existsSync(join(root, 'dist/src/main.js')), 'dist/ is missing: run `make ts` first');
  const list = await opentransit(['bench', '--list']);
  assert.equal(list.code, 0, list.stderr);
  const names = list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]!);
  for (const n of ['agent-cold-reconcile', 'api-to-kernel', 'firewall-compile', 'xdp-edge']) assert.ok(names.includes(n), `--list shows ${n}: ${list.stdout}`);

  const dir = mkdtempSync(join(os.tmpdir(), 'ot-bench-test-'));
  try {
    const r = await opentransit(['bench', '--quick', '--results', dir]);
    assert.equal(r.code, 0, `bench --quick failed:\n${r.stderr}\n${r.stdout}`);
    assert.deepEqual(readdirSync(dir).sort(), [...names.map((n) => `${n}.json`), 'summary.json'].sort());

    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(summary.schema, 1);
    assert.equal(summary.quick, true);
    const machine = summary.machine as Record<string, unknown>;
    for (const k of ['cpus', 'memory_gib', 'loadavg_1m']) assert.equal(typeof machine[k], 'number', `machine.${k}`);
    for (const k of ['cpu_model', 'kernel', 'node']) assert.equal(typeof machine[k], 'string', `machine.${k}`);
    const entries = summary.benchmarks as Record<string, unknown>[];
    assert.deepEqual(entries.map((b) => b.benchmark).sort(), [...names].sort());

    for (const name of names) {
      const b = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Record<string, unknown>;
      assert.equal(b.benchmark, name);
      assert.equal(b.status, 'ok', `${name}: ${String(b.error)}`);
      assert.equal(b.quick, true);
      assert.equal(typeof b.description, 'string');
      assert.ok(typeof b.duration_ms === 'number' && b.duration_ms >= 0);
      assert.ok(b.params && typeof b.params === 'object');
      assert.ok(Array.isArray(b.notes) && b.details && typeof b.details === 'object');
      const metrics = b.metrics as Record<string, unknown>[];
      assert.ok(Array.isArray(metrics) && metrics.length > 0, `${name}: has metrics`);
      assert.equal(new Set(metrics.map((m) => m.name)).size, metrics.length, `${name}: metric names are unique`);
      for (const m of metrics) checkMetric(name, m);
      assert.ok(metrics.some((m) => m.baseline !== undefined), `${name}: at least one figure has a same-run baseline`);
      assert.deepEqual((entries.find((e) => e.benchmark === name) as Record<string, unknown>).metrics, metrics, `${name}: the summary repeats its metrics`);
      assert.match(r.stdout, new RegExp(`^## ${name}  \\[ok,`, 'm'), `the table has a block for ${name}`);
    }

    // Everything the bench made is gone: its namespaces (named otb-<pid>-…) and its bpffs pins.
    assert.deepEqual((existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => n.startsWith(`otb-${r.pid}-`)), []);
    assert.deepEqual(readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(`ot-bench-${r.pid}-`)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('opentransit bench refuses an unknown benchmark name, naming it', async () => {
  const r = await opentransit(['bench', '--only', 'no-such-bench', '--results', os.tmpdir()]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--only: no benchmark named "no-such-bench"/);
});
