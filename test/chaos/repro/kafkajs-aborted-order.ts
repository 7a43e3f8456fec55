/**
 * Minimal reproduction, with kafkajs alone (no foldstream), of aborted records that a kafkajs read_committed consumer
 * delivers as committed (found by the bank workload's groupBy projection: docs/reliability.md, "Anomalies found").
 *
 * Two transactional producers write to one partition, transactions overlapping: A sends, then B sends, then B aborts,
 * then A aborts. The broker lists a partition's aborted transactions in the order they were aborted (its .txnindex),
 * here B (first offset 5) before A (first offset 0), and a fetch answers them in that order. kafkajs
 * (src/consumer/filterAbortedMessages.js) assumes the list sorted by first offset: it looks only at the head of the
 * list, and starts ignoring a producer's records when it reaches that head's first offset, one transaction per
 * record. A's records come before B's first offset, so A is not yet being ignored and its five records are delivered;
 * the Java client keeps the aborted transactions in a queue ordered by first offset and delivers none.
 *
 * Any partition written in transactions by more than one producer can hold such overlapping aborts: in foldstream,
 * the repartition topic of a groupBy projection (every first-stage task writes to every partition of it).
 *
 *   npx tsx test/chaos/repro/kafkajs-aborted-order.ts     (uses the broker at KAFKA_BROKERS, default 127.0.0.1:9092)
 *
 * Exit code 1 when the read_committed consumer delivered an aborted record.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new Kafka({ brokers, clientId: 'repro-aborted-order', logLevel: logLevel.NOTHING });
const topic = `repro-aborted-order-${randomBytes(4).toString('hex')}`;
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

const producer = (id: string) => kafka.producer({ transactionalId: `${topic}-${id}`, idempotent: true, maxInFlightRequests: 1 });
const a = producer('a');
const b = producer('b');
const plain = kafka.producer({ idempotent: true });
await Promise.all([a.connect(), b.connect(), plain.connect()]);
const msgs = (who: string) => Array.from({ length: 5 }, (_, i) => ({ partition: 0, key: who, value: `${who}-${i} (aborted)` }));

const ta = await a.transaction();
await ta.send({ topic, messages: msgs('A') }); // offsets 0-4
const tb = await b.transaction();
await tb.send({ topic, messages: msgs('B') }); // offsets 5-9
await tb.abort(); // abort marker of B first
await ta.abort(); // then A's
await plain.send({ topic, messages: [{ partition: 0, key: 'end', value: 'committed (not transactional)' }] });

const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 }); // read_committed: kafkajs's default
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
const seen: string[] = [];
await new Promise<void>((resolve) => {
  void consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(`${message.offset}: ${message.value?.toString()}`);
      if (message.key?.toString() === 'end') resolve();
    },
  });
});
await consumer.disconnect();
await Promise.all([a.disconnect(), b.disconnect(), plain.disconnect()]);
await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
await admin.disconnect();

console.log(`read_committed (kafkajs) delivered:\n  ${seen.join('\n  ')}`);
const leaked = seen.filter((s) => s.includes('(aborted)'));
console.log(leaked.length ? `FAIL: ${leaked.length} records of aborted transactions delivered` : 'OK: no aborted record delivered');
process.exit(leaked.length ? 1 : 0);
