// How a task's records are split into produce requests: one topic-partition per request (kafkajs's retry of a
// multi-broker request can lose or duplicate partitions whose leader moved), in order, under the batch size limit.
import test from 'ava';
import type { Kafka } from 'kafkajs';
import type { OutgoingRecord } from '../../src/kafka/types.ts';
import { createTaskProducer, partitionRequests } from '../../src/kafka/task-producer.ts';

const rec = (topic: string, partition: number, n: number, bytes = 10): OutgoingRecord => ({
  topic,
  partition,
  key: Buffer.from(`k${n}`),
  value: Buffer.alloc(bytes, n),
});

test('every request holds records of a single topic-partition, and each partition keeps its order', (t) => {
  const records = [rec('a', 0, 1), rec('b', 0, 2), rec('a', 1, 3), rec('a', 0, 4), rec('b', 0, 5), rec('a', 1, 6)];
  const requests = partitionRequests(records, 1 << 20);
  for (const r of requests) t.is(new Set(r.map((x) => `${x.topic}:${x.partition}`)).size, 1);
  const order = (topic: string, partition: number) =>
    requests.flat().filter((x) => x.topic === topic && x.partition === partition).map((x) => x.key!.toString());
  t.deepEqual(order('a', 0), ['k1', 'k4']);
  t.deepEqual(order('b', 0), ['k2', 'k5']);
  t.deepEqual(order('a', 1), ['k3', 'k6']);
  t.is(requests.flat().length, records.length);
});

test('a partition whose records exceed the limit is split into several requests, in order; a single large record goes alone', (t) => {
  const records = [rec('a', 0, 1, 400), rec('a', 0, 2, 400), rec('a', 0, 3, 400), rec('a', 0, 4, 5000), rec('a', 0, 5, 10)];
  const requests = partitionRequests(records, 1000);
  t.deepEqual(requests.map((r) => r.map((x) => x.key!.toString())), [['k1', 'k2'], ['k3'], ['k4'], ['k5']]);
});

// The second half of the fix for docs/reliability.md's anomaly 1 (kafkajs's retry of a partly failed request skips
// partitions): a send whose result has no acknowledgement for its partition is a failed send, so the task aborts
// instead of committing records it only assumes were written. The client below answers like that, which a real
// broker cannot be made to do on purpose.
test('a send that comes back without an acknowledgement for its partition throws, so the transaction cannot commit', async (t) => {
  const answers: Array<Array<{ topicName: string; partition: number; errorCode: number; baseOffset?: string }>> = [
    [{ topicName: 'a', partition: 0, errorCode: 0, baseOffset: '41' }],
    [],
    [{ topicName: 'a', partition: 1, errorCode: 0, baseOffset: '-1' }],
    [{ topicName: 'b', partition: 0, errorCode: 0, baseOffset: '7' }],
  ];
  const transaction = { sendBatch: async () => answers.shift()!, commit: async () => undefined, abort: async () => undefined, sendOffsets: async () => undefined };
  const kafka = { producer: () => ({ connect: async () => undefined, disconnect: async () => undefined, transaction: async () => transaction }) } as unknown as Kafka;
  const p = createTaskProducer(kafka, { transactionalId: 'tx', transactionTimeoutMs: 10_000 });
  await p.begin();
  t.deepEqual(await p.send([rec('a', 0, 1), rec('a', 0, 2)]), new Map([['a:0', 43n]]), 'acknowledged: the end offset after the records');
  await t.throwsAsync(p.send([rec('a', 0, 3)]), { message: 'no acknowledgement for 1 records to a-0' });
  await t.throwsAsync(p.send([rec('a', 1, 4)]), { message: 'no acknowledgement for 1 records to a-1' });
  // an answer for another partition is no acknowledgement for this one
  await t.throwsAsync(p.send([rec('a', 0, 5)]), { message: 'no acknowledgement for 1 records to a-0' });
});
