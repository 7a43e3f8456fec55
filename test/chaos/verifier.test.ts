/**
 * The chaos verifier against topics written directly (no foldstream): a correct run passes, and each planted anomaly
 * (duplicate, loss, disorder, store mismatch, open transaction, missing / extra / wrong dead letter) is found, and
 * makes the assertions the chaos tests use fail. Needs the broker at KAFKA_BROKERS (127.0.0.1:9092).
 */
import test from 'ava';
import kafkajs, { type Message, type Producer } from 'kafkajs';
import { pack } from 'msgpackr';
import { createTopics, deleteTopics, kafka, unique, withAdmin } from '../helpers/kafka.ts';
import { BROKERS } from '../helpers/kafka.ts';
import { assertVerificationClean } from './assert-run.ts';
import { CounterModel } from './verify/model-counter.ts';
import { probeEnds } from './verify/offsets-probe.ts';
import { verify, type Verification } from './verify/verifier.ts';
import { partitionOf } from './verify/wire.ts';

const { Partitioners } = kafkajs;
const P = 2;

interface Plant {
  duplicateOutput?: boolean;
  dropOutput?: boolean;
  reorderOutputs?: boolean;
  wrongStoreValue?: boolean;
  openTransaction?: boolean;
  dropDeadLetter?: boolean;
  extraDeadLetter?: boolean;
  wrongReason?: boolean;
}

interface In {
  key: string | null;
  value: Buffer | null;
  bad?: string;
  partition?: number;
}

const tick = (key: string, seq: number): In => ({ key, value: Buffer.from(JSON.stringify({ type: 'Tick', v: 1, key, seq })) });

/** kafkajs's waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION while a new topic propagates: ask again. */
async function createTopicsReady(topics: string[], numPartitions: number): Promise<void> {
  await createTopics(topics.map((topic) => ({ topic, numPartitions }))).catch(() => undefined);
  await withAdmin(async (admin) => {
    for (let i = 0; i < 50; i++) {
      try {
        const md = await admin.fetchTopicMetadata({ topics });
        if (md.topics.every((x) => x.partitions.length === numPartitions && x.partitions.every((p) => p.leader >= 0))) return;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`topics ${topics.join(', ')} did not get leaders`);
  });
}

/** Writes a small counting run as foldstream would (outputs, dead letters, changelog), with `plant` spoiling it. */
async function writtenRun(plant: Plant): Promise<{ verification: Verification; cleanup: () => Promise<void> }> {
  const app = unique('chaos-vt');
  const t = { input: `${app}-input`, output: `${app}-counts`, dlq: `${app}-counter-dlq`, changelog: `${app}-counter-counts-changelog` };
  await createTopicsReady(Object.values(t), P);
  const k = kafka('chaos-verifier-test');
  const producer = k.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  let open: Producer | undefined;
  try {
    const inputs: In[] = [
      tick('a', 1),
      tick('b', 1),
      tick('a', 2),
      { key: 'a', value: Buffer.from('{"type":"Ti'), bad: 'non-json' },
      tick('a', 3),
      tick('b', 2),
      { ...tick('a', 9), key: null, partition: 1, bad: 'null-key' },
    ];
    const placed: { in: In; partition: number; offset: string }[] = [];
    for (const i of inputs) {
      const m: Message = { key: i.key, value: i.value, headers: i.bad ? { 'chaos.bad': i.bad } : {} };
      if (i.partition !== undefined) m.partition = i.partition;
      const [meta] = await producer.send({ topic: t.input, messages: [m] });
      placed.push({ in: i, partition: meta!.partition, offset: meta!.baseOffset! });
    }
    const outputs: Message[] = [];
    const deadLetters: Message[] = [];
    const counts = new Map<string, number>();
    for (const p of placed) {
      if (p.in.bad) {
        const code = p.in.bad === 'non-json' ? 'DESERIALIZATION_FAILED' : 'HANDLER_FAILED';
        deadLetters.push({ partition: p.partition, key: p.in.key, value: p.in.value, headers: deadLetterHeaders(t.input, p.partition, p.offset, plant.wrongReason ? 'KEY_MISSING' : code) });
        continue;
      }
      const seq = (JSON.parse(p.in.value!.toString()) as { seq: number }).seq;
      const n = (counts.get(p.in.key!) ?? 0) + 1;
      counts.set(p.in.key!, n);
      outputs.push({ partition: partitionOf(p.in.key!, P), key: p.in.key, value: JSON.stringify({ key: p.in.key, n, seq }) });
    }
    if (plant.duplicateOutput) outputs.push({ ...outputs[2]! });
    if (plant.dropOutput) outputs.splice(1, 1);
    if (plant.reorderOutputs) {
      // a's outputs n=2 and n=3 swapped (outputs 2 and 3 are a:2, a:3)
      const [a2, a3] = [outputs[2]!, outputs[3]!];
      outputs[2] = a3;
      outputs[3] = a2;
    }
    if (plant.dropDeadLetter) deadLetters.shift();
    if (plant.extraDeadLetter) {
      const good = placed[0]!;
      deadLetters.push({ partition: good.partition, key: good.in.key, value: good.in.value, headers: deadLetterHeaders(t.input, good.partition, good.offset, 'HANDLER_FAILED') });
    }
    const changelog: Message[] = [...counts].map(([key, n]) => ({ partition: partitionOf(key, P), key, value: pack(plant.wrongStoreValue && key === 'a' ? n - 1 : n) }));
    for (let p = 0; p < P; p++) {
      const end = Math.max(-1, ...placed.filter((x) => x.partition === p).map((x) => Number(x.offset))) + 1;
      if (end > 0) changelog.push({ partition: p, key: '\u0000position', value: pack({ offsets: { [t.input]: String(end) }, streamTime: 0 }), headers: { 'foldstream.marker': 'position' } });
    }
    await producer.send({ topic: t.output, messages: outputs });
    await producer.send({ topic: t.dlq, messages: deadLetters });
    await producer.send({ topic: t.changelog, messages: changelog });
    if (plant.openTransaction) {
      open = k.producer({ transactionalId: `${app}-open`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60_000 });
      await open.connect();
      const tx = await open.transaction();
      await tx.send({ topic: t.output, messages: [{ partition: 0, key: 'zz', value: '{}' }] });
    }
    const model = new CounterModel({ app, input: t.input, output: t.output, partitions: P, maxRecordBytes: 16_384 });
    const verification = await verify({ brokers: BROKERS, check: model, openTransactionGraceMs: 1500 });
    return {
      verification,
      cleanup: async () => {
        await open?.disconnect().catch(() => undefined);
        await deleteTopics(Object.values(t));
      },
    };
  } finally {
    await producer.disconnect();
  }
}

function deadLetterHeaders(topic: string, partition: number, offset: string, code: string): Record<string, string> {
  return {
    'foldstream.error.code': code,
    'foldstream.error.message': 'why',
    'foldstream.source.topic': topic,
    'foldstream.source.partition': String(partition),
    'foldstream.source.offset': offset,
    'foldstream.source.timestamp': '0',
    'foldstream.processor': 'counter',
  };
}

/** The assertions the chaos tests make must fail on this verification. */
async function chaosAssertionsFail(t: import('ava').ExecutionContext, v: Verification): Promise<void> {
  const attempt = await t.try((tt) => assertVerificationClean(tt, v));
  const passed = attempt.passed;
  attempt.discard();
  t.false(passed, 'the chaos assertions passed a run with an anomaly');
}

test.serial('a correct run passes the verifier', async (t) => {
  const { verification: v, cleanup } = await writtenRun({});
  t.teardown(cleanup);
  t.deepEqual(v.problems, []);
  t.is(v.model.input.good, 5);
  t.is(v.model.input.bad, 2);
  t.is(v.model.outputs[Object.keys(v.model.outputs)[0]!]!.records, 5);
  t.is(v.model.dlq[0]!.found, 2);
  assertVerificationClean(t, v);
});

test.serial('finds a duplicated output', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ duplicateOutput: true });
  t.teardown(cleanup);
  const out = Object.values(v.model.outputs)[0]!;
  t.is(out.duplicates, 1);
  t.is(out.losses, 0);
  t.regex(v.problems.join('\n'), /1 duplicates/);
  await chaosAssertionsFail(t, v);
});

test.serial('finds a lost output', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ dropOutput: true });
  t.teardown(cleanup);
  const out = Object.values(v.model.outputs)[0]!;
  t.is(out.losses, 1);
  t.is(out.duplicates, 0);
  await chaosAssertionsFail(t, v);
});

test.serial('finds outputs of a key out of order', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ reorderOutputs: true });
  t.teardown(cleanup);
  t.is(Object.values(v.model.outputs)[0]!.outOfOrder, 1);
  await chaosAssertionsFail(t, v);
});

test.serial('finds a store value that differs from the model', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ wrongStoreValue: true });
  t.teardown(cleanup);
  t.is(v.model.stores[0]!.mismatches, 1);
  t.regex(v.model.stores[0]!.samples[0]!, /key "a": 2; model: 3/);
  await chaosAssertionsFail(t, v);
});

test.serial('finds a transaction left open', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ openTransaction: true });
  t.teardown(cleanup);
  t.is(v.transactions.open.length, 1);
  t.is(v.transactions.open[0]!.partition, 0);
  await chaosAssertionsFail(t, v);
});

test.serial('finds a missing dead letter', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ dropDeadLetter: true });
  t.teardown(cleanup);
  t.is(v.model.dlq[0]!.missing, 1);
  t.is(v.model.dlq[0]!.extra, 0);
  await chaosAssertionsFail(t, v);
});

test.serial('finds an extra dead letter (of a good record)', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ extraDeadLetter: true });
  t.teardown(cleanup);
  t.is(v.model.dlq[0]!.extra, 1);
  t.is(v.model.dlq[0]!.missing, 0);
  await chaosAssertionsFail(t, v);
});

test.serial('finds a dead letter with the wrong reason', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ wrongReason: true });
  t.teardown(cleanup);
  t.is(v.model.dlq[0]!.wrongReason, 2);
  await chaosAssertionsFail(t, v);
});

test.serial('kafkajs fetchTopicOffsets answers the last stable offset, which the probe tells apart from the high watermark', async (t) => {
  const topic = unique('chaos-probe');
  await createTopicsReady([topic], 1);
  const p = kafka('chaos-probe-test').producer({ transactionalId: topic, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  t.teardown(async () => {
    await p.disconnect().catch(() => undefined);
    await deleteTopics([topic]);
  });
  await p.send({ topic, messages: [{ value: 'committed' }] });
  const tx = await p.transaction();
  await tx.send({ topic, messages: [{ value: 'open 1' }, { value: 'open 2' }] });
  await withAdmin(async (admin) => {
    const [ends] = await probeEnds(admin, [topic]);
    t.is(ends!.highWatermark, 3n);
    t.is(ends!.lastStable, 1n);
    const [kafkajsEnds] = await admin.fetchTopicOffsets(topic);
    t.is(kafkajsEnds!.high, '1', 'kafkajs "high" is the last stable offset');
    t.is(kafkajsEnds!.offset, '1');
  });
  await tx.abort();
});
