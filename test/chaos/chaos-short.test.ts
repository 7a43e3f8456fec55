/**
 * The short chaos profile inside `npm test`: real foldstream processes against the real broker, kill -9 inside open
 * transactions (the counting workload; the event-sourcing one: aggregate + projection + groupBy projection + chained
 * projection; the orders one: a declarative aggregate partitioned by tenant with steps, a module projection with
 * filter and route steps, a groupBy by an object key, a module upcaster; and the saga one: the orders example's saga
 * over three declarative aggregates; the joins one: a window and a stream-stream join) and a zombie paused past its
 * session timeout,
 * bad input mixed in, then the independent verifier.
 * The full profile runs with `npm run chaos -- --profile full` (docs/reliability.md).
 *
 * CHAOS_PLANT=duplicate|loss|store|open-transaction|dlq-missing|dlq-extra (group-view|group-store: the groupBy
 * projections of the bank and orders workloads only; chain-duplicate|chain-loss: the bank's chained projection only;
 * command-duplicate: the saga workload only; the other tests error out with them) plants that anomaly before
 * verifying: the test must then fail (this is how to see that it can).
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { assertRunClean } from './assert-run.ts';
import { runChaos } from './orchestrator.ts';
import { PROFILES, type PlantKind, type RunOptions } from './profiles.ts';
import { markdown } from './report.ts';

const reportDir = fileURLToPath(new URL('./reports/', import.meta.url));
const plant = process.env.CHAOS_PLANT as PlantKind | undefined;

async function run(t: import('ava').ExecutionContext, o: Partial<RunOptions>) {
  t.timeout(15 * 60_000, 'a guard against a hung run, not a timing assertion');
  const { report, files } = await runChaos({ ...PROFILES.short, reportDir, ...o, ...(plant ? { plant } : {}) }, (l) => t.log(l));
  t.log(markdown(report));
  t.log(`report: ${files.md}`);
  return report;
}

test.serial('kill -9 at random moments, inside open transactions: every output exactly once, stores equal to the model (counter)', async (t) => {
  const report = await run(t, { scenario: 'kill', workload: 'counter' });
  assertRunClean(t, report);
  t.true(report.chaos.kills.length >= 1, 'no kill happened');
  t.true(report.generator.bad > 0, 'no bad input was mixed in');
});

test.serial('kill -9 inside open transactions: events, replies, views (deleted and created again), grouped and chained views exactly once, aggregate, view and group stores equal to the model (bank)', async (t) => {
  const report = await run(t, { scenario: 'kill', workload: 'bank', events: 12_000, kills: 4 });
  assertRunClean(t, report);
  t.true(report.chaos.kills.length >= 1, 'no kill happened');
  const stats = report.verification!.model.stats;
  t.true((stats.conflict ?? 0) > 0 && (stats['rejected INSUFFICIENT_FUNDS'] ?? 0) > 0 && (stats.repeatedCommandIds ?? 0) > 0, `the workload missed a path: ${JSON.stringify(stats)}`);
  t.true((stats.bandJoins ?? 0) > 0 && (stats.bandLeaves ?? 0) > 0 && (stats.bandStays ?? 0) > 0 && (stats.bandTombstones ?? 0) > 0, `the groupBy projection missed a path: ${JSON.stringify(stats)}`);
  t.true((stats.tierChanges ?? 0) > 0 && (stats.tiersGold ?? 0) > 0 && (stats.tiersSilver ?? 0) > 0, `the chained projection missed a path: ${JSON.stringify(stats)}`);
  t.true((stats.accountsClosed ?? 0) > 0 && (stats.accountsReopened ?? 0) > 0 && (stats.bandLeavesOnDelete ?? 0) > 0 && (stats.tierDeletions ?? 0) > 0, `no view was deleted and created again: ${JSON.stringify(stats)}`);
});

test.serial('kill -9 inside open transactions: a declarative aggregate partitioned by tenant behind filter and map steps, a module projection behind filter and route steps, a groupBy by an object key, a module upcaster: every output exactly once, stores equal to the model (orders)', async (t) => {
  const report = await run(t, { scenario: 'kill', workload: 'orders', events: 8000, kills: 3 });
  assertRunClean(t, report);
  t.true(report.chaos.kills.length >= 1, 'no kill happened');
  const s = report.verification!.model.stats;
  const paths = ['conflict', 'rejected INVALID_PRICE', 'rejected COMMAND_UNKNOWN', 'repeatedCommandIds', 'twoEventCommands', 'ordersPlacedAgain', 'orderIdsInSeveralTenants', 'pings', 'handlerFailures', 'filteredEvents', 'shipments'];
  t.deepEqual(paths.filter((p) => !((s[p] ?? 0) > 0)), [], `the workload missed a path: ${JSON.stringify(s)}`);
  t.true((s.sizeJoins ?? 0) > 0 && (s.sizeLeaves ?? 0) > 0 && (s.sizeStays ?? 0) > 0 && (s.sizeLeavesOnDelete ?? 0) > 0, `the groupBy projection missed a path: ${JSON.stringify(s)}`);
});

test.serial('kill -9 inside open transactions: the orders example\'s saga over three declarative aggregates, correlated through a repartition topic: one saga per placed order, ended once, its commands, log and store exactly once, stock conserved (saga)', async (t) => {
  const report = await run(t, { scenario: 'kill', workload: 'saga', events: 1200, kills: 2, durationMs: 15_000 });
  assertRunClean(t, report);
  t.true(report.chaos.kills.length >= 1, 'no kill happened');
  const s = report.verification!.model.stats;
  const paths = ['sagasCompleted', 'sagasCompensated', 'sagasFailed', 'rejected BAD_QUANTITY', 'rejected ORDER_EXISTS', 'retriedCommandIds'];
  t.deepEqual(paths.filter((p) => !((s[p] ?? 0) > 0)), [], `the workload missed a path: ${JSON.stringify(s)}`);
  t.is(s.sagasRunning, 0, `sagas left running: ${JSON.stringify(s)}`);
});

test.serial('kill -9 inside open transactions: a window (updates, late orders dead-lettered) and a stream-stream join of orders and payments: every window update and every pair exactly once, windows and join buffers equal to the model (joins)', async (t) => {
  const report = await run(t, { scenario: 'kill', workload: 'joins', events: 6000, kills: 3, durationMs: 25_000 });
  assertRunClean(t, report);
  t.true(report.chaos.kills.length >= 1, 'no kill happened');
  const s = report.verification!.model.stats;
  const paths = ['late', 'ignored', 'keyMismatchJoined', 'unusual', 'windows', 'pairs'];
  t.deepEqual(paths.filter((p) => !((s[p] ?? 0) > 0)), [], `the workload missed a path: ${JSON.stringify(s)}`);
});

test.serial('a zombie paused past its session timeout is fenced and leaves no duplicate (counter)', async (t) => {
  const report = await run(t, { scenario: 'zombie', workload: 'counter', kills: 1, events: 12_000, targetOpenTransactions: 1 });
  assertRunClean(t, report);
  t.is(report.chaos.zombies.length, 1, 'no zombie round happened');
  const z = report.chaos.zombies[0]!;
  // Under exactly-once v2 a runner's transaction over this trickle holds its outputs until the commit and is open on
  // them only for the few ms of its produce, offsets and EndTxn, so a SIGSTOP often finds none open (8 tries). The
  // run is then still checked for duplicates and losses above; the fencing of a zombie frozen inside its commit is
  // proven deterministically by eos-v2.test.ts (a, b, f), which stops the process at a chosen point of the commit.
  if (z.openAtPause > 0) t.true(z.fenced, `a zombie frozen inside a transaction was not fenced: ${z.evidence}`);
  else t.log(`the zombie was not frozen inside a transaction (${z.evidence}); fencing is proven by eos-v2.test.ts`);
});
