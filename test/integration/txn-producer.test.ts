// The task producer (src/kafka/txn-producer.ts) against the real broker: transactions commit and abort as Kafka
// says, InitProducerId fences a zombie, and the wire cost of one commit — counted at kafkajs's connections, below
// every client — is the lean one: per transaction one AddPartitionsToTxn, one AddOffsetsToTxn, one Produce per
// leader broker, one TxnOffsetCommit, one EndTxn, and no FindCoordinator once the coordinators are known.
import test from 'ava';
import { createRequire } from 'node:module';
import { createTaskProducer } from '../../src/kafka/task-producer.ts';
import type { OutgoingRecord, TaskProducer } from '../../src/kafka/types.ts';
import { FoldstreamError } from '../../src/errors.ts';
import { createTopics, deleteTopics, kafka, readAll, unique, withAdmin } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/processes.ts';

const require = createRequire(import.meta.url);

/** Counts the requests every kafkajs connection sends, by API name, while `fn` runs (tagged by client id). */
async function countRequests<T>(clientId: string, fn: () => Promise<T>): Promise<{ result: T; counts: Map<string, number> }> {
  const Connection = require('kafkajs/src/network/connection.js') as { prototype: { send(this: { clientId: string }, r: { request: { apiName: string } }): Promise<unknown> } };
  const send = Connection.prototype.send;
  const counts = new Map<string, number>();
  Connection.prototype.send = function (this: { clientId: string }, r) {
    if (this.clientId === clientId) counts.set(r.request.apiName, (counts.get(r.request.apiName) ?? 0) + 1);
    return send.call(this, r);
  };
  try {
    return { result: await fn(), counts };
  } finally {
    Connection.prototype.send = send;
  }
}

const rec = (topic: string, partition: number, value: string): OutgoingRecord => ({ topic, partition, key: Buffer.from(value), value: Buffer.from(value) });

async function committedOffset(groupId: string, topic: string): Promise<string | undefined> {
  return withAdmin(async (admin) => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions.find((p) => p.partition === 0)?.offset);
}

test('commits are visible to read_committed with their offsets, aborts are not; ends are the offsets after each partition', async (t) => {
  const [out, log, input] = [unique('txp-out'), unique('txp-log'), unique('txp-in')];
  const groupId = unique('txp-group');
  await createTopics([
    { topic: out, numPartitions: 3 },
    { topic: log, numPartitions: 3 },
    { topic: input, numPartitions: 1 },
  ]);
  const p = createTaskProducer(kafka(), { transactionalId: unique('txp'), transactionTimeoutMs: 30_000, groupId });
  try {
    await p.init();
    await p.begin();
    const ends = await p.send([rec(out, 0, 'a'), rec(out, 2, 'b'), rec(log, 1, 'c'), rec(out, 0, 'd')]);
    t.deepEqual(ends, new Map([[`${out}:0`, 2n], [`${out}:2`, 1n], [`${log}:1`, 1n]]));
    await p.sendOffsets(groupId, [{ topic: input, partition: 0, offset: '5' }]);
    await p.commit();
    await p.begin();
    await p.send([rec(out, 1, 'aborted'), rec(log, 1, 'aborted')]);
    await p.sendOffsets(groupId, [{ topic: input, partition: 0, offset: '9' }]);
    await p.abort();
    await p.begin();
    const later = await p.send([rec(out, 0, 'e'), rec(log, 1, 'f')]);
    t.deepEqual(later, new Map([[`${out}:0`, 4n], [`${log}:1`, 5n]]), 'after the first commit marker (offset 2) and the aborted record with its marker');
    await p.sendOffsets(groupId, [{ topic: input, partition: 0, offset: '11' }]);
    await p.commit();
  } finally {
    await p.close();
  }
  t.deepEqual((await readAll([out, log])).map((r) => r.value?.toString()).sort(), ['a', 'b', 'c', 'd', 'e', 'f']);
  t.deepEqual((await readAll([out, log], { readUncommitted: true })).map((r) => r.value?.toString()).sort(), ['a', 'aborted', 'aborted', 'b', 'c', 'd', 'e', 'f']);
  await waitFor(async () => (await committedOffset(groupId, input)) === '11', 10_000, 'the committed offset 11', 100);
  await deleteTopics([out, log, input]);
});

test('a second producer with the same transactional id fences the first: its next send fails with PRODUCER_FENCED and its open transaction is aborted', async (t) => {
  const topic = unique('txp-fence');
  const transactionalId = unique('txp');
  await createTopics([{ topic, numPartitions: 2 }]);
  const zombie = createTaskProducer(kafka(), { transactionalId, transactionTimeoutMs: 30_000 });
  const successor = createTaskProducer(kafka(), { transactionalId, transactionTimeoutMs: 30_000 });
  try {
    await zombie.init();
    await zombie.begin();
    await zombie.send([rec(topic, 0, 'zombie-1')]);
    await successor.init(); // bumps the epoch, aborts the zombie's transaction
    await successor.begin();
    await successor.send([rec(topic, 0, 'successor'), rec(topic, 1, 'successor')]);
    await successor.commit();
    const e = await t.throwsAsync(zombie.send([rec(topic, 0, 'zombie-2'), rec(topic, 1, 'zombie-2')]), { instanceOf: FoldstreamError });
    t.is(e.code, 'PRODUCER_FENCED');
    t.false(zombie.inTransaction);
  } finally {
    await zombie.close();
    await successor.close();
  }
  t.deepEqual((await readAll([topic])).map((r) => r.value?.toString()), ['successor', 'successor']);
  await deleteTopics([topic]);
});

test('without a transactional id (at_least_once): idempotent sends, no transaction markers, every record once', async (t) => {
  const topic = unique('txp-idem');
  await createTopics([{ topic, numPartitions: 2 }]);
  const p = createTaskProducer(kafka(), { transactionTimeoutMs: 30_000 });
  try {
    await p.init();
    t.false(p.transactional);
    t.deepEqual(await p.send([rec(topic, 0, 'a'), rec(topic, 1, 'b'), rec(topic, 0, 'c')]), new Map([[`${topic}:0`, 2n], [`${topic}:1`, 1n]]));
    t.deepEqual(await p.send([rec(topic, 0, 'd')]), new Map([[`${topic}:0`, 3n]]), 'no marker took an offset');
  } finally {
    await p.close();
  }
  t.deepEqual((await readAll([topic])).map((r) => r.value?.toString()).sort(), ['a', 'b', 'c', 'd']);
  await deleteTopics([topic]);
});

/** One task's commit: outputs and changelog records over `partitions` partitions of two topics, offsets, EndTxn. */
async function commitOnce(p: TaskProducer, topics: string[], partitions: number, groupId: string, input: string, n: number): Promise<void> {
  await p.begin();
  const records: OutgoingRecord[] = [];
  for (let i = 0; i < partitions; i++) records.push(rec(topics[i % topics.length]!, Math.floor(i / topics.length), `r${n}-${i}`));
  await p.send(records);
  await p.sendOffsets(groupId, [{ topic: input, partition: 0, offset: String(n + 1) }]);
  await p.commit();
}

test('round trips of a commit: AddPartitionsToTxn, AddOffsetsToTxn, one Produce per broker, TxnOffsetCommit, EndTxn; no FindCoordinator once the coordinators are known', async (t) => {
  const topics = [unique('txp-rt-a'), unique('txp-rt-b'), unique('txp-rt-c')];
  const input = unique('txp-rt-in');
  const groupId = unique('txp-rt-group');
  await createTopics([...topics.map((topic) => ({ topic, numPartitions: 2 })), { topic: input, numPartitions: 1 }]);
  const clientId = unique('txp-rt-client');
  const retries: string[] = [];
  const p = createTaskProducer(kafka(clientId), { transactionalId: unique('txp'), transactionTimeoutMs: 30_000, groupId, onRetry: (r) => retries.push(r) });
  try {
    await p.init();
    await commitOnce(p, topics, 6, groupId, input, 0); // the first: finds the coordinators, loads metadata
    const shapes = { projection: 2, aggregate: 6 };
    const commits = 5;
    const measured: { shape: string; counts: Map<string, number>; concurrent: number }[] = [];
    for (const [shape, partitions] of Object.entries(shapes)) {
      const { counts } = await countRequests(clientId, async () => {
        for (let n = 1; n <= commits; n++) await commitOnce(p, topics, partitions, groupId, input, n);
      });
      // retries of CONCURRENT_TRANSACTIONS add AddPartitionsToTxn/AddOffsetsToTxn requests: discount them
      const concurrent = retries.splice(0).filter((r) => r === 'concurrent_transactions').length;
      const perCommit = Object.fromEntries([...counts].map(([api, c]) => [api, c / commits]));
      t.log(`${shape} (${partitions} partitions, one broker): requests per commit ${JSON.stringify(perCommit)}, CONCURRENT_TRANSACTIONS retries ${concurrent} in ${commits} commits`);
      measured.push({ shape, counts, concurrent });
    }
    for (const { shape, counts, concurrent } of measured) {
      t.is(counts.get('GroupCoordinator') ?? 0, 0, `${shape}: FindCoordinator (kafkajs calls it GroupCoordinator)`);
      t.is(counts.get('Metadata') ?? 0, 0, `${shape}: Metadata`);
      t.is(counts.get('Produce'), commits, `${shape}: one Produce per commit, every partition in it`);
      t.is(counts.get('TxnOffsetCommit'), commits);
      t.is(counts.get('EndTxn'), commits);
      t.is((counts.get('AddPartitionsToTxn') ?? 0) + (counts.get('AddOffsetsToTxn') ?? 0) - concurrent, 2 * commits, `${shape}: partitions added once per transaction`);
    }
  } finally {
    await p.close();
  }
  await deleteTopics([...topics, input]);
});
