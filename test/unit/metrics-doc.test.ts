// Every metric the runtime (and the offline commands' progress) registers is documented in docs/metrics.md, and the
// page names no metric that is gone.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { ProgressMetrics } from '../../src/app/progress-metrics.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { ROOT } from '../helpers/cli.ts';

const page = readFileSync(`${ROOT}/docs/metrics.md`, 'utf8');

test('every foldstream_ metric the runtime registers has a row in docs/metrics.md', async (t) => {
  const registry = new Registry();
  new RuntimeMetrics(registry, { defaultMetrics: false });
  const names = [...(await registry.getMetricsAsJSON()), ...(await new ProgressMetrics().registry.getMetricsAsJSON())].map((m) => m.name);
  t.true(names.length > 10);
  t.deepEqual(names.filter((n) => !page.includes(`| \`${n}\``)), []);
});

test('docs/metrics.md documents no foldstream_ metric the runtime does not register', async (t) => {
  const registry = new Registry();
  new RuntimeMetrics(registry, { defaultMetrics: false });
  const names = new Set([...(await registry.getMetricsAsJSON()), ...(await new ProgressMetrics().registry.getMetricsAsJSON())].map((m) => m.name));
  const documented = [...page.matchAll(/^\| `(foldstream_[a-z_]+)`/gm)].map((m) => m[1]!);
  t.deepEqual(documented.filter((n) => !names.has(n)), []);
});
