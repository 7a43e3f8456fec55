/**
 * Minimal reproduction, with kafkajs alone (no foldstream), of the duplicates the broker chaos scenario found.
 *
 * A transactional, idempotent producer sends batches that span partitions led by all three brokers, one transaction
 * per batch, while one broker is killed with kill -9. kafkajs's sendMessages() sends one Produce request per broker in
 * parallel and advances each partition's sequence number before the request is answered; when one broker fails,
 * Promise.all rejects at once and the retry re-sends to every broker that has not answered *yet*, with the
 * already-advanced sequence numbers. The broker cannot recognise the second copy as a retry, appends it, and the
 * transaction commits both. Read with read_committed, some messages appear twice.
 *
 *   npx tsx test/chaos/repro/kafkajs-resend.ts [--port 9292] [--retries 5] [--seconds 60] [--producers 8] [--per-partition]
 *                                              [--producer kafkajs|foldstream]
 *
 * --per-partition sends each topic-partition with its own send() (one broker per Produce request): the old workaround.
 * (retries 0 is not an option: kafkajs refuses it for idempotent producers.)
 * --producer foldstream runs the same load through foldstream's own task producer (src/kafka/txn-producer.ts): each
 * batch is ONE send() spanning all three brokers, as a task's commit is; a failed transaction is aborted and its
 * producer replaced (a new InitProducerId), as a task does; the producer never sends a batch again.
 *
 * Starts (and stops) its own three-broker cluster at --port. Exit code 1 when duplicates were found.
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createTaskProducer } from '../../../src/kafka/task-producer.ts';
import type { OutgoingRecord, TaskProducer } from '../../../src/kafka/types.ts';
import { killNode, startCluster, startNode, stopCluster } from '../../../scripts/kafka/cluster.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9292' },
    retries: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '60' },
    producers: { type: 'string', default: '8' },
    /** the workaround under test: one send() per topic-partition, so no Produce request spans two brokers */
    'per-partition': { type: 'boolean', default: false },
    producer: { type: 'string', default: 'kafkajs' },
  },
});
if (values.producer !== 'kafkajs' && values.producer !== 'foldstream') throw new Error('--producer is kafkajs or foldstream');
const port = Number(values.port);
const { cluster } = await startCluster({ nodes: 3, basePort: port, heap: '256m', fresh: true, name: `repro-resend-p${port}` });
const killCluster = () => {
  for (let n = 1; n <= 3; n++) killNode(cluster, n);
};
process.on('exit', killCluster);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(2));
setTimeout(() => {
  console.error('watchdog: giving up after 6 minutes');
  process.exit(3);
}, 360_000).unref();
const kafka = new Kafka({ brokers: cluster.brokers, clientId: 'repro', logLevel: logLevel.NOTHING, retry: { retries: 8 } });
const base = `repro-resend-${Date.now()}`;
// like a foldstream task: outputs, dead letters and a changelog in one sendBatch, one transaction per batch
const topics = [`${base}-out`, `${base}-dlq`, `${base}-changelog`];
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  waitForLeaders: false,
  topics: topics.map((topic) => ({ topic, numPartitions: 6, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] })),
});
// kafkajs's waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION while the topic propagates: wait here instead
for (let i = 0; ; i++) {
  const md = await admin.fetchTopicMetadata({ topics }).catch(() => undefined);
  if (md?.topics.length === 3 && md.topics.every((t) => t.partitions.length === 6 && t.partitions.every((p) => p.leader >= 0))) break;
  if (i > 100) throw new Error('topics have no leaders');
  await new Promise((r) => setTimeout(r, 200));
}

let stop = false;
let sent = 0;
let failedTransactions = 0;
const failures = new Map<string, number>();
const record = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
/** One foldstream task producer per sender; each batch is one send() over 18 partitions on three brokers. */
const sendWithFoldstream = async (id: number) => {
  const make = async (): Promise<TaskProducer> => {
    for (;;) {
      const p = createTaskProducer(kafka, { transactionalId: `${base}-tx-${id}`, transactionTimeoutMs: 60_000 });
      try {
        await p.init();
        return p;
      } catch (e) {
        record(`init: ${(e as Error).message.slice(0, 70)}`);
        await p.close().catch(() => undefined);
        if (stop) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  let producer = await make();
  for (let batch = 0; !stop; batch++) {
    const records: OutgoingRecord[] = topics.flatMap((topic, t) =>
      Array.from({ length: 6 * (t === 0 ? 30 : 3) }, (_, i) => ({ topic, partition: i % 6, key: null, value: Buffer.from(`p${id}-b${batch}-t${t}-m${i}`) })),
    );
    try {
      await producer.begin();
      await producer.send(records);
      await producer.commit();
      sent += records.length;
    } catch (e) {
      failedTransactions++;
      record((e as Error).message.replace(/ for [^:]+:/, ':').slice(0, 80));
      // as a task does: abort what is open, throw the producer away, start again from InitProducerId
      await producer.abort().catch(() => undefined);
      await producer.close().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 250));
      producer = await make();
    }
  }
  await producer.close().catch(() => undefined);
};
const sending = Array.from({ length: Number(values.producers) }, async (_, id) => {
  if (values.producer === 'foldstream') return sendWithFoldstream(id);
  const make = async () => {
    const p = kafka.producer({ transactionalId: `${base}-tx-${id}`, idempotent: true, maxInFlightRequests: 1, retry: { retries: Number(values.retries), initialRetryTime: 100, maxRetryTime: 3000 } });
    await p.connect();
    return p;
  };
  let producer = await make();
  for (let batch = 0; !stop; batch++) {
    const topicMessages = topics.map((topic, t) => ({ topic, messages: Array.from({ length: 6 * (t === 0 ? 30 : 3) }, (_, i) => ({ partition: i % 6, value: `p${id}-b${batch}-t${t}-m${i}` })) }));
    let tx;
    try {
      tx = await producer.transaction();
      if (values['per-partition']) {
        for (const { topic, messages } of topicMessages) {
          for (let p = 0; p < 6; p++) await tx.send({ topic, messages: messages.filter((m) => m.partition === p), acks: -1 });
        }
      } else {
        await tx.sendBatch({ topicMessages, acks: -1 });
      }
      await tx.commit();
      sent += topicMessages.reduce((n, t) => n + t.messages.length, 0);
    } catch (e) {
      failedTransactions++;
      const why = (e as Error).message.slice(0, 80);
      failures.set(why, (failures.get(why) ?? 0) + 1);
      // a kafkajs producer whose EndTxn failed cannot begin again: throw it away (a new one fences the old epoch)
      const aborted = await tx?.abort().then(() => true, () => false);
      if (!aborted) {
        await producer.disconnect().catch(() => undefined);
        producer = await make().catch(async () => {
          await new Promise((r) => setTimeout(r, 1000));
          return make();
        });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await producer.disconnect().catch(() => undefined);
});

const seconds = Number(values.seconds);
const until = Date.now() + seconds * 1000;
for (let round = 0; Date.now() < until; round++) {
  await new Promise((r) => setTimeout(r, 4000));
  const node = 1 + (round % 3);
  killNode(cluster, node);
  console.error(`killed broker ${node}`);
  await new Promise((r) => setTimeout(r, 8000));
  startNode(cluster, node);
  await new Promise((r) => setTimeout(r, 12000));
}
stop = true;
console.error('stopping the producers');
await Promise.all(sending.map((p) => p.catch(() => undefined)));
console.error('reading back with read_committed');

// read everything back, read_committed, and look for values seen twice
const ends = new Map<string, number>();
console.error(`${sent} messages committed, ${failedTransactions} transactions failed`);
// the last broker restarted moments ago: its partitions may still be electing leaders
for (const topic of topics) {
  for (let attempt = 0; ; attempt++) {
    try {
      for (const e of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}:${e.partition}`, Number(e.high));
      break;
    } catch (e) {
      if (attempt >= 60) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
const pending = new Set([...ends].filter(([, end]) => end > 0).map(([k]) => k));
const seen = new Map<string, string>();
const duplicates: string[] = [];
const consumer = kafka.consumer({ groupId: `${base}-reader`, maxWaitTimeInMs: 100 });
await consumer.connect();
for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
await new Promise<void>((resolve) => {
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const k = `${e.payload.topic}:${e.payload.partition}`;
    if (Number(e.payload.lastOffset) + 1 >= ends.get(k)!) pending.delete(k);
    if (pending.size === 0) resolve();
  });
  void consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const v = message.value!.toString();
      const b = (message as unknown as { batchContext: { producerEpoch: number; firstSequence: number } }).batchContext;
      const at = `${topic}/${partition}@${message.offset} (epoch ${b.producerEpoch}, batch firstSequence ${b.firstSequence})`;
      const first = seen.get(v);
      if (first) duplicates.push(`${v}: ${first} and ${at}`);
      else seen.set(v, at);
    },
  });
});
await consumer.disconnect();
await admin.disconnect();
await stopCluster(cluster);
console.log(`${sent} messages committed in transactions, ${failedTransactions} transactions failed and were aborted (${[...failures].map(([w, n]) => `${n}× ${w}`).join('; ')}), ${duplicates.length} duplicates visible to read_committed`);
for (const d of duplicates.slice(0, 10)) console.log(`  ${d}`);
process.exit(duplicates.length ? 1 : 0);
