/** A run's report: JSON (everything) and a markdown table (the figures), written to test/chaos/reports/ and printed. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosStats } from './chaos-context.ts';
import type { Lag } from './catch-up.ts';
import type { GeneratorResult } from './generator.ts';
import type { RunOptions } from './profiles.ts';
import type { SourceFingerprint } from './source.ts';
import type { Verification } from './verify/verifier.ts';

export interface RunReport {
  runId: string;
  app: string;
  scenario: string;
  description: string;
  workload: string;
  profile: string;
  seed: number;
  startedAt: string;
  finishedAt: string;
  options: Omit<RunOptions, 'brokers' | 'reportDir'>;
  brokers: string[];
  source: SourceFingerprint;
  generator: GeneratorResult;
  chaos: ChaosStats;
  /** from the instances' logs */
  observed: { rebalances: number; fencedTasks: number; failedTransactions: number; deadLettered: number; instanceStarts: number };
  caughtUp: boolean;
  lags: Lag[];
  planted?: string;
  verification: Verification | undefined;
  error?: string;
  logDir: string;
  verdict: 'PASS' | 'FAIL';
}

export interface Figures {
  events: number;
  kills: number;
  killsInsideOpenTransactions: number;
  rebalances: number;
  zombiesFenced: string;
  brokerKills: number;
  stateWipes: number;
  duplicates: number;
  losses: number;
  outOfOrder: number;
  wrongValues: number;
  dlqExpected: number;
  dlqFound: number;
  openTransactions: number;
  storeMismatches: number;
  abortedRecords: number;
}

export function figures(r: RunReport): Figures {
  const v = r.verification;
  const outs = v ? Object.values(v.model.outputs) : [];
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    events: r.generator.records,
    kills: r.chaos.kills.length,
    killsInsideOpenTransactions: r.chaos.kills.filter((k) => k.openPartitions.length > 0).length,
    rebalances: r.observed.rebalances,
    zombiesFenced: r.chaos.zombies.length ? `${r.chaos.zombies.filter((z) => z.fenced).length}/${r.chaos.zombies.length}` : '-',
    brokerKills: r.chaos.brokerKills.length,
    stateWipes: r.chaos.stateWipes,
    duplicates: sum(outs.map((o) => o.duplicates)) + sum(v?.model.dlq.map((d) => d.duplicates) ?? []),
    losses: sum(outs.map((o) => o.losses)),
    outOfOrder: sum(outs.map((o) => o.outOfOrder)),
    wrongValues: sum(outs.map((o) => o.wrongValues)),
    dlqExpected: sum(v?.model.dlq.map((d) => d.expected) ?? []),
    dlqFound: sum(v?.model.dlq.map((d) => d.found) ?? []),
    openTransactions: v?.transactions.open.length ?? 0,
    storeMismatches: sum(v?.model.stores.map((s) => s.mismatches) ?? []),
    abortedRecords: sum(Object.values(v?.transactions.abortedRecords ?? {})),
  };
}

const COLUMNS: [keyof Figures, string][] = [
  ['events', 'events'],
  ['kills', 'kills'],
  ['killsInsideOpenTransactions', 'kills inside open txn'],
  ['rebalances', 'rebalances'],
  ['zombiesFenced', 'zombies fenced'],
  ['brokerKills', 'broker kills'],
  ['stateWipes', 'state wipes'],
  ['duplicates', 'duplicates'],
  ['losses', 'losses'],
  ['outOfOrder', 'out of order'],
  ['wrongValues', 'wrong values'],
  ['dlqExpected', 'DLQ expected'],
  ['dlqFound', 'DLQ found'],
  ['openTransactions', 'open txns'],
  ['storeMismatches', 'store mismatches'],
  ['abortedRecords', 'aborted records'],
];

export function tableHeader(): string {
  return `| run | scenario | workload | verdict | ${COLUMNS.map(([, h]) => h).join(' | ')} |\n|${' --- |'.repeat(COLUMNS.length + 4)}`;
}

export function tableRow(r: RunReport): string {
  const f = figures(r);
  return `| ${r.runId} | ${r.scenario} | ${r.workload} | ${r.verdict} | ${COLUMNS.map(([k]) => String(f[k])).join(' | ')} |`;
}

export function markdown(r: RunReport): string {
  const lines = [
    `# Chaos run ${r.runId}: ${r.scenario} / ${r.workload} (${r.profile}) — ${r.verdict}`,
    '',
    `${r.description}. Seed ${r.seed}; ${r.startedAt} → ${r.finishedAt}; brokers ${r.brokers.join(',')}; logs in ${r.logDir}.`,
    '',
    `Code under test: ${r.source.root} (commit ${r.source.commit ?? 'none'}${r.source.uncommittedSrcFiles ? `, ${r.source.uncommittedSrcFiles} uncommitted files under src/` : ''}; src/ sha1 ${r.source.srcSha1}).`,
    '',
    tableHeader(),
    tableRow(r),
    '',
  ];
  if (r.planted) lines.push(`Planted on purpose: ${r.planted}`, '');
  if (r.error) lines.push(`Run error: ${r.error}`, '');
  if (!r.caughtUp) lines.push(`Processors did not consume all input: ${r.lags.slice(0, 12).map((l) => `${l.group} ${l.topic}/${l.partition} at ${l.committed} of ${l.end}`).join(', ')}`, '');
  const problems = r.verification?.problems ?? [];
  lines.push(problems.length ? '## Problems\n' : 'No anomaly found.', ...problems.map((p) => `- ${p}`), '');
  if (r.verification) {
    const dlq = r.verification.model.dlq.map((d) => `${d.topic}: ${Object.entries(d.byCode).map(([c, n]) => `${c} ${n}`).join(', ')}`);
    lines.push(`Input: ${r.verification.model.input.records} records, ${r.verification.model.input.good} good, ${r.verification.model.input.bad} bad (${Object.entries(r.verification.model.input.badByKind).map(([k, n]) => `${k} ${n}`).join(', ')}).`);
    lines.push(`Dead letters expected by reason: ${dlq.join('; ')}.`);
    lines.push(`Model: ${Object.entries(r.verification.model.stats).map(([k, n]) => `${k} ${n}`).join(', ')}.`);
    lines.push(`Records of aborted transactions in the log: ${Object.entries(r.verification.transactions.abortedRecords).map(([t, n]) => `${t} ${n}`).join(', ')}.`);
  }
  if (r.chaos.drainFailures.length) lines.push(`Graceful stops that did not exit 0: ${r.chaos.drainFailures.join('; ')}`);
  lines.push(`Observed in the logs: ${r.observed.rebalances} rebalances (generations), ${r.observed.fencedTasks} task.fenced, ${r.observed.failedTransactions} task.transaction_failed, ${r.observed.instanceStarts} instance starts.`);
  for (const z of r.chaos.zombies) lines.push(`- zombie slot ${z.slot}, paused ${z.pausedMs} ms: ${z.evidence}`);
  return lines.join('\n') + '\n';
}

export function writeReport(dir: string, r: RunReport): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${r.runId}.json`);
  const md = join(dir, `${r.runId}.md`);
  writeFileSync(json, JSON.stringify(r, null, 2));
  writeFileSync(md, markdown(r));
  return { json, md };
}
