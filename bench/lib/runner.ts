/**
 * `opentransit bench`: finds the benchmarks (every bench/<name>.ts registers itself), runs them one after the
 * other, writes one JSON file per benchmark plus summary.json under the results directory, and prints a table.
 *
 * A failing benchmark is recorded (status "error" with its message) and the others still run; the command then
 * fails. Goals are reported, never enforced: performance is judged by people reading ratios, not by exit codes.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from '../../src/kernel/bpf/paths.js';
import { registeredBenchmarks, type BenchContext, type Metric } from './registry.js';
import { formatTable } from './table.js';

export const RESULTS_SCHEMA = 1;

export interface BenchCommandOptions {
  quick?: boolean;
  /** Comma-separated benchmark names. */
  only?: string;
  /** Results directory (default <repo>/bench/results). */
  results?: string;
  /** name.key=value overrides (e.g. agent-cold-reconcile.customers=200). */
  set?: string[];
  list?: boolean;
}

export interface MachineInfo {
  cpus: number;
  cpu_model: string;
  memory_gib: number;
  kernel: string;
  node: string;
  hostname: string;
  /** 1-minute load average when the run started: other work on the machine skews absolute figures (ratios less). */
  loadavg_1m: number;
}

export interface BenchmarkResult {
  schema: number;
  benchmark: string;
  description: string;
  quick: boolean;
  status: 'ok' | 'error';
  error?: string;
  started_at: string;
  duration_ms: number;
  machine: MachineInfo;
  params: Record<string, number | string | boolean>;
  metrics: Metric[];
  notes: string[];
  details: Record<string, unknown>;
}

export interface BenchSummary {
  schema: number;
  quick: boolean;
  started_at: string;
  duration_ms: number;
  machine: MachineInfo;
  benchmarks: Pick<BenchmarkResult, 'benchmark' | 'status' | 'error' | 'duration_ms' | 'params' | 'metrics'>[];
}

export function machineInfo(): MachineInfo {
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    hostname: os.hostname(),
    loadavg_1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

/** Imports every benchmark file next to lib/ (bench/*.js compiled, or bench/*.ts under tsx). */
export async function loadBenchmarks(): Promise<void> {
  const here = fileURLToPath(import.meta.url);
  const ext = here.endsWith('.ts') ? '.ts' : '.js';
  const dir = dirname(dirname(here));
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(ext) || f.endsWith('.d.ts') || f.endsWith('.test' + ext)) continue;
    await import(pathToFileURL(join(dir, f)).href);
  }
}

function parseSets(sets: readonly string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const s of sets) {
    const m = /^([a-z0-9-]+)\.([a-z0-9_-]+)=(.+)$/i.exec(s);
    if (!m) throw new Error(`--set ${JSON.stringify(s)}: expected <benchmark>.<key>=<value>`);
    const rec = out.get(m[1]!) ?? {};
    rec[m[2]!] = m[3]!;
    out.set(m[1]!, rec);
  }
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Runs the benchmarks; returns the summary (also written to disk). Throws only for bad options. */
export async function runBenchmarks(
  opts: BenchCommandOptions,
  out: (text: string) => void = (t) => process.stdout.write(t),
  log: (text: string) => void = (t) => process.stderr.write(`${t}\n`),
): Promise<BenchSummary> {
  await loadBenchmarks();
  const all = registeredBenchmarks();
  const only = opts.only ? opts.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  for (const n of only ?? []) {
    if (!all.some((b) => b.name === n)) throw new Error(`--only: no benchmark named ${JSON.stringify(n)} (have: ${all.map((b) => b.name).join(', ')})`);
  }
  const sets = parseSets(opts.set ?? []);
  for (const n of sets.keys()) if (!all.some((b) => b.name === n)) throw new Error(`--set: no benchmark named ${JSON.stringify(n)}`);
  const chosen = all.filter((b) => !only || only.includes(b.name));
  const quick = opts.quick ?? false;
  const dir = resolve(opts.results ?? join(repoRoot(), 'bench', 'results'));
  mkdirSync(dir, { recursive: true });
  const machine = machineInfo();
  const started = new Date();
  const t0 = performance.now();
  const results: BenchmarkResult[] = [];
  for (const b of chosen) {
    log(`bench: ${b.name}${quick ? ' (quick)' : ''} …`);
    const ctx: BenchContext = { quick, log: (m) => log(`  ${b.name}: ${m}`), params: sets.get(b.name) ?? {} };
    const bStarted = new Date();
    const bt0 = performance.now();
    let result: BenchmarkResult;
    try {
      const o = await b.run(ctx);
      result = {
        schema: RESULTS_SCHEMA, benchmark: b.name, description: b.description, quick, status: 'ok',
        started_at: bStarted.toISOString(), duration_ms: Math.round(performance.now() - bt0), machine,
        params: o.params, metrics: o.metrics, notes: o.notes ?? [], details: o.details ?? {},
      };
    } catch (err) {
      log(`bench: ${b.name} failed: ${errorMessage(err)}`);
      result = {
        schema: RESULTS_SCHEMA, benchmark: b.name, description: b.description, quick, status: 'error', error: err instanceof Error ? err.message : String(err),
        started_at: bStarted.toISOString(), duration_ms: Math.round(performance.now() - bt0), machine, params: {}, metrics: [], notes: [], details: {},
      };
    }
    writeFileSync(join(dir, `${b.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    results.push(result);
    log(`bench: ${b.name} ${result.status} in ${(result.duration_ms / 1000).toFixed(1)} s`);
  }
  const summary: BenchSummary = {
    schema: RESULTS_SCHEMA,
    quick,
    started_at: started.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
    machine,
    benchmarks: results.map((r) => ({
      benchmark: r.benchmark, status: r.status, ...(r.error !== undefined ? { error: r.error } : {}), duration_ms: r.duration_ms, params: r.params, metrics: r.metrics,
    })),
  };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  out(formatTable(summary));
  out(`\nresults: ${dir}/{${[...results.map((r) => r.benchmark), 'summary'].join(',')}}.json\n`);
  return summary;
}

/** The `bench` verb: runs, then fails (throws) if any benchmark failed. */
export async function benchCommand(opts: BenchCommandOptions): Promise<void> {
  if (opts.list) {
    await loadBenchmarks();
    for (const b of registeredBenchmarks()) process.stdout.write(`${b.name.padEnd(24)} ${b.description}\n`);
    return;
  }
  const summary = await runBenchmarks(opts);
  const failed = summary.benchmarks.filter((b) => b.status === 'error');
  if (failed.length) throw new Error(`${failed.length} benchmark(s) failed: ${failed.map((f) => `${f.benchmark} (${f.error})`).join('; ')}`);
}
