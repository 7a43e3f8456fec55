/**
 * The task producer's send path alone, paired against kafkajs's: N transactional producers, each transaction 18
 * partitions (3 topics × 6, the shape of kafkajs-resend.ts and of a task writing outputs, dead letters and a
 * changelog), back to back for a fixed time, on the broker at KAFKA_BROKERS. Prints transactions, latency and the
 * client's CPU per transaction.
 *
 *   npx tsx bench/txn-producer.ts foldstream|kafkajs|kafkajs-per-partition [seconds=20] [producers=8]
 *
 * `kafkajs-per-partition` is the send path task producers had before src/kafka/txn-producer.ts (one partition per
 * request, the workaround for docs/reliability.md anomaly 1); `kafkajs` is its sendBatch (one request per broker,
 * with the defect). Figures: docs/reliability.md, anomaly 1.
 */
import { Kafka, logLevel } from 'kafkajs';
import { createTaskProducer } from '../src/kafka/task-producer.ts';
import type { OutgoingRecord } from '../src/kafka/types.ts';

const mode = process.argv[2] ?? 'foldstream';
if (!['foldstream', 'kafkajs', 'kafkajs-per-partition'].includes(mode)) throw new Error('mode: foldstream, kafkajs or kafkajs-per-partition');
const seconds = Number(process.argv[3] ?? 20);
const producers = Number(process.argv[4] ?? 8);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new Kafka({ brokers, clientId: 'txn-producer-bench', logLevel: logLevel.NOTHING });
const base = `txn-bench-${mode}-${Date.now()}`;
const topics = [`${base}-out`, `${base}-dlq`, `${base}-changelog`];
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: 6 })) });

let stop = false;
let committed = 0;
let failed = 0;
const latencies: number[] = [];
const records = (id: number, batch: number): OutgoingRecord[] =>
  topics.flatMap((topic, t) => Array.from({ length: 6 * (t === 0 ? 30 : 3) }, (_, i) => ({ topic, partition: i % 6, key: null, value: Buffer.from(`p${id}-b${batch}-t${t}-m${i}`) })));

async function foldstream(id: number): Promise<void> {
  const p = createTaskProducer(kafka, { transactionalId: `${base}-tx-${id}`, transactionTimeoutMs: 60_000 });
  await p.init();
  for (let b = 0; !stop; b++) {
    const t0 = performance.now();
    try {
      await p.begin();
      await p.send(records(id, b));
      await p.commit();
      committed++;
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
      await p.abort().catch(() => undefined);
    }
  }
  await p.close();
}

async function kafkajs(id: number): Promise<void> {
  const p = kafka.producer({ transactionalId: `${base}-tx-${id}`, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  for (let b = 0; !stop; b++) {
    const t0 = performance.now();
    const byTopic = new Map<string, { partition: number; value: Buffer }[]>();
    for (const r of records(id, b)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), { partition: r.partition, value: r.value! }]);
    const tx = await p.transaction();
    try {
      if (mode === 'kafkajs') await tx.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
      else for (const [topic, messages] of byTopic) for (let q = 0; q < 6; q++) await tx.send({ topic, messages: messages.filter((m) => m.partition === q), acks: -1 });
      await tx.commit();
      committed++;
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
      await tx.abort().catch(() => undefined);
    }
  }
  await p.disconnect();
}

const cpu0 = process.cpuUsage();
const running = Array.from({ length: producers }, (_, i) => (mode === 'foldstream' ? foldstream(i) : kafkajs(i)));
await new Promise((r) => setTimeout(r, seconds * 1000));
stop = true;
await Promise.all(running);
const cpu = process.cpuUsage(cpu0);
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]?.toFixed(0);
console.log(
  `${mode}: ${committed} transactions committed in ${seconds} s (${(committed / seconds).toFixed(1)}/s), ${failed} failed, ` +
    `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, client CPU ${((cpu.user + cpu.system) / 1000 / Math.max(1, committed)).toFixed(1)} ms per transaction`,
);
await admin.deleteTopics({ topics });
await admin.disconnect();
