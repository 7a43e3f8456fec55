// The broker itself fails under a running processor: a single-node broker of this test's own (not the shared one)
// is killed with kill -9 while transactions are open and started again on the same data directory some seconds
// later. A fault injector holds the processor runner's commits before their EndTxn, so the kill lands inside an open
// transaction for certain, and its EndTxn then goes to a dead broker. The processor keeps running: the runner throws
// its producer away and its tasks start again once the broker is back (the new producer's InitProducerId aborts what
// the restarted broker still holds open) and process the aborted records again. Exactly once: every output once, the store equals the model, no
// transaction left open. The chaos `broker` scenario kills brokers of three; this test runs in npm test.
// No EndTxn is in flight at the kill: a transaction between its EndTxn and its markers can be left hanging by a
// restarting Kafka 4.4 broker (KAFKA-20734; docs/exactly-once.md, under the failure table).
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCluster, killNode, pidOf, portAnswers, startCluster, startNode, stopCluster, waitForCluster, type ClusterOptions } from '../../scripts/kafka/cluster.ts';
import { assertExactlyOnce, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { openTransactions, readAll, unique } from '../helpers/kafka.ts';
import { Instance, waitFor, type LogLine } from '../helpers/processes.ts';

const HOLD_COMMITS = fileURLToPath(new URL('../fixtures/faults/hold-commits.ts', import.meta.url));

/** A client port (and its controller port, 10000 above) that nothing answers on, from a few beside 9392. */
async function freeBrokerPort(): Promise<number> {
  for (let port = 9392; port < 9400; port++) {
    if (!(await portAnswers(port)) && !(await portAnswers(port + 10_000))) return port;
  }
  throw new Error('ports 9392-9399 (and 19392-19399) are all in use');
}

/** The source (input topic, partition, offset) of each output record: an input processed twice shows up here. */
function sources(records: { value: Buffer | null }[]): string[] {
  return records.map((r) => (JSON.parse(String(r.value)) as { source: string }).source);
}

test('kill -9 of the broker while transactions are open, and a restart on the same data: the processor recovers and everything is there exactly once', async (t) => {
  const opts: ClusterOptions = { nodes: 1, basePort: await freeBrokerPort(), heap: '256m', name: unique('broker-restart'), fresh: true };
  const cluster = describeCluster(opts);
  const instances: Instance[] = [];
  let c: CountingApp | undefined;
  t.teardown(async () => {
    for (const i of instances) i.kill();
    await stopCluster(cluster);
    if (!process.env.KEEP_TEST_DIRS) {
      rmSync(cluster.dir, { recursive: true, force: true });
      if (c) rmSync(c.dir, { recursive: true, force: true });
    }
  });
  await startCluster(opts);
  const brokers = cluster.brokers;

  // Transactions of 500 ms, so most of the time one is open; short enough that the backlog takes several of them (the
  // runner's one transaction per interval covers every task: at 2 s the whole backlog fitted in two commits, and the
  // third, the one the fault holds, never came).
  c = await countingApp({ partitions: 6, commitIntervalMs: 500, maxBufferedRecords: 100_000, brokers });
  const group = `${c.app}-counter`;
  // The backlog is all written before the processor starts: the test's producer must not meet the dead broker.
  const model = await produceCounting(c.input, 60_000, 211, undefined, brokers);
  const release = join(c.dir, 'release-commits');
  const first = new Instance(c.file, {
    stateDir: c.stateDir('s'),
    name: 'first',
    preload: [HOLD_COMMITS],
    env: { FOLDSTREAM_TEST_HOLD_COMMITS: release, FOLDSTREAM_TEST_HOLD_COMMITS_AT: '3', FOLDSTREAM_KAFKAJS_LOG: 'warn' },
  });
  instances.push(first);

  // From the third commit on, commits wait before their EndTxn: that transaction is open (high watermark above the
  // last stable offset on the output), and no EndTxn is in flight. `held`: the input partitions whose offsets it carries.
  const heldLine = await first.waitLine((l) => l.event === 'fault.commits_held', 120_000, 'commits held by the fault injector');
  const held = heldLine.partitions as number[];
  t.true(held.length > 0, 'a commit is held');
  const open = await openTransactions(c.output, brokers);
  t.true(held.every((p) => open.includes(p)), `the held transactions are open on the output (held: ${held.join(',')}; open: ${open.join(',')})`);
  const logIndexAtKill = first.lines.length;
  killNode(cluster, 1);
  await waitFor(() => pidOf(cluster, 1) === undefined, 30_000, 'the broker process to die');
  t.log(`killed the broker at 127.0.0.1:${cluster.basePort}`);
  writeFileSync(release, '');

  // The processor keeps running while the broker is gone; the held commit fails.
  await waitFor(() => first.lines.slice(logIndexAtKill).some((l) => l.event === 'runner.transaction_aborted') || !first.alive, 60_000, 'the held commit to fail');
  await new Promise((r) => setTimeout(r, 5000));
  t.true(first.alive, `the processor keeps running without its broker (log: ${first.logFile})`);

  startNode(cluster, 1);
  await waitForCluster(cluster);
  t.log('restarted the broker on the same data directory');

  // More input after the restart, and the same process works through all of it.
  await produceCounting(c.input, 10_000, 211, model, brokers);
  await waitForCaughtUp(group, c.input, 180_000, brokers);
  t.is(await first.stop(), 0, 'SIGTERM drains and exits 0');

  // What the runtime went through: the held transaction failed, then its tasks re-initialised and ran again.
  const after = first.lines.slice(logIndexAtKill);
  const failed = after.filter((l) => l.event === 'runner.transaction_aborted');
  t.true(failed.length > 0, 'the held transaction failed when the broker died');
  t.false(failed.some((l) => l.code === 'PRODUCER_FENCED' || l.code === 'GENERATION_FENCED'), 'not taken for fencing: the tasks were never another instance\'s');
  // Each task of the failed transaction starts again from step 1 on its own (task.running again after the abort).
  const failedAt = after.findIndex((l) => l.event === 'runner.transaction_aborted');
  for (const p of held) {
    const own = after.slice(failedAt + 1).filter((l) => l.partition === p && (l.event === 'task.init_failed' || l.event === 'task.running'));
    t.true(own.length > 0, `task ${p} re-initialises after the failed transaction`);
  }
  t.true(after.some((l) => l.event === 'task.running'), 'the tasks run again');
  t.log(`${failed.length} failed transaction(s) (${failed.map((l: LogLine) => String(l.code)).join(', ')}), held partitions ${held.join(',')}; ` +
    `events: ${JSON.stringify(Object.fromEntries([...new Set(after.map((l) => l.event))].map((e) => [e, after.filter((l) => l.event === e).length])))}`);

  await assertExactlyOnce(t, c, model, brokers);

  // The transaction open at the kill was aborted after the restart: its outputs are in the log, invisible to
  // read_committed, and each was produced again in a committed transaction.
  const committed = await readAll([c.output], { brokers });
  const all = await readAll([c.output], { brokers, readUncommitted: true });
  const committedSources = new Set(sources(committed));
  t.true(all.length > committed.length, `the aborted transaction's outputs are in the log (${all.length - committed.length})`);
  t.true(sources(all).every((s) => committedSources.has(s)), 'each aborted output was produced again, committed');
});
