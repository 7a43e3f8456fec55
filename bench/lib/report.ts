/** Medians and spreads per workload, system and figure; ratios on the medians; the markdown table. */
import { LABELS, type SystemName } from './systems.ts';
import { summarize, type Summary } from './stats.ts';
import type { WorkloadName } from './workload.ts';

export type Column = SystemName | 'ceiling';

export interface Figure {
  key: string;
  label: string;
  unit: string;
  /** true when a larger value is better (throughput); false for times and memory */
  higherIsBetter: boolean;
  digits: number;
}

export const FIGURES: Figure[] = [
  { key: 'throughput', label: 'throughput, backlog', unit: 'events/s', higherIsBetter: true, digits: 0 },
  { key: 'p50', label: 'end-to-end latency p50, fixed load', unit: 'ms', higherIsBetter: false, digits: 0 },
  { key: 'p99', label: 'end-to-end latency p99, fixed load', unit: 'ms', higherIsBetter: false, digits: 0 },
  { key: 'restore', label: 'restore, fresh state directory', unit: 'records/s', higherIsBetter: true, digits: 0 },
  { key: 'recoveryFirst', label: 'kill -9 → first new committed output', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'recoveryCaughtUp', label: 'kill -9 → caught up', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverFirst', label: 'failover, static membership: kill -9 → first new output of its tasks', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverResumed', label: 'failover, static membership: kill -9 → all its tasks producing', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverCaughtUp', label: 'failover, static membership: kill -9 → caught up', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverDynamicFirst', label: 'failover, dynamic membership: kill -9 → first new output of its tasks', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverDynamicResumed', label: 'failover, dynamic membership: kill -9 → all its tasks producing', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'failoverDynamicCaughtUp', label: 'failover, dynamic membership: kill -9 → caught up', unit: 's', higherIsBetter: false, digits: 1 },
  { key: 'rss', label: 'peak RSS, backlog run', unit: 'MiB', higherIsBetter: false, digits: 0 },
  { key: 'cpu', label: 'CPU per 1000 events, fixed load', unit: 'ms', higherIsBetter: false, digits: 0 },
];

/** values[workload][column][figure] = one value per repetition */
export type Values = Record<string, Record<string, Record<string, (number | undefined)[]>>>;

export function add(values: Values, workload: WorkloadName, column: Column, figure: string, value: number | undefined): void {
  const w = (values[workload] ??= {});
  const c = (w[column] ??= {});
  (c[figure] ??= []).push(value);
}

export type Summaries = Record<string, Record<string, Record<string, Summary | undefined>>>;

export function summarizeAll(values: Values): Summaries {
  const out: Summaries = {};
  for (const [w, cols] of Object.entries(values)) {
    out[w] = {};
    for (const [c, figs] of Object.entries(cols)) {
      out[w]![c] = {};
      for (const [f, v] of Object.entries(figs)) out[w]![c]![f] = summarize(v);
    }
  }
  return out;
}

/** ratio of medians a / b, undefined when either is missing */
export function ratio(s: Summaries, workload: string, a: Column, b: Column, figure: string): number | undefined {
  const x = s[workload]?.[a]?.[figure]?.median;
  const y = s[workload]?.[b]?.[figure]?.median;
  return x !== undefined && y !== undefined && y !== 0 ? x / y : undefined;
}

const fmt = (v: number, digits: number) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function cell(s: Summary | undefined, f: Figure): string {
  if (!s) return '–';
  const m = fmt(s.median, f.digits);
  return s.values.length > 1 ? `${m} (${fmt(s.min, f.digits)}–${fmt(s.max, f.digits)})` : m;
}

export function markdown(s: Summaries, columns: Column[], workloads: { name: WorkloadName; title: string }[]): string {
  const others = columns.filter((c) => c !== 'foldstream');
  const lines: string[] = [];
  for (const w of workloads) {
    if (!s[w.name]) continue;
    lines.push(`### ${w.title}`, '');
    const ratioCols = columns.includes('foldstream') ? others.map((c) => `foldstream / ${LABELS[c]}`) : [];
    const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
    lines.push(row(['figure', ...columns.map((c) => LABELS[c]), ...ratioCols]));
    lines.push(`|---|${[...columns, ...ratioCols].map(() => '---:').join('|')}|`);
    for (const f of FIGURES) {
      const cells = columns.map((c) => cell(s[w.name]?.[c]?.[f.key], f));
      if (cells.every((c) => c === '–')) continue;
      const ratios = columns.includes('foldstream')
        ? others.map((c) => {
            const r = ratio(s, w.name, 'foldstream', c, f.key);
            return r === undefined ? '–' : `${fmt(r, 2)}×`;
          })
        : [];
      lines.push(row([`${f.label} (${f.unit})`, ...cells, ...ratios]));
    }
    lines.push('');
  }
  return lines.join('\n');
}
