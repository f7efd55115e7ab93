/** The readable table of a bench run: one block per benchmark, one row per metric. */
import type { Metric } from './registry.js';
import type { BenchSummary } from './runner.js';

/** 3 significant digits, no exponent for everyday magnitudes. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function goalText(m: Metric): string {
  if (!m.goal) return '';
  const subject = m.goal.on === 'ratio' ? 'ratio ' : '';
  const stretch = m.goal.stretch !== undefined ? ` (stretch ${fmt(m.goal.stretch)})` : '';
  const mark = m.goalMet ? (m.stretchMet ? 'met+stretch' : 'met') : 'MISSED';
  return `${subject}${m.goal.op} ${fmt(m.goal.target)}${stretch}: ${mark}`;
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function formatTable(summary: BenchSummary): string {
  const lines: string[] = [];
  const m = summary.machine;
  lines.push(`OpenTransit bench${summary.quick ? ' (quick)' : ''} — ${m.cpus} CPU ${m.cpu_model}, ${m.memory_gib} GiB, Linux ${m.kernel}, Node ${m.node}, load ${m.loadavg_1m}`);
  for (const b of summary.benchmarks) {
    const params = Object.entries(b.params).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push('', `## ${b.benchmark}  [${b.status}, ${(b.duration_ms / 1000).toFixed(1)} s]${params ? `  ${params}` : ''}`);
    if (b.status === 'error') {
      lines.push(`   error: ${b.error}`);
      continue;
    }
    const rows = [['metric', 'value', 'baseline', 'ratio', 'goal']];
    for (const x of b.metrics) {
      rows.push([
        x.name,
        `${fmt(x.value)} ${x.unit}`,
        x.baseline ? `${x.baseline.label} ${fmt(x.baseline.value)}` : '',
        x.ratio !== undefined ? `${fmt(x.ratio)}x` : '',
        goalText(x),
      ]);
    }
    lines.push(pad(rows).split('\n').map((l) => `   ${l}`).join('\n'));
  }
  return `${lines.join('\n')}\n`;
}
