/**
 * Plants one anomaly into a finished run's topics, after the processors stopped and before the verifier reads them,
 * to show the verifier (and the test around it) catches what it claims to: a duplicate output, a lost output, a store
 * value that differs from the model, a transaction left open, a missing or an extra dead letter; and for a workload
 * with a groupBy projection (bank: balance-bands; orders: order-sizes), a grouped view record written again (`group-view`) or a group's
 * store entry counting one member too many (`group-store`, a doubled membership change); and for a workload with a
 * chained projection (bank: account-tiers), one of its view records written again (`chain-duplicate`) or deleted
 * (`chain-loss`); and for a workload with a saga, one of the saga's commands written again (`command-duplicate`).
 */
import kafkajs, { Kafka, logLevel, type Producer } from 'kafkajs';
import type { PlantKind } from './profiles.ts';
import { probeEnds } from './verify/offsets-probe.ts';
import { readTopics } from './verify/read-topics.ts';

// not named exports of kafkajs's CommonJS module under Node's ESM loader
const { ConfigResourceTypes, ConfigSource } = kafkajs;

export interface PlantTargets {
  output: string;
  changelog: string;
  dlq: string;
  input: string;
  /** the grouped view topic of a groupBy projection, if the workload has one */
  groupView?: string;
  /** the changelog of that projection's `groups` store (its second stage) */
  groupChangelog?: string;
  /** the name of that projection's `count` aggregation */
  groupCountField?: string;
  /** the view topic of a chained projection (inputFormat: view), if the workload has one */
  chainView?: string;
  /** a topic a saga sends commands to, if the workload has one */
  commands?: string;
}

export interface Planted {
  kind: PlantKind;
  what: string;
  /** call after verification: ends an open transaction left on purpose */
  cleanup?: () => Promise<void>;
}

type FirstRecord = { partition: number; offset: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer> };

/** The first record (that `accept` takes) of the first non-empty partition of the topic. */
async function firstRecord(kafka: Kafka, topic: string, accept: (r: FirstRecord) => boolean = () => true): Promise<FirstRecord> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await probeEnds(admin, [topic]);
  await admin.disconnect();
  const partition = ends.find((e) => e.lastStable > e.logStart)?.partition;
  if (partition === undefined) throw new Error(`cannot plant: ${topic} is empty`);
  const consumer = kafka.consumer({ groupId: `chaos-plant-${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cannot plant: no record read from ${topic}`)), 30_000);
      void consumer.run({
        eachMessage: async ({ partition: p, message }) => {
          if (p !== partition) return;
          const r = { partition: p, offset: message.offset, key: message.key, value: message.value, headers: (message.headers ?? {}) as Record<string, Buffer> };
          if (!accept(r)) return;
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

async function deleteFirst(kafka: Kafka, topic: string): Promise<string> {
  const r = await firstRecord(kafka, topic);
  const admin = kafka.admin();
  await admin.connect();
  // kafkajs's deleteTopicRecords needs the topic's metadata loaded (KafkaJSTopicMetadataNotLoaded otherwise)
  await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: r.partition, offset: String(BigInt(r.offset) + 1n) }] });
  await admin.disconnect();
  return `${topic}/${r.partition}@${r.offset}`;
}

/**
 * The same for a compacted topic, which refuses DeleteRecords (POLICY_VIOLATION): its cleanup.policy is made
 * `compact,delete` for the deletion and then set back (AlterConfigs replaces every override, so all are restated).
 */
async function deleteFirstOfCompacted(kafka: Kafka, topic: string): Promise<string> {
  const r = await firstRecord(kafka, topic);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
    // the topic's own overrides
    const overrides = (resources[0]?.configEntries ?? []).filter((c) => c.configSource === ConfigSource.TOPIC_CONFIG).map((c) => ({ name: c.configName, value: c.configValue }));
    const withPolicy = (policy: string) => [...overrides.filter((c) => c.name !== 'cleanup.policy'), { name: 'cleanup.policy', value: policy }];
    const original = overrides.find((c) => c.name === 'cleanup.policy')?.value ?? 'compact';
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: withPolicy('compact,delete') }] });
    try {
      await admin.fetchTopicMetadata({ topics: [topic] });
      // the new policy reaches the partition's log shortly after AlterConfigs returns
      for (let attempt = 1; ; attempt++) {
        try {
          await admin.deleteTopicRecords({ topic, partitions: [{ partition: r.partition, offset: String(BigInt(r.offset) + 1n) }] });
          break;
        } catch (e) {
          if (attempt >= 40) throw e;
          await new Promise((res) => setTimeout(res, 250));
        }
      }
    } finally {
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: withPolicy(original) }] });
    }
  } finally {
    await admin.disconnect();
  }
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString()]));
  return `${topic}/${r.partition}@${r.offset} (key ${r.key?.toString()}, version ${headers['foldstream.view.version']})`;
}

async function withProducer<T>(kafka: Kafka, fn: (p: Producer) => Promise<T>): Promise<T> {
  const p = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  try {
    return await fn(p);
  } finally {
    await p.disconnect();
  }
}

export async function plant(brokers: string[], kind: PlantKind, t: PlantTargets): Promise<Planted> {
  const kafka = new Kafka({ brokers, clientId: 'chaos-plant', logLevel: logLevel.NOTHING });
  switch (kind) {
    case 'duplicate': {
      // a record the generator wrote bad on purpose (bank: bad events share the events topic) re-sent without its
      // header would be a misclassified input, not a duplicate output
      const r = await firstRecord(kafka, t.output, (x) => x.headers['chaos.bad'] === undefined);
      await withProducer(kafka, (p) => p.send({ topic: t.output, messages: [{ partition: r.partition, key: r.key, value: r.value }] }));
      return { kind, what: `re-sent ${t.output}/${r.partition}@${r.offset} (key ${r.key?.toString()})` };
    }
    case 'loss':
      return { kind, what: `deleted the first record of ${await deleteFirst(kafka, t.output)}` };
    case 'store': {
      const r = await firstRecord(kafka, t.changelog);
      const { pack } = await import('msgpackr');
      await withProducer(kafka, (p) => p.send({ topic: t.changelog, messages: [{ partition: r.partition, key: r.key, value: pack({ planted: true }) }] }));
      return { kind, what: `overwrote store key ${JSON.stringify(r.key?.toString())} in ${t.changelog}/${r.partition}` };
    }
    case 'open-transaction': {
      const p = kafka.producer({ transactionalId: `chaos-plant-open-${Date.now()}`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 120_000 });
      await p.connect();
      const tx = await p.transaction();
      await tx.send({ topic: t.output, messages: [{ partition: 0, key: 'planted', value: '{}' }] });
      return {
        kind,
        what: `a transaction left open on ${t.output}/0`,
        cleanup: async () => {
          await tx.abort().catch(() => undefined);
          await p.disconnect();
        },
      };
    }
    case 'dlq-missing':
      return { kind, what: `deleted the first dead letter of ${await deleteFirst(kafka, t.dlq)}` };
    case 'dlq-extra': {
      const r = await firstRecord(kafka, t.input);
      const headers = {
        'foldstream.error.code': 'HANDLER_FAILED',
        'foldstream.error.message': 'planted',
        'foldstream.source.topic': t.input,
        'foldstream.source.partition': String(r.partition),
        'foldstream.source.offset': r.offset,
        'foldstream.source.timestamp': '0',
        'foldstream.processor': 'planted',
      };
      await withProducer(kafka, (p) => p.send({ topic: t.dlq, messages: [{ partition: r.partition, key: r.key, value: r.value, headers }] }));
      return { kind, what: `dead-lettered good input ${t.input}/${r.partition}@${r.offset}` };
    }
    case 'group-view': {
      if (!t.groupView) throw new Error('cannot plant group-view: this workload has no groupBy projection');
      const r = await firstRecord(kafka, t.groupView);
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString()]));
      await withProducer(kafka, (p) => p.send({ topic: t.groupView!, messages: [{ partition: r.partition, key: r.key, value: r.value, headers }] }));
      return { kind, what: `re-sent grouped view record ${t.groupView}/${r.partition}@${r.offset} (group ${r.key?.toString()}, version ${headers['foldstream.view.version']}), as a group stage that applied nothing new would` };
    }
    case 'group-store': {
      if (!t.groupChangelog) throw new Error('cannot plant group-store: this workload has no groupBy projection');
      // the latest entry of a group with members (as the verifier reads it): one member more, as a doubled join would
      const admin = kafka.admin();
      await admin.connect();
      const latest = new Map<string, { partition: number; entry: { view: Record<string, unknown> | null; members: number; version: number } }>();
      try {
        const { unpack } = await import('msgpackr');
        await readTopics(kafka, await probeEnds(admin, [t.groupChangelog]), { isolation: 'read_committed' }, (r) => {
          if (r.key === null || r.key[0] === 0) return; // position markers
          if (r.value === null) latest.delete(r.key.toString());
          else latest.set(r.key.toString(), { partition: r.partition, entry: unpack(r.value) as { view: Record<string, unknown> | null; members: number; version: number } });
        });
      } finally {
        await admin.disconnect();
      }
      const found = [...latest].find(([, e]) => e.entry.members > 0) ?? [...latest][0];
      if (!found) throw new Error(`cannot plant: ${t.groupChangelog} holds no group`);
      const [key, { partition, entry }] = found;
      const { pack } = await import('msgpackr');
      const members = entry.members + 1;
      const view = { ...(entry.view ?? { key }), [t.groupCountField ?? 'count']: members };
      await withProducer(kafka, (p) => p.send({ topic: t.groupChangelog!, messages: [{ partition, key, value: pack({ view, members, version: entry.version }) }] }));
      return { kind, what: `made group ${JSON.stringify(key)} count ${members} members instead of ${entry.members} (version ${entry.version}) in ${t.groupChangelog}/${partition}` };
    }
    case 'chain-duplicate': {
      if (!t.chainView) throw new Error('cannot plant chain-duplicate: this workload has no chained projection');
      const r = await firstRecord(kafka, t.chainView);
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString()]));
      await withProducer(kafka, (p) => p.send({ topic: t.chainView!, messages: [{ partition: r.partition, key: r.key, value: r.value, headers }] }));
      return { kind, what: `re-sent chained view record ${t.chainView}/${r.partition}@${r.offset} (key ${r.key?.toString()}, version ${headers['foldstream.view.version']}), as a chained projection that wrote it twice would` };
    }
    case 'command-duplicate': {
      if (!t.commands) throw new Error('cannot plant command-duplicate: this workload has no saga');
      const r = await firstRecord(kafka, t.commands);
      await withProducer(kafka, (p) => p.send({ topic: t.commands!, messages: [{ partition: r.partition, key: r.key, value: r.value }] }));
      const v = JSON.parse(r.value?.toString('utf8') ?? '{}') as { commandId?: string; commandType?: string };
      return { kind, what: `re-sent saga command ${t.commands}/${r.partition}@${r.offset} (${v.commandType} ${v.commandId}), as a saga that sent it twice would` };
    }
    case 'chain-loss':
      if (!t.chainView) throw new Error('cannot plant chain-loss: this workload has no chained projection');
      return { kind, what: `deleted the first chained view record of ${await deleteFirstOfCompacted(kafka, t.chainView)}, as a chained projection that skipped an upstream view record would` };
  }
}
