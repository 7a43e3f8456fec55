// The broker is real and kafkajs transactions work on it: the ground every exactly-once claim stands on.
import test from 'ava';
import { retryOnCoordinatorError } from '../../src/kafka/errors.ts';
import { createTopics, deleteTopics, kafka, readAll, unique } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/processes.ts';

test('a committed transaction is visible to read_committed and an aborted one is not; read_uncommitted sees both', async (t) => {
  const topic = unique('tx-visibility');
  await createTopics([{ topic, numPartitions: 1 }]);
  const producer = kafka().producer({ transactionalId: unique('tx'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ key: 'k', value: 'committed' }] });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted' }] });
    await aborted.abort();
  } finally {
    await producer.disconnect();
  }
  const readCommitted = (await readAll([topic])).map((r) => r.value?.toString());
  const readUncommitted = (await readAll([topic], { readUncommitted: true })).map((r) => r.value?.toString());
  t.deepEqual(readCommitted, ['committed']);
  t.deepEqual(readUncommitted, ['committed', 'aborted']);
  await deleteTopics([topic]);
});

test('offsets sent inside a transaction are committed for the group only when the transaction commits', async (t) => {
  const topic = unique('tx-offsets');
  const groupId = unique('group');
  await createTopics([{ topic, numPartitions: 1 }]);
  const producer = kafka().producer({ transactionalId: unique('tx'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const admin = kafka().admin();
  await admin.connect();
  const committedOffset = async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!.offset;
  try {
    const aborted = await producer.transaction();
    // kafkajs gives up on a fresh broker's NOT_COORDINATOR_FOR_GROUP (src/kafka/errors.ts): retry as the runtime does
    await retryOnCoordinatorError(() => aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }] }));
    await aborted.abort();
    t.is(await committedOffset(), '-1');
    const committed = await producer.transaction();
    await retryOnCoordinatorError(() => committed.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '7' }] }] }));
    await committed.commit();
    // the commit marker reaches __consumer_offsets just after EndTxn returns
    await waitFor(async () => (await committedOffset()) === '7', 5_000, 'the committed offset 7', 100);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
  await deleteTopics([topic]);
});

test('a second producer with the same transactional id fences the first and aborts its open transaction', async (t) => {
  const topic = unique('tx-fence');
  const transactionalId = unique('tx');
  await createTopics([{ topic, numPartitions: 1 }]);
  const zombie = kafka().producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
  const successor = kafka().producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await zombie.connect();
  await successor.connect();
  try {
    const open = await zombie.transaction();
    await open.send({ topic, messages: [{ key: 'k', value: 'zombie' }] });
    const fresh = await successor.transaction(); // InitProducerId: bumps the epoch, aborts the zombie's transaction
    await fresh.send({ topic, messages: [{ key: 'k', value: 'successor' }] });
    await fresh.commit();
    const err = await t.throwsAsync(open.commit());
    t.regex(String((err as { type?: string }).type ?? err?.message), /INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/);
  } finally {
    await zombie.disconnect().catch(() => undefined);
    await successor.disconnect();
  }
  t.deepEqual((await readAll([topic])).map((r) => r.value?.toString()), ['successor']);
  await deleteTopics([topic]);
});
