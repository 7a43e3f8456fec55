/**
 * The chaos verifier against topics written directly (no foldstream): a correct run passes, and each planted anomaly
 * (duplicate, loss, disorder, store mismatch, open transaction, missing / extra / wrong dead letter) is found, and
 * makes the assertions the chaos tests use fail; its read_committed is not fooled by transactions aborted out of order.
 * Needs the broker at KAFKA_BROKERS (127.0.0.1:9092). The bank model's groupBy checks (balance-bands) and chained
 * projection checks (account-tiers) run on records made by hand, without the broker.
 */
import test from 'ava';
import kafkajs, { type Message, type Producer } from 'kafkajs';
import { pack } from 'msgpackr';
import { createTopics, deleteTopics, kafka, unique, withAdmin } from '../helpers/kafka.ts';
import { BROKERS } from '../helpers/kafka.ts';
import { assertVerificationClean } from './assert-run.ts';
import type { SequenceFindings, StoreFindings } from './verify/compare.ts';
import type { DlqFindings } from './verify/dlq.ts';
import { BankModel } from './verify/model-bank.ts';
import { CounterModel } from './verify/model-counter.ts';
import { clusterMetadata, openTransactions, probeEnds } from './verify/offsets-probe.ts';
import { waitFor } from '../helpers/processes.ts';
import { readTopics, type VRecord } from './verify/read-topics.ts';
import { problemsOf, verify, type Verification } from './verify/verifier.ts';
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
  wrongPartition?: boolean;
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
  // idempotent: a produce retried on a fresh broker must not write a record twice (a CI run found a dead letter doubled)
  const producer = k.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
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
    if (plant.wrongPartition) {
      // b's outputs, values and order intact, in the partition murmur2 does not give b
      for (const [i, o] of outputs.entries()) if (o.key === 'b') outputs[i] = { ...o, partition: (o.partition! + 1) % P };
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

test.serial('finds an output in a partition other than its key\'s', async (t) => {
  const { verification: v, cleanup } = await writtenRun({ wrongPartition: true });
  t.teardown(cleanup);
  const out = Object.values(v.model.outputs)[0]!;
  t.is(out.wrongValues, 2);
  t.is(out.duplicates + out.losses + out.outOfOrder, 0);
  t.regex(out.samples.join('\n'), /wrong partition: key b at /);
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

test.serial('a metadata request that times out is asked again instead of failing the verification', async (t) => {
  await withAdmin(async (admin) => {
    let calls = 0;
    const flaky = new Proxy(admin, {
      get(target, prop, receiver) {
        if (prop === 'describeCluster' && calls++ === 0) return () => Promise.reject(new Error('Request Metadata(key: 3, version: 6) timed out'));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const md = await clusterMetadata(flaky, []);
    t.is(calls, 2);
    t.true(md.brokers.size >= 1);
    await t.throwsAsync(clusterMetadata(new Proxy(admin, { get: () => () => Promise.reject(new Error('down')) }), [], 2), { message: 'down' });
  });
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

test.serial('read_committed is decided from the markers: aborts out of order hide nothing they should and deliver nothing aborted (kafkajs delivers some)', async (t) => {
  // test/chaos/repro/kafkajs-aborted-order.ts: A and B overlap in one partition, B aborted first, then A; C commits
  // around them. A read_committed kafkajs consumer delivers A's records; the verifier must not.
  const topic = unique('chaos-aborts');
  await createTopicsReady([topic], 1);
  const k = kafka('chaos-aborts-test');
  const producer = (id: string) => k.producer({ transactionalId: `${topic}-${id}`, idempotent: true, maxInFlightRequests: 1 });
  const [a, b, c] = [producer('a'), producer('b'), producer('c')];
  await Promise.all([a.connect(), b.connect(), c.connect()]);
  t.teardown(async () => {
    await Promise.all([a, b, c].map((p) => p.disconnect().catch(() => undefined)));
    await deleteTopics([topic]);
  });
  const msgs = (who: string, n: number) => Array.from({ length: n }, (_, i) => ({ partition: 0, key: who, value: `${who}-${i}` }));
  const tc = await c.transaction();
  await tc.send({ topic, messages: msgs('C', 2) }); // 0-1, committed after everything else was written
  const ta = await a.transaction();
  await ta.send({ topic, messages: msgs('A', 3) }); // 2-4, aborted second
  const tb = await b.transaction();
  await tb.send({ topic, messages: msgs('B', 3) }); // 5-7, aborted first
  await tc.send({ topic, messages: msgs('C2', 1) }); // 8
  await tb.abort();
  await ta.abort();
  await tc.commit();
  // the markers reach the partition just after EndTxn returns: until then the last stable offset is below them
  let ends = await withAdmin((admin) => probeEnds(admin, [topic]));
  await waitFor(async () => openTransactions((ends = await withAdmin((admin) => probeEnds(admin, [topic])))).length === 0, 10_000, 'the commit markers', 100);
  const seen: string[] = [];
  await readTopics(k, ends, { isolation: 'read_committed' }, (r) => seen.push(`${r.offset}:${r.value?.toString()}`));
  t.deepEqual(seen, ['0:C-0', '1:C-1', '8:C2-0']);
  const all: string[] = [];
  await readTopics(k, ends, { isolation: 'read_uncommitted' }, (r) => all.push(r.value!.toString()));
  t.deepEqual(all, ['C-0', 'C-1', 'A-0', 'A-1', 'A-2', 'B-0', 'B-1', 'B-2', 'C2-0']);
});

/**
 * The bank model's groupBy projection (balance-bands) on records written by hand, no broker: acc-1 opens, gets 1500
 * (band-1), withdraws 600 (900: leaves band-1 for band-0), gets 50 (950: stays in band-0, sums change); acc-2 opens
 * and gets 1200 (band-1). A join at version v adds v² to versionSquares, a leave removes the previous version's
 * square, a stay adds the difference.
 */
interface BandsPlant {
  /** the first stage wrote a change twice, and the group stage applied both */
  duplicateChange?: boolean;
  /** the first stage lost a change (and the group stage never saw it) */
  lostChange?: boolean;
  /** the group stage applied a change that is not in the committed repartition log (an aborted one) */
  appliedUncommitted?: boolean;
  /** a group view record written again */
  duplicateView?: boolean;
  /** the groups store counts a member too many */
  wrongGroupsStore?: boolean;
}

function bandsRun(plant: BandsPlant): ReturnType<BankModel['finish']> {
  const app = 'bands';
  const t = { app, commands: `${app}-commands`, events: `${app}-events`, replies: `${app}-replies`, view: `${app}-account-view`, bands: `${app}-balance-bands`, tiers: `${app}-account-tiers`, partitions: 12, maxRecordBytes: 16_384 };
  const model = new BankModel(t);
  const offsets = new Map<string, bigint>();
  const rec = (topic: string, partition: number, key: string | null, value: Buffer | null, headers: Record<string, string> = {}): VRecord => {
    const k = `${topic}:${partition}`;
    const offset = offsets.get(k) ?? 0n;
    offsets.set(k, offset + 1n);
    return { topic, partition, offset, key: key === null ? null : Buffer.from(key), value, headers, timestamp: 0 };
  };
  let seq = 0;
  const command = (account: string, commandType: string, data: Record<string, unknown>) =>
    model.onInput(rec(t.commands, partitionOf(account, 12), account, Buffer.from(JSON.stringify({ commandId: `c-${++seq}`, commandType, aggregateId: account, data }))));
  command('acc-1', 'OpenAccount', { owner: 'o' });
  command('acc-1', 'Deposit', { amount: 1500 });
  command('acc-2', 'OpenAccount', { owner: 'o' });
  command('acc-1', 'Withdraw', { amount: 600 });
  command('acc-2', 'Deposit', { amount: 1200 });
  command('acc-1', 'Deposit', { amount: 50 });

  const repartition = `${app}-balance-bands-repartition`;
  const change = (band: string, source: string, members: number, balance: number, versionSquares: number) => ({ band, value: { source, members, sums: { balance, versionSquares } } });
  // the committed repartition log, per band in offset order (acc-1's and acc-2's changes to band-1 interleaved)
  const log: Record<string, ReturnType<typeof change>[]> = {
    'band-1': [change('band-1', 'acc-1', 1, 1500, 4), change('band-1', 'acc-2', 1, 1200, 4), change('band-1', 'acc-1', -1, -1500, -4)],
    'band-0': [change('band-0', 'acc-1', 1, 900, 9), change('band-0', 'acc-1', 0, 50, 7)],
  };
  if (plant.duplicateChange) log['band-1']!.splice(1, 0, log['band-1']![0]!);
  if (plant.lostChange) log['band-0']!.pop();
  const applied = Object.fromEntries(Object.entries(log).map(([k, v]) => [k, [...v]]));
  if (plant.appliedUncommitted) applied['band-0']!.splice(1, 0, change('band-0', 'acc-9', 1, 400, 4));
  for (const entries of Object.values(log)) for (const c of entries) model.onOutput(rec(repartition, partitionOf(c.band, 12), c.band, Buffer.from(JSON.stringify(c.value))));

  // the group stage: one view per change applied, version 1, 2, ...; then its store
  const groups = new Map<string, unknown>();
  const groupsLog = `${app}-balance-bands-group-groups-changelog`;
  for (const [band, entries] of Object.entries(applied)) {
    let s = { members: 0, balance: 0, versionSquares: 0 };
    const views: VRecord[] = [];
    entries.forEach((c, i) => {
      s = { members: s.members + c.value.members, balance: s.balance + c.value.sums.balance, versionSquares: s.versionSquares + c.value.sums.versionSquares };
      const view = s.members > 0 ? { key: band, accounts: s.members, ...(({ members: _m, ...sums }) => sums)(s) } : null;
      views.push(rec(t.bands, partitionOf(band, 12), band, view ? Buffer.from(JSON.stringify(view)) : null, { 'foldstream.view.version': String(i + 1) }));
      groups.set(band, { view, members: s.members + (plant.wrongGroupsStore && band === 'band-1' ? 1 : 0), version: i + 1 });
    });
    if (plant.duplicateView && band === 'band-1') views.push({ ...views[0]!, offset: views.at(-1)!.offset + 1n });
    for (const v of views) model.onOutput(v);
  }
  for (const [band, value] of groups) model.onOutput(rec(groupsLog, partitionOf(band, 12), band, pack(value)));
  // the first stage's view store
  const viewLog = `${app}-balance-bands-view-changelog`;
  model.onOutput(rec(viewLog, partitionOf('acc-1', 12), 'acc-1', pack({ view: { balance: 950, version: 4 }, version: 4, group: { key: 'band-0', sums: { balance: 950, versionSquares: 16 } } })));
  model.onOutput(rec(viewLog, partitionOf('acc-2', 12), 'acc-2', pack({ view: { balance: 1200, version: 2 }, version: 2, group: { key: 'band-1', sums: { balance: 1200, versionSquares: 4 } } })));
  // position markers of the group stage, past the last repartition record of each partition
  for (const [k, next] of offsets) {
    if (!k.startsWith(`${repartition}:`)) continue;
    const partition = Number(k.slice(k.lastIndexOf(':') + 1));
    model.onOutput(rec(groupsLog, partition, '\u0000position', pack({ offsets: { [repartition]: String(next) }, streamTime: 0 }), { 'foldstream.marker': 'position' }));
  }
  return model.finish(new Map());
}

const bandsProblems = (f: ReturnType<BankModel['finish']>) => {
  const outs = Object.entries(f.outputs).filter(([topic]) => topic.includes('balance-bands'));
  const stores = f.stores.filter((s) => s.store.startsWith('balance-bands'));
  return {
    repartition: outs.find(([topic]) => topic.endsWith('-repartition'))![1],
    view: outs.find(([topic]) => topic.endsWith('-balance-bands'))![1],
    final: stores.find((s) => s.store.includes('last value'))!,
    viewStore: stores.find((s) => s.store === 'balance-bands view')!,
    groupsStore: stores.find((s) => s.store === 'balance-bands-group groups')!,
  };
};

test('balance-bands: a correct run of both stages passes', (t) => {
  const f = bandsRun({});
  const p = bandsProblems(f);
  for (const s of [p.repartition, p.view]) t.is(s.duplicates + s.losses + s.outOfOrder + s.wrongValues, 0, s.samples.join(' | '));
  t.is(p.repartition.records, 5);
  t.is(p.view.records, 5);
  for (const s of [p.final, p.viewStore, p.groupsStore]) t.is(s.mismatches, 0, s.samples.join(' | '));
  t.like(f.stats, { bands: 2, bandJoins: 3, bandLeaves: 1, bandStays: 1 });
});

test('balance-bands: a change the first stage wrote twice is a duplicate in the repartition topic, and the groups are off', (t) => {
  const p = bandsProblems(bandsRun({ duplicateChange: true }));
  t.is(p.repartition.duplicates, 1);
  t.regex(p.repartition.samples.join('\n'), /duplicate: key band-1 ← acc-1 id v2\+/);
  t.is(p.view.wrongValues + p.view.duplicates, 0, 'the group stage folded what was committed');
  t.is(p.final.mismatches, 1);
  t.is(p.groupsStore.mismatches, 1);
});

test('balance-bands: a change the first stage lost is a loss in the repartition topic', (t) => {
  const p = bandsProblems(bandsRun({ lostChange: true }));
  t.is(p.repartition.losses, 1);
  t.regex(p.repartition.samples.join('\n'), /lost: key band-0 ← acc-1 id v4=/);
  t.is(p.final.mismatches, 1);
});

test('balance-bands: a change the group stage applied but nobody committed is found in the grouped view', (t) => {
  const p = bandsProblems(bandsRun({ appliedUncommitted: true }));
  t.is(p.repartition.duplicates + p.repartition.losses + p.repartition.wrongValues, 0);
  t.true(p.view.wrongValues >= 2, p.view.samples.join(' | '));
  t.regex(p.view.samples[0]!, /group band-0: the group stage wrote versions up to 3; the repartition log committed 2 changes/);
  t.is(p.final.mismatches, 1);
  t.is(p.groupsStore.mismatches, 1);
});

test('balance-bands: a grouped view record written twice is a duplicate, and the last value per band is wrong', (t) => {
  const p = bandsProblems(bandsRun({ duplicateView: true }));
  t.is(p.view.duplicates, 1);
  t.is(p.final.mismatches, 1);
});

test('balance-bands: a groups store entry off by a member is a store mismatch', (t) => {
  const p = bandsProblems(bandsRun({ wrongGroupsStore: true }));
  t.is(p.groupsStore.mismatches, 1);
  t.regex(p.groupsStore.samples[0]!, /key "band-1"/);
  t.is(p.final.mismatches, 0);
});

/**
 * The bank model's chained projection (account-tiers, inputFormat: view over account-view) on records written by
 * hand, no broker: acc-1 opens (balance 0: none), gets 3000 (silver), 2500 (5500: gold), withdraws 5500 (0: none);
 * acc-2 opens, gets 100 (silver), is closed (its views deleted: tombstones) and opened again (a new view, none).
 * account-view writes one view per event with header foldstream.view.version; account-tiers one view per
 * account-view record: {tier, balance, version, updates, previousTier (from the second)}, or a tombstone.
 */
interface TiersPlant {
  /** a chained view record written twice */
  duplicate?: boolean;
  /** a chained view record never written (an upstream view record skipped) */
  lost?: boolean;
  /** a chained view record with a wrong tier */
  wrongValue?: boolean;
  /** every view from acc-1's second on counts one update too many, as if its first upstream record was applied twice */
  appliedTwice?: boolean;
  /** acc-2's view after it was opened again continues the deleted one, as if the deletion never reached the store */
  deletionIgnored?: boolean;
}

function tiersRun(plant: TiersPlant): ReturnType<BankModel['finish']> {
  const app = 'tiers';
  const t = { app, commands: `${app}-commands`, events: `${app}-events`, replies: `${app}-replies`, view: `${app}-account-view`, bands: `${app}-balance-bands`, tiers: `${app}-account-tiers`, partitions: 12, maxRecordBytes: 16_384 };
  const model = new BankModel(t);
  const offsets = new Map<string, bigint>();
  const rec = (topic: string, key: string, value: Buffer | null, headers: Record<string, string> = {}, partition = partitionOf(key, 12)): VRecord => {
    const k = `${topic}:${partition}`;
    const offset = offsets.get(k) ?? 0n;
    offsets.set(k, offset + 1n);
    return { topic, partition, offset, key: Buffer.from(key), value, headers, timestamp: 0 };
  };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  let seq = 0;
  const command = (account: string, commandType: string, data: Record<string, unknown>) =>
    model.onInput(rec(t.commands, account, json({ commandId: `c-${++seq}`, commandType, aggregateId: account, data })));
  command('acc-1', 'OpenAccount', { owner: 'o' });
  command('acc-1', 'Deposit', { amount: 3000 });
  command('acc-2', 'OpenAccount', { owner: 'o' });
  command('acc-1', 'Deposit', { amount: 2500 });
  command('acc-2', 'Deposit', { amount: 100 });
  command('acc-1', 'Withdraw', { amount: 5500 });
  command('acc-2', 'CloseAccount', {});
  command('acc-2', 'OpenAccount', { owner: 'p' });

  // account-view (the upstream): one record per event (null: a tombstone, with its version)
  // a view carries its version; a tombstone (null) names it beside
  type Rec = [key: string, value: Record<string, unknown> | null, tombstoneVersion?: number];
  const versionOf = ([, v, tombstoneVersion]: Rec) => (v?.version as number | undefined) ?? tombstoneVersion!;
  const views: Rec[] = [
    ['acc-1', { id: 'acc-1', owner: 'o', balance: 0, deposits: 0, withdrawals: 0, version: 1 }],
    ['acc-1', { id: 'acc-1', owner: 'o', balance: 3000, deposits: 1, withdrawals: 0, version: 2 }],
    ['acc-2', { id: 'acc-2', owner: 'o', balance: 0, deposits: 0, withdrawals: 0, version: 1 }],
    ['acc-1', { id: 'acc-1', owner: 'o', balance: 5500, deposits: 2, withdrawals: 0, version: 3 }],
    ['acc-2', { id: 'acc-2', owner: 'o', balance: 100, deposits: 1, withdrawals: 0, version: 2 }],
    ['acc-1', { id: 'acc-1', owner: 'o', balance: 0, deposits: 2, withdrawals: 1, version: 4 }],
    ['acc-2', null, 3],
    ['acc-2', { id: 'acc-2', owner: 'p', balance: 0, deposits: 0, withdrawals: 0, version: 4 }],
  ];
  const write = (topic: string, r: Rec) => model.onOutput(rec(topic, r[0], r[1] === null ? null : json(r[1]), { 'foldstream.view.version': String(versionOf(r)) }));
  for (const r of views) write(t.view, r);

  // account-tiers: one record per upstream record, in the account's order
  const tiers: Rec[] = [
    ['acc-1', { tier: 'none', balance: 0, version: 1, updates: 1 }],
    ['acc-1', { tier: 'silver', balance: 3000, version: 2, updates: 2, previousTier: 'none' }],
    ['acc-2', { tier: 'none', balance: 0, version: 1, updates: 1 }],
    ['acc-1', { tier: 'gold', balance: 5500, version: 3, updates: 3, previousTier: 'silver' }],
    ['acc-2', { tier: 'silver', balance: 100, version: 2, updates: 2, previousTier: 'none' }],
    ['acc-1', { tier: 'none', balance: 0, version: 4, updates: 4, previousTier: 'gold' }],
    ['acc-2', null, 3],
    ['acc-2', { tier: 'none', balance: 0, version: 4, updates: 1 }],
  ];
  if (plant.appliedTwice) for (const [key, v] of tiers) if (key === 'acc-1' && v && (v.version as number) >= 2) v.updates = (v.updates as number) + 1;
  if (plant.deletionIgnored) tiers[7] = ['acc-2', { tier: 'none', balance: 0, version: 4, updates: 3, previousTier: 'silver' }];
  const written = [...tiers];
  if (plant.duplicate) written.push(tiers[1]!);
  if (plant.lost) written.splice(3, 1);
  if (plant.wrongValue) written[4] = ['acc-2', { ...tiers[4]![1], tier: 'gold' }];
  for (const r of written) write(t.tiers, r);

  // its view store: the last view per account and its version; position markers past each view partition's end
  const changelog = `${app}-account-tiers-view-changelog`;
  const last = new Map(tiers.map((r) => [r[0], { view: r[1], version: versionOf(r) }]));
  for (const [key, v] of last) model.onOutput(rec(changelog, key, pack(v)));
  for (const [k, next] of offsets) {
    if (!k.startsWith(`${t.view}:`)) continue;
    const partition = Number(k.slice(k.lastIndexOf(':') + 1));
    model.onOutput(rec(changelog, '\u0000position', pack({ offsets: { [t.view]: String(next) }, streamTime: 0 }), { 'foldstream.marker': 'position' }, partition));
  }
  return model.finish(new Map());
}

/** The findings about account-tiers only (the rest of the bank model was not fed), as a verification the chaos assertions can judge. */
function tiersVerification(f: ReturnType<BankModel['finish']>): { verification: Verification; view: SequenceFindings; store: StoreFindings; dlq: DlqFindings; upstream: SequenceFindings } {
  const model = {
    ...f,
    outputs: Object.fromEntries(Object.entries(f.outputs).filter(([topic]) => topic.endsWith('-account-tiers'))),
    stores: f.stores.filter((s) => s.store.startsWith('account-tiers')),
    dlq: f.dlq.filter((d) => d.topic.endsWith('-account-tiers-dlq')),
  };
  const transactions = { partitionsChecked: 0, open: [], committedRecords: {}, abortedRecords: {} };
  return {
    verification: { workload: 'bank', model, transactions, problems: problemsOf(model, transactions) },
    view: Object.values(model.outputs)[0]!,
    store: model.stores[0]!,
    dlq: model.dlq[0]!,
    upstream: Object.entries(f.outputs).find(([topic]) => topic.endsWith('-account-view'))![1],
  };
}

test('account-tiers: a correct chained view passes', (t) => {
  const f = tiersRun({});
  const { verification, view, store, dlq, upstream } = tiersVerification(f);
  t.is(upstream.duplicates + upstream.losses + upstream.outOfOrder + upstream.wrongValues, 0, `the upstream records are wrong: ${upstream.samples.join(' | ')}`);
  t.is(view.records, 8);
  t.is(view.expected, 8);
  t.is(store.keys, 2);
  t.is(dlq.expected + dlq.found, 0);
  t.like(f.stats, { tiersGold: 0, tiersSilver: 0, tiersNone: 2, tierChanges: 4, tierDeletions: 1, accountsClosed: 1, accountsReopened: 1 });
  assertVerificationClean(t, verification);
});

test('account-tiers: a chained view record written twice is a duplicate', async (t) => {
  const { verification, view } = tiersVerification(tiersRun({ duplicate: true }));
  t.is(view.duplicates, 1);
  t.is(view.losses + view.wrongValues + view.outOfOrder, 0);
  t.regex(view.samples.join('\n'), /duplicate: key acc-1 id 2 /);
  t.regex(verification.problems.join('\n'), /output tiers-account-tiers: 1 duplicates/);
  await chaosAssertionsFail(t, verification);
});

test('account-tiers: a chained view record never written is a loss', async (t) => {
  const { verification, view } = tiersVerification(tiersRun({ lost: true }));
  t.is(view.losses, 1);
  t.is(view.duplicates + view.wrongValues, 0);
  t.regex(view.samples.join('\n'), /lost: key acc-1 id 3:/);
  await chaosAssertionsFail(t, verification);
});

test('account-tiers: a chained view record with a wrong value is found', async (t) => {
  const { verification, view, store } = tiersVerification(tiersRun({ wrongValue: true }));
  t.is(view.wrongValues, 1);
  t.is(view.duplicates + view.losses, 0);
  t.regex(view.samples.join('\n'), /wrong value: key acc-2 id 2 .*"tier":"gold".*model: .*"tier":"silver"/);
  t.is(store.mismatches, 0, 'only the record is wrong, not the store');
  await chaosAssertionsFail(t, verification);
});

test('account-tiers: an upstream record applied twice shows in every later value and in the store', async (t) => {
  const { verification, view, store } = tiersVerification(tiersRun({ appliedTwice: true }));
  t.is(view.wrongValues, 3);
  t.is(store.mismatches, 1);
  t.regex(store.samples[0]!, /key "acc-1"/);
  await chaosAssertionsFail(t, verification);
});

test('account-tiers: a deletion that did not reach the store shows in the view after the account is opened again', async (t) => {
  const { verification, view, store } = tiersVerification(tiersRun({ deletionIgnored: true }));
  t.is(view.wrongValues, 1);
  t.regex(view.samples.join('\n'), /wrong value: key acc-2 id 4 .*"updates":3.*model: .*"updates":1/);
  t.is(store.mismatches, 1);
  await chaosAssertionsFail(t, verification);
});
