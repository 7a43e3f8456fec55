// Two ends of a transaction that are not crashes: `foldstream run` stopped by SIGTERM or SIGINT while a transaction
// is open drains it (the batch in progress commits) and leaves nothing open for the transaction timeout; and a commit
// that fails with an ordinary error (not fencing) aborts, re-initialises the task and loses or repeats nothing.
import test from 'ava';
import { rmSync } from 'node:fs';
import { App } from '../../src/app/app.ts';
import { createTaskProducer } from '../../src/kafka/task-producer.ts';
import type { OffsetsGeneration, TaskProducer, TopicPartitionOffset } from '../../src/kafka/types.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { assertExactlyOnce, cleanUpAfter, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { endOffsets, kafka, openTransactions, readAll } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { Instance, waitFor } from '../helpers/processes.ts';


/** Partitions of the output and the changelog with a transaction open. */
async function open(c: CountingApp): Promise<{ output: number[]; changelog: number[] }> {
  const [output, changelog] = await Promise.all([openTransactions(c.output), openTransactions(c.changelog)]);
  return { output, changelog };
}

const drains = test.macro(async (t, signal: 'SIGTERM' | 'SIGINT') => {
  // Long transactions: one ends with its batch or after 3 s (commitIntervalMs), so a signal can land inside one.
  const c = await countingApp({ partitions: 6, commitIntervalMs: 3000, maxBufferedRecords: 100_000 });
  const stateDir = c.stateDir('s');
  const instances = cleanUpAfter(t, c);
  // A backlog the first instance is still working through when the signal comes, produced while it starts.
  const producing = produceCounting(c.input, 30_000, 211);
  const first = new Instance(c.file, { stateDir, name: 'first' });
  instances.push(first);
  await first.waitReady();
  // Wait for an open transaction on the output (high watermark above the last stable offset) and send the signal
  // right away: what it had written by then must become visible.
  let hwAtSignal = new Map<number, bigint>();
  let lsoAtSignal = new Map<number, bigint>();
  await waitFor(
    async () => {
      [hwAtSignal, lsoAtSignal] = await Promise.all([endOffsets(c.output, 'read_uncommitted'), endOffsets(c.output, 'read_committed')]);
      return [...hwAtSignal].some(([p, hw]) => hw > (lsoAtSignal.get(p) ?? 0n));
    },
    60_000,
    'an open transaction on the output',
    50,
  );
  const signalledAt = Date.now();
  first.kill(signal);
  const code = await Promise.race([first.waitExit(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  t.is(code, 0, `${signal} drains and exits 0 within 20 s (log: ${first.logFile})`);
  const drainMs = Date.now() - signalledAt;
  // The coordinator writes the markers of a transaction that just ended one partition after another; a transaction
  // left open would stay open until transactionTimeoutMs (60 s). Give the markers 5 s.
  await waitFor(async () => {
    const o = await open(c);
    return o.output.length === 0 && o.changelog.length === 0;
  }, 5000, 'no transaction open on the output and the changelog after the exit').catch(() => undefined);
  t.deepEqual(await open(c), { output: [], changelog: [] }, 'the drain ended its transactions: none is left to the transaction timeout');
  // Committed, not aborted: everything written before the signal is visible to read_committed, and nothing
  // written to the output was aborted (read_uncommitted sees no record that read_committed does not).
  const lsoAfter = await endOffsets(c.output, 'read_committed');
  const drained = [...hwAtSignal].filter(([p, hw]) => hw > (lsoAtSignal.get(p) ?? 0n));
  t.true(drained.length > 0, 'a transaction with records in it was open when the signal was sent');
  for (const [p, hw] of drained) t.true((lsoAfter.get(p) ?? 0n) >= hw, `output partition ${p}: the open transaction's records were committed`);
  t.is((await readAll([c.output], { readUncommitted: true })).length, (await readAll([c.output])).length, 'no output record was aborted');
  // What the instance said: the signal, a stop, every task closed while running, no failed or fenced transaction.
  t.like(first.events('signal')[0], { signal });
  t.is(first.events('app.stopping').length, 1);
  t.is(first.events('app.stopped').length, 1, 'the app stopped');
  const closed = first.events('task.closed');
  t.deepEqual(closed.map((l) => Number(l.partition)).sort(), [0, 1, 2, 3, 4, 5], 'every task was closed');
  t.true(closed.every((l) => l.was === 'running'), 'each task was running when it was closed');
  t.deepEqual([...first.events('task.transaction_failed'), ...first.events('task.fenced'), ...first.events('app.stop_failed')], []);
  t.log(`${signal}: drained and exited in ${drainMs} ms; open transaction on output partitions ${drained.map(([p]) => p).join(',')}`);

  // A second instance on the same state directory continues where the drain left off.
  const model = await producing;
  const second = new Instance(c.file, { stateDir, name: 'second' });
  instances.push(second);
  await second.waitReady();
  await produceCounting(c.input, 2000, 211, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input, 60_000);
  t.is(await second.stop(), 0);
  const running = second.events('task.running');
  t.is(running.length, 6);
  t.true(running.every((l) => Number(l.restoredRecords) === 0), 'a clean drain leaves no committed write for a restart to replay');
  await assertExactlyOnce(t, c, model);
  t.deepEqual(await open(c), { output: [], changelog: [] });
});

test('SIGTERM while a transaction is open: the batch in progress commits, nothing is left open, the process exits 0 and a restart continues exactly once', drains, 'SIGTERM');
test('SIGINT while a transaction is open drains the same way', drains, 'SIGINT');

test('a commit that fails with an ordinary error aborts the runner\'s transaction, re-initialises its tasks and loses or repeats nothing', async (t) => {
  // at most 100 records per transaction (the runner's, covering the 3 tasks), so it commits about 15 times.
  const c = await countingApp({ partitions: 3, maxBufferedRecords: 100 });
  t.teardown(async () => {
    if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  });
  const model = await produceCounting(c.input, 1500, 97);
  const log = memoryLogger();
  const app = new App(loadTopology(c.file), { log, stateDir: c.stateDir('s'), httpPort: 0 });
  // The producers' class is not exported: its prototype, from one that never connects.
  const proto = Object.getPrototypeOf(createTaskProducer(kafka('prototype-only'), { transactionTimeoutMs: 60_000 })) as TaskProducer;
  const { sendOffsets, commit } = proto;
  // The third commit with offsets of partition 1 of THIS test's group (other tests of this file run alongside) fails
  // once, after its outputs, changelog records and offsets were sent, as an EndTxn that errors without fencing would.
  const group = `${c.app}-counter`;
  const doomed = new WeakSet<TaskProducer>();
  let victimCommits = 0;
  let injected = 0;
  proto.sendOffsets = async function (this: TaskProducer, groupId: string, offsets: TopicPartitionOffset[], generation?: OffsetsGeneration) {
    await sendOffsets.call(this, groupId, offsets, generation);
    if (groupId === group && offsets.some((o) => o.partition === 1) && ++victimCommits === 3) doomed.add(this);
  };
  proto.commit = function (this: TaskProducer) {
    if (doomed.has(this)) {
      doomed.delete(this);
      injected++;
      return Promise.reject(new Error('injected: the commit failed (not a fencing error)'));
    }
    return commit.call(this);
  };
  try {
    await app.start();
    await waitForCaughtUp(group, c.input, 60_000);
  } finally {
    proto.sendOffsets = sendOffsets;
    proto.commit = commit;
    await app.stop();
  }
  t.is(injected, 1, 'the fault fired once');
  const failed = log.events('runner.transaction_aborted');
  t.is(failed.length, 1, JSON.stringify(log.lines.filter((l) => l.level !== 'debug' && l.level !== 'info').slice(0, 10)));
  t.like(failed[0], { code: 'TRANSACTION_FAILED', processor: 'counter' });
  t.deepEqual(log.events('task.fenced'), [], 'not taken for fencing');
  const running = log.events('task.running');
  t.is(running.filter((e) => e.partition === 1).length, 2, 'partition 1 was re-initialised after the failure');
  t.true(running.filter((e) => e.partition !== 1).length <= 4, 'the other tasks ran at most twice (once more if they had work in the transaction)');
  await assertExactlyOnce(t, c, model);
  // The aborted transaction was written (read_uncommitted sees its outputs and changelog records) and is invisible
  // to read_committed: every record it held was processed again and is there once among the committed ones.
  const committed = await readAll([c.output]);
  const all = await readAll([c.output], { readUncommitted: true });
  const committedSources = new Set(committed.map((r) => (JSON.parse(String(r.value)) as { source: string }).source));
  const aborted = all.length - committed.length;
  t.true(aborted > 0, `the aborted transaction's outputs are in the log (${aborted})`);
  t.true(all.every((r) => committedSources.has((JSON.parse(String(r.value)) as { source: string }).source)), 'each aborted output was produced again, committed');
  t.true((await readAll([c.changelog], { readUncommitted: true })).length > (await readAll([c.changelog])).length, 'the aborted changelog records are invisible');
  t.deepEqual(await open(c), { output: [], changelog: [] });
});
