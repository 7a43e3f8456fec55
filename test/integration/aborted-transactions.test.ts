// Input written in transactions by several producers, aborted in the opposite order they began (as a groupBy
// projection's repartition topic gets from its first-stage tasks): the runtime must process only committed records.
// kafkajs's own read_committed filter fails this
// (test/unit/read-committed-filter.test.ts); foldstream installs its own (src/kafka/read-committed-filter.ts).
import test from 'ava';
import { rmSync } from 'node:fs';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { changelogState, checkCounts, countingApp, sortedObject, waitForCaughtUp } from '../helpers/counting-app.ts';
import { kafka, readAll, unique } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';

test('records of transactions aborted out of order by two producers are never processed; committed ones are, once', async (t) => {
  const c = await countingApp({ partitions: 1 });
  t.teardown(async () => {
    rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  });
  const producer = (id: string) => kafka().producer({ transactionalId: unique(`writer-${id}`), idempotent: true, maxInFlightRequests: 1 });
  const [a, b, committer] = [producer('a'), producer('b'), producer('c')];
  await Promise.all([a.connect(), b.connect(), committer.connect()]);
  const records = (key: string, n: number) => Array.from({ length: n }, (_, i) => ({ key, value: JSON.stringify({ i }), partition: 0 }));
  try {
    const ta = await a.transaction();
    await ta.send({ topic: c.input, messages: records('aborted-a', 5) });
    const tb = await b.transaction();
    await tb.send({ topic: c.input, messages: records('aborted-b', 5) });
    const tc = await committer.transaction();
    await tc.send({ topic: c.input, messages: records('committed', 3) });
    await tb.abort(); // B began second and is aborted first
    await ta.abort();
    await tc.commit();
    const again = await committer.transaction();
    await again.send({ topic: c.input, messages: records('committed', 2) });
    await again.commit();
  } finally {
    await Promise.all([a.disconnect(), b.disconnect(), committer.disconnect()]);
  }

  const run = async (stateDir: string) => {
    const app = new App(loadTopology(c.file), { log: memoryLogger(), stateDir, httpPort: 0 });
    await app.start();
    try {
      await waitForCaughtUp(`${c.app}-counter`, c.input);
    } finally {
      await app.stop();
    }
  };
  await run(c.stateDir('a'));
  const check = checkCounts(await readAll([c.output]));
  t.deepEqual(sortedObject(check.counts), { committed: 5 }, 'only committed records were counted');
  t.deepEqual(check.duplicates, []);
  t.deepEqual(sortedObject(await changelogState(c.changelog)), { committed: 5 });
});
