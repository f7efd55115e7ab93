/**
 * The benchmark list. A benchmark is one file bench/<name>.ts that calls `registerBenchmark(...)` at import time;
 * the runner (runner.ts) imports every such file it finds next to it, so adding a benchmark is a one-file job.
 *
 * Every figure is a Metric. Where a baseline makes sense it is measured in the same run and the metric carries it,
 * so the figure that matters is the ratio (machines differ; ratios travel better than milliseconds).
 */

/** A goal a metric is compared against (reported, never asserted). */
export interface Goal {
  /** Compare the metric's value, or its ratio against the baseline. */
  on: 'value' | 'ratio';
  op: '<=' | '>=';
  target: number;
  /** A second, harder target (the "stretch" goal). */
  stretch?: number;
}

export interface Metric {
  /** Stable identifier within the benchmark (snake_case). */
  name: string;
  value: number;
  unit: string;
  /** Which direction is better: decides how the ratio is read ("x times better" is always > 1). */
  better: 'lower' | 'higher' | 'none';
  /** What this metric was measured against in the same run, if anything. */
  baseline?: { label: string; value: number };
  /**
   * How many times better than the baseline (baseline/value when lower is better, value/baseline when higher is).
   * Filled in by `metric()`; > 1 means better than the baseline.
   */
  ratio?: number;
  goal?: Goal;
  /** Whether the goal is met (filled in by `metric()`). */
  goalMet?: boolean;
  /** Whether the stretch goal is met. */
  stretchMet?: boolean;
  /** One line on how it was measured, when the name is not enough. */
  note?: string;
}

/** Builds a metric, computing its ratio against the baseline and whether its goal is met. */
export function metric(m: Omit<Metric, 'ratio' | 'goalMet' | 'stretchMet'>): Metric {
  const out: Metric = { ...m };
  if (m.baseline && Number.isFinite(m.baseline.value) && m.baseline.value > 0 && m.value > 0 && m.better !== 'none') {
    out.ratio = m.better === 'lower' ? m.baseline.value / m.value : m.value / m.baseline.value;
  }
  if (m.goal) {
    const subject = m.goal.on === 'ratio' ? out.ratio : m.value;
    const meets = (target: number) => subject !== undefined && Number.isFinite(subject) && (m.goal!.op === '<=' ? subject <= target : subject >= target);
    out.goalMet = meets(m.goal.target);
    if (m.goal.stretch !== undefined) out.stretchMet = meets(m.goal.stretch);
  }
  return out;
}

export interface BenchContext {
  /** The small, fast variant (a test runs it to check the machinery, not the numbers). */
  quick: boolean;
  /** Progress for the operator (stderr); never part of the results. */
  log(message: string): void;
  /** Per-run overrides from the command line (`--set name.key=value`), already scoped to this benchmark. */
  params: Readonly<Record<string, string>>;
}

export interface BenchOutcome {
  /** The sizes the run used (N customers, repeats…), so a result file says what it measured. */
  params: Record<string, number | string | boolean>;
  metrics: Metric[];
  /** Method notes, caveats (e.g. what a memory figure includes). */
  notes?: string[];
  /** Anything else worth keeping in the JSON (distributions, per-size tables). */
  details?: Record<string, unknown>;
}

export interface Benchmark {
  name: string;
  description: string;
  /** Lower runs first (default 100); ties by name. */
  order?: number;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}

const benchmarks = new Map<string, Benchmark>();

/** Called by each bench/<name>.ts at import time. */
export function registerBenchmark(b: Benchmark): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(b.name)) throw new Error(`benchmark name ${JSON.stringify(b.name)}: use [a-z0-9-]`);
  if (benchmarks.has(b.name)) throw new Error(`benchmark ${b.name} is registered twice`);
  benchmarks.set(b.name, b);
}

/** Every registered benchmark, in run order. */
export function registeredBenchmarks(): Benchmark[] {
  return [...benchmarks.values()].sort((a, b) => (a.order ?? 100) - (b.order ?? 100) || a.name.localeCompare(b.name));
}

/** A numeric parameter: the command-line override, else the quick or full default. */
export function numberParam(ctx: BenchContext, key: string, full: number, quick: number): number {
  const raw = ctx.params[key];
  if (raw === undefined) return ctx.quick ? quick : full;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--set ${key}=${raw}: must be a positive number`);
  return v;
}

/** An on/off parameter (`--set key=on|off`, also 1/0, true/false): the command-line override, else `dflt`. */
export function flagParam(ctx: BenchContext, key: string, dflt: boolean): boolean {
  const raw = ctx.params[key];
  if (raw === undefined) return dflt;
  if (['on', '1', 'true'].includes(String(raw))) return true;
  if (['off', '0', 'false'].includes(String(raw))) return false;
  throw new Error(`--set ${key}=${raw}: must be on or off`);
}
