// The Grafana dashboard (dashboards/foldstream.json) queries only metrics foldstream registers (or Node's default
// ones), so a renamed metric cannot leave a panel silently empty.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { ROOT } from '../helpers/cli.ts';

interface Dashboard {
  uid: string;
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; query: unknown }[] };
}

const dashboard = JSON.parse(readFileSync(`${ROOT}/dashboards/foldstream.json`, 'utf8')) as Dashboard;

async function registered(): Promise<Map<string, string>> {
  const registry = new Registry();
  new RuntimeMetrics(registry, { defaultMetrics: true });
  return new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
}

/** Metric names in a PromQL expression (functions and labels are not followed by `{` or `[` the same way). */
const metricsIn = (expr: string) => [...expr.matchAll(/\b((?:foldstream|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);

test('every metric a panel or variable queries is registered (a histogram through _bucket, _sum or _count)', async (t) => {
  const names = await registered();
  const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr)), ...dashboard.templating.list.map((v) => String(v.query))];
  const used = new Set(exprs.flatMap(metricsIn));
  t.true(used.size > 15);
  const unknown = [...used].filter((n) => {
    if (names.has(n)) return false;
    const base = n.replace(/_(bucket|sum|count)$/, '');
    return names.get(base) !== 'histogram';
  });
  t.deepEqual(unknown, []);
});

test('the panels cover throughput, lag, latency, transactions, dead letters, tasks, restores and every kind\'s outcomes', (t) => {
  const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((x) => metricsIn(x.expr))));
  for (const m of [
    'foldstream_records_consumed_total',
    'foldstream_records_produced_total',
    'foldstream_consumer_lag',
    'foldstream_end_to_end_latency_seconds_bucket',
    'foldstream_transactions_total',
    'foldstream_dlq_records_total',
    'foldstream_tasks',
    'foldstream_restore_remaining_records',
    'foldstream_command_outcomes_total',
    'foldstream_projection_events_total',
    'foldstream_saga_lifecycle_total',
  ]) {
    t.true(used.has(m), m);
  }
  t.is(new Set(dashboard.panels.map((p) => p.title)).size, dashboard.panels.length, 'panel titles are unique');
});
