// How a task's records are split into produce requests: one topic-partition per request (kafkajs's retry of a
// multi-broker request can lose or duplicate partitions whose leader moved), in order, under the batch size limit.
import test from 'ava';
import type { OutgoingRecord } from '../../src/kafka/types.ts';
import { partitionRequests } from '../../src/kafka/task-producer.ts';

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
