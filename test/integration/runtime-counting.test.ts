// The runtime end to end on the real broker: a counting processor over thousands of records on 12 partitions.
import test from 'ava';
import { rmSync } from 'node:fs';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { changelogState, checkCounts, countingApp, produceCounting, sortedObject, inputCounts, waitForCaughtUp } from '../helpers/counting-app.ts';
import { readAll } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { metricValue } from '../helpers/processes.ts';

test('a counting processor over 6000 records on 12 partitions emits 1..N per key exactly once and stores N', async (t) => {
  const c = await countingApp({ partitions: 12, commitIntervalMs: 50, maxBufferedRecords: 200 });
  const model = await produceCounting(c.input, 6000, 97);
  const log = memoryLogger();
  const app = new App(loadTopology(c.file), { log, stateDir: c.stateDir('a'), httpPort: 0 });
  await app.start();
  try {
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    const metrics = await app.registry.metrics();
    t.true(metricValue(metrics, 'foldstream_transactions_total', { result: 'committed' }) > 12);
    // A fresh broker can fail a first transaction (a leader not known yet on a just-created topic): the task aborts
    // and processes those records again, so they are consumed twice, and the outputs below must still be exact.
    const aborted = metricValue(metrics, 'foldstream_transactions_total', { result: 'aborted' });
    const consumed = metricValue(metrics, 'foldstream_records_consumed_total', { processor: 'counter' });
    for (const f of log.events('task.transaction_failed')) t.log(`aborted: partition ${String(f.partition)}: ${String(f.error)}`);
    if (aborted === 0) t.is(consumed, 6000, 'without an abort every record is consumed once');
    else t.true(consumed > 6000, 'the records of the aborted transactions were consumed again');
    t.is(aborted, log.events('task.transaction_failed').length, 'every aborted transaction is logged with its reason');
  } finally {
    await app.stop();
  }
  const check = checkCounts(await readAll([c.output]));
  t.deepEqual(check.duplicates, []);
  t.deepEqual(check.gaps, []);
  t.deepEqual(check.outOfOrder, []);
  t.is(check.outputs, 6000);
  t.deepEqual(sortedObject(await inputCounts(c.input)), sortedObject(model), 'the input holds what the test sent');
  t.deepEqual(sortedObject(check.counts), sortedObject(model));
  t.deepEqual(sortedObject(await changelogState(c.changelog)), sortedObject(model));
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});
