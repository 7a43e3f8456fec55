/**
 * Post-mortem of a run that found duplicates: lists record batches that were appended more than once — same producer
 * id and epoch, same record timestamps and count, different offsets — with each copy's offset and firstSequence.
 * A second copy whose firstSequence is the first's plus its record count is a client re-sending an acknowledged
 * batch as new data (docs/reliability.md, "Anomalies found"). Reads read_uncommitted, so aborted copies show too.
 *
 *   npx tsx test/chaos/forensics/duplicate-batches.ts <brokers> <topic> [<topic> ...]
 *
 * Single-record batches that share a timestamp may be distinct records; confirm those with the verifier's samples.
 */
import { Kafka, logLevel } from 'kafkajs';

const [brokers, ...topics] = process.argv.slice(2);
if (!brokers || topics.length === 0) {
  console.error('usage: duplicate-batches.ts <brokers> <topic> [<topic> ...]');
  process.exit(2);
}
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const ends = new Map<string, number>();
for (const t of topics) for (const e of await admin.fetchTopicOffsets(t)) ends.set(`${t}:${e.partition}`, Number(e.high));
await admin.disconnect();
const pending = new Set([...ends].filter(([, end]) => end > 0).map(([k]) => k));
const copies = new Map<string, Set<string>>();
const consumer = kafka.consumer({ groupId: `chaos-forensics-${Date.now()}`, readUncommitted: true, maxWaitTimeInMs: 100 });
await consumer.connect();
for (const t of topics) await consumer.subscribe({ topic: t, fromBeginning: true });
await new Promise<void>((resolve) => {
  if (pending.size === 0) resolve();
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const k = `${e.payload.topic}:${e.payload.partition}`;
    if (Number(e.payload.lastOffset) + 1 >= ends.get(k)!) pending.delete(k);
    if (pending.size === 0) resolve();
  });
  void consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const b = (m as unknown as { batchContext: { producerId: string; producerEpoch: number; firstTimestamp: string; maxTimestamp: string; lastOffsetDelta: number; firstOffset: string; firstSequence: number } }).batchContext;
        const sig = `${batch.topic}/${batch.partition} producer ${b.producerId}/${b.producerEpoch}, ${b.lastOffsetDelta + 1} records, timestamps ${b.firstTimestamp}..${b.maxTimestamp}`;
        const set = copies.get(sig) ?? new Set<string>();
        set.add(`offset ${b.firstOffset} firstSequence ${b.firstSequence}`);
        copies.set(sig, set);
      }
    },
  });
});
await consumer.disconnect();
let found = 0;
for (const [sig, set] of copies) {
  if (set.size < 2) continue;
  found++;
  console.log(`${sig}: ${[...set].join(' | ')}`);
}
console.log(`${found} batches appended more than once`);
process.exit(found ? 1 : 0);
