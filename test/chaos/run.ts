/**
 * Chaos runs from the command line (`npm run chaos -- ...`); `--help` prints the options (USAGE below). The verifier
 * holds a run's records in memory, which for a full-size bank run is more than Node's default heap of about 4 GB:
 * `npm run chaos` gives it 12 GB (`node --max-old-space-size=12288 --import tsx test/chaos/run.ts ...` without npm).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runChaos } from './orchestrator.ts';
import { PROFILES, type PlantKind, type RunOptions } from './profiles.ts';
import { markdown, tableHeader, tableRow, type RunReport } from './report.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { WORKLOADS } from './workloads/index.ts';

const USAGE = `Usage: npm run chaos -- [options]

  --profile short|full     defaults for everything below (short: CI-sized; full: ≥1,000,000 events, ≥50 kills)
  --scenario NAME|all      kill, rebalance, zombie, broker, state-loss, bad-input (default kill); \`all\` runs each
  --workload counter|bank|orders|saga|joins  the custom counting workload (default), the event-sourcing one (aggregate +
                           projections), the one of declarative rules, tenants, steps and modules (workloads/orders.ts),
                           the orders example's saga over three aggregates (workloads/saga.ts), or a window and a
                           stream-stream join (workloads/joins.ts)
  --events N               input records (good and bad)
  --kills N                fault actions (kills, joins/leaves, pauses, processor kills beside broker kills)
  --broker-kills N         broker kills (broker scenario)
  --duration SECONDS       the generator spreads the input, and the faults, over this long
  --keys N                 distinct keys / accounts / SKUs (saga: at most 12)
  --bad-rate R             share of bad input (default 0.01)
  --commit-interval MS     processing.commitIntervalMs (default 1500: kills land inside open transactions)
  --seed N                 reproduce a run's input and fault schedule
  --catch-up-timeout SECONDS  stop waiting for the processors to consume all input after this long (then verify)
  --cluster-port N         the broker scenario's three brokers listen on N, N+1, N+2 (default 9192), so two can run at once
  --plant KIND             plant an anomaly before verifying: duplicate, loss, store, open-transaction, dlq-missing, dlq-extra;
                           bank and orders (their groupBy projections): group-view, group-store;
                           bank only (its chained projection account-tiers): chain-duplicate, chain-loss;
                           saga only: command-duplicate (a command the saga sent, written again)
  --keep                   keep topics and state after a clean run
  --report-dir DIR         default test/chaos/reports

Exit code 0 when every run passed, 1 otherwise. Each run writes <report-dir>/<run>.json and .md and prints the
table; \`--scenario all\` also writes <report-dir>/summary-<time>.md.
`;

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      profile: { type: 'string', default: 'short' },
      scenario: { type: 'string', default: 'kill' },
      workload: { type: 'string' },
      events: { type: 'string' },
      kills: { type: 'string' },
      'broker-kills': { type: 'string' },
      duration: { type: 'string' },
      keys: { type: 'string' },
      'bad-rate': { type: 'string' },
      'commit-interval': { type: 'string' },
      seed: { type: 'string' },
      'catch-up-timeout': { type: 'string' },
      'cluster-port': { type: 'string' },
      plant: { type: 'string' },
      keep: { type: 'boolean' },
      'report-dir': { type: 'string' },
    },
  });
}
try {
  parsed = parse();
} catch (e) {
  console.error(`${(e as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (parsed.values.help) {
  console.log(USAGE);
  process.exit(0);
}
const { values } = parsed;

const profile = values.profile === 'full' ? 'full' : values.profile === 'short' ? 'short' : undefined;
if (!profile) {
  console.error(`--profile must be short or full, not ${values.profile}`);
  process.exit(2);
}
if (values.workload !== undefined && !WORKLOADS[values.workload]) {
  console.error(`unknown workload ${values.workload}; one of ${Object.keys(WORKLOADS).join(', ')}`);
  process.exit(2);
}
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const base: RunOptions = {
  ...PROFILES[profile],
  reportDir: values['report-dir'] ?? fileURLToPath(new URL('./reports/', import.meta.url)),
};
const overrides: Partial<RunOptions> = Object.fromEntries(
  Object.entries({
    workload: values.workload as RunOptions['workload'] | undefined,
    events: num(values.events),
    kills: num(values.kills),
    brokerKills: num(values['broker-kills']),
    durationMs: values.duration === undefined ? undefined : Number(values.duration) * 1000,
    keys: num(values.keys),
    badRate: num(values['bad-rate']),
    commitIntervalMs: num(values['commit-interval']),
    seed: num(values.seed),
    catchUpTimeoutMs: values['catch-up-timeout'] === undefined ? undefined : Number(values['catch-up-timeout']) * 1000,
    clusterBasePort: num(values['cluster-port']),
    plant: values.plant as PlantKind | undefined,
    keep: values.keep,
  }).filter(([, v]) => v !== undefined),
);
const scenarios = values.scenario === 'all' ? Object.keys(SCENARIOS) : values.scenario!.split(',');
for (const s of scenarios) {
  if (!SCENARIOS[s]) {
    console.error(`unknown scenario ${s}; one of ${Object.keys(SCENARIOS).join(', ')}, or all`);
    process.exit(2);
  }
}

const reports: RunReport[] = [];
for (const scenario of scenarios) {
  const { report, files } = await runChaos({ ...base, ...overrides, scenario });
  reports.push(report);
  console.log(`\n${markdown(report)}\nreport: ${files.md} (JSON: ${files.json})\n`);
}
if (reports.length > 1) {
  const summary = [tableHeader(), ...reports.map(tableRow)].join('\n') + '\n';
  const file = join(base.reportDir, `summary-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}.md`);
  writeFileSync(file, summary);
  console.log(summary);
  console.log(`summary: ${file}`);
}
process.exit(reports.every((r) => r.verdict === 'PASS') ? 0 : 1);
