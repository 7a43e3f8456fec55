// Stores survive restarts: they continue from their checkpoint, and are rebuilt from the changelog when the
// state directory is gone or a store is corrupt.
import test from 'ava';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { LevelDbStore, StoreCorruptError } from '../../src/state/leveldb-store.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { assertExactlyOnce, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { createTopics, kafka, readAll } from '../helpers/kafka.ts';
import { FoldstreamError } from '../../src/errors.ts';
import { memoryLogger, type MemoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';

const KEYS = 97;

async function runUntilCaughtUp(c: CountingApp, stateDir: string): Promise<{ log: MemoryLogger; restored: number }> {
  const log = memoryLogger();
  const app = new App(loadTopology(c.file), { log, stateDir, httpPort: 0 });
  await app.start();
  try {
    await waitForCaughtUp(`${c.app}-counter`, c.input);
  } finally {
    await app.stop();
  }
  const restored = log.events('task.running').reduce((sum, e) => sum + Number(e.restoredRecords), 0);
  return { log, restored };
}


/**
 * Another producer's transaction on partition 0 of the changelog, left open until abort(): it stands for one whose
 * markers a restarting broker never wrote (docs/exactly-once.md), holding the last stable offset below it.
 */
async function openTransactionOnChangelog(c: CountingApp): Promise<{ write(): Promise<void>; abort(): Promise<void> }> {
  const producer = kafka('foreign').producer({ transactionalId: `${c.app}-foreign`, maxInFlightRequests: 1, idempotent: true, transactionTimeout: 300_000 });
  await producer.connect();
  const tx = await producer.transaction();
  return {
    write: async () => void (await tx.send({ topic: c.changelog, messages: [{ key: '\u0000foreign', value: 'held open', partition: 0 }] })),
    abort: async () => {
      await tx.abort().catch(() => undefined); // aborted already
      await producer.disconnect();
    },
  };
}

test('a clean restart continues from the checkpoint: nothing is restored and the counts go on', async (t) => {
  const c = await countingApp({ partitions: 6 });
  const stateDir = c.stateDir('s');
  const model = await produceCounting(c.input, 3000, KEYS);
  const first = await runUntilCaughtUp(c, stateDir);
  t.is(first.restored, 0);
  await produceCounting(c.input, 1000, KEYS, model);
  const second = await runUntilCaughtUp(c, stateDir);
  t.true(second.log.events('task.running').length === 6, 'all six tasks ran');
  // The checkpoint is written with the data after every commit: a clean stop leaves nothing to replay.
  t.is(second.restored, 0);
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('with the state directory deleted, a restart restores every key from the changelog and the counts go on', async (t) => {
  const c = await countingApp({ partitions: 6 });
  const stateDir = c.stateDir('s');
  const model = await produceCounting(c.input, 3000, KEYS);
  await runUntilCaughtUp(c, stateDir);
  rmSync(stateDir, { recursive: true, force: true });
  await produceCounting(c.input, 1000, KEYS, model);
  const second = await runUntilCaughtUp(c, stateDir);
  // every key comes back (plus position markers), or the counts below would restart at 1
  t.true(second.restored >= KEYS, `restored ${second.restored} records`);
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('a corrupt store is detected, wiped and restored from its changelog, and the counts go on', async (t) => {
  const c = await countingApp({ partitions: 3 });
  const stateDir = c.stateDir('s');
  const model = await produceCounting(c.input, 1500, KEYS);
  await runUntilCaughtUp(c, stateDir);
  // Damage partition 1's store: LevelDB cannot open a database whose CURRENT file is garbage.
  const storeDir = join(stateDir, c.app, 'counter', '1', 'counts');
  t.true(readdirSync(storeDir).includes('CURRENT'));
  writeFileSync(join(storeDir, 'CURRENT'), 'garbage without newline');
  await produceCounting(c.input, 600, KEYS, model);
  const second = await runUntilCaughtUp(c, stateDir);
  const wiped = second.log.events('store.wiped');
  t.is(wiped.length, 1);
  t.like(wiped[0], { store: 'counts', partition: 1 });
  const p1 = second.log.events('task.running').find((e) => e.partition === 1);
  t.true(Number(p1?.restoredRecords) > 0, 'partition 1 was restored from its changelog');
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('a store that fails to read while processing is wiped and restored, and the record is processed again, not dead-lettered', async (t) => {
  const c = await countingApp({ partitions: 3 });
  const stateDir = c.stateDir('s');
  const model = await produceCounting(c.input, 1500, KEYS);
  await runUntilCaughtUp(c, stateDir);
  // Partition 1's store fails its 20th read of the next run the way a damaged block does (LevelDbStore turns
  // LevelDB's read errors into STORE_CORRUPT). Only this test's store: other tests of this file run alongside.
  const victim = join(stateDir, c.app, 'counter', '1', 'counts');
  const get = LevelDbStore.prototype.get;
  let reads = 0;
  LevelDbStore.prototype.get = function (this: LevelDbStore, key: string) {
    if (this.dir === victim && ++reads === 20) return Promise.reject(new StoreCorruptError(this.name, this.dir, new Error('Corruption: block checksum mismatch')));
    return get.call(this, key);
  };
  try {
    await produceCounting(c.input, 600, KEYS, model);
    const second = await runUntilCaughtUp(c, stateDir);
    t.true(reads >= 20, 'the fault fired');
    const failed = second.log.events('task.transaction_failed');
    t.is(failed.length, 1);
    t.like(failed[0], { code: 'STORE_CORRUPT', partition: 1 });
    const p1 = second.log.events('task.running').filter((e) => e.partition === 1);
    t.is(p1.length, 2, 'partition 1 started again after the failure');
    t.true(Number(p1[1]?.restoredRecords) > 0, 'its wiped store was restored from the changelog');
  } finally {
    LevelDbStore.prototype.get = get;
  }
  t.deepEqual(await readAll([c.dlq]), [], 'no record was dead-lettered for the store\'s fault');
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('the app does not start on a changelog with the wrong partition count or one that is not compacted, and says what to change', async (t) => {
  for (const [what, topic, expected] of [
    ['partitions', { numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }, /has 2 partitions, declared 3/],
    ['cleanup.policy', { numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }, /config cleanup\.policy is "delete" on the broker, declared "compact"; set it with kafka-configs\.sh/],
  ] as const) {
    const c = await countingApp({ partitions: 3 });
    await createTopics([{ topic: c.changelog, ...topic, configEntries: [...topic.configEntries] }]);
    const app = new App(loadTopology(c.file), { log: memoryLogger(), stateDir: c.stateDir('s'), httpPort: 0 });
    const e = await t.throwsAsync(app.start(), { instanceOf: FoldstreamError }, what);
    t.is(e?.code, 'TOPIC_MISMATCH', what);
    t.regex(e?.message ?? '', new RegExp(`topic "${c.changelog}" \\(changelog of processor counter, store counts\\)`), what);
    t.regex(e?.message ?? '', expected, what);
    await app.stop();
    rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  }
});

test('a store ahead of its changelog because a transaction there has no marker yet is kept, not wiped: nothing is processed twice', async (t) => {
  // What a broker that restarts as it commits can leave (docs/exactly-once.md): records committed by the
  // coordinator, but the partition's last stable offset held below them by a transaction without its marker. Here
  // the open transaction is another producer's, on the changelog partition, while the app commits past it.
  const c = await countingApp({ partitions: 1 });
  const stateDir = c.stateDir('s');
  const model = await produceCounting(c.input, 600, KEYS);
  const open = await openTransactionOnChangelog(c);
  try {
    // The app runs while the transaction opens, and commits past it: its checkpoint ends above the last stable offset.
    const log = memoryLogger();
    const second = new App(loadTopology(c.file), { log, stateDir, httpPort: 0 });
    await second.start();
    try {
      await waitForCaughtUp(`${c.app}-counter`, c.input);
      await open.write();
      await produceCounting(c.input, 300, KEYS, model);
      await waitForCaughtUp(`${c.app}-counter`, c.input);
    } finally {
      await second.stop();
    }
    await produceCounting(c.input, 300, KEYS, model);
    const third = await runUntilCaughtUp(c, stateDir);
    t.like(third.log.events('store.changelog_transaction_open')[0], { store: 'counts', partition: 0 });
    t.deepEqual(third.log.events('store.checkpoint_ahead_of_changelog'), [], 'the store was not wiped');
    t.is(third.restored, 0);
  } finally {
    await open.abort();
  }
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('a task with no state of its own waits while a transaction without markers lies beyond what it can restore, and starts once it is aborted', async (t) => {
  const c = await countingApp({ partitions: 1 });
  const model = await produceCounting(c.input, 600, KEYS);
  await runUntilCaughtUp(c, c.stateDir('first'));
  // an open transaction on the changelog after everything the task committed
  const open = await openTransactionOnChangelog(c);
  await open.write();
  await produceCounting(c.input, 300, KEYS, model);
  const log = memoryLogger();
  const app = new App(loadTopology(c.file), { log, stateDir: c.stateDir('fresh'), httpPort: 0 });
  await app.start();
  try {
    // exactly-once v2: a new owner waits for the previous writer's transaction before it restores (task.ts, step 1)
    await waitFor(() => log.events('task.waiting_for_previous_transaction').some((e) => e.holds === `changelog ${c.changelog}-0`), 60_000, 'the task to wait');
    await new Promise((r) => setTimeout(r, 2000));
    t.deepEqual(log.events('task.running'), [], 'it does not run while the transaction is open');
    await open.abort();
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    t.is(log.events('task.running').length, 1);
  } finally {
    await app.stop();
    await open.abort();
  }
  await assertExactlyOnce(t, c, model);
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});
