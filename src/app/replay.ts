/**
 * `foldstream replay`: rebuilds some views of a running projection from scratch (processors/projection/replay.ts has
 * the protocol the projection follows). This side reads the projection's inputs (read_committed), and for each chosen
 * view key writes `begin`, a copy of every event of the key and `end` (with the last version it read) onto the
 * projection's replay topic, one Kafka transaction per batch of keys, so a key's sequence is there whole or not at
 * all. Then it waits for the projection's `result` records: a key whose rebuild came `stale` (an event of the
 * aggregate was applied live after this read) is read and sent again.
 *
 * Exactly once for the views: the projection applies the sequence in its own transactions, like any input; a sequence
 * sent twice (a re-run, or a command killed after its commit) rebuilds the same view twice, which is idempotent.
 * The wiring of Kafka lives here (app/ is the one composition root of offline operations); cli/replay parses and prints.
 */
import { randomBytes } from 'node:crypto';
import { FoldstreamError } from '../errors.ts';
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import { createKafka, type KafkaClient } from '../kafka/client.ts';
import { createOffsetsAdmin } from '../kafka/offsets-admin.ts';
import { createTaskProducer, sendInOneTransaction } from '../kafka/task-producer.ts';
import type { FetchedRecord, OffsetsAdmin, OutgoingRecord, RecordHeaders } from '../kafka/types.ts';
import { REPLAY_HEADERS, type ReplayOutcome } from '../processors/projection/replay.ts';
import type { Logger } from '../processors/types.ts';
import { decode } from '../serde/codecs.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { inputsOf, replays, replayTopic } from '../topology/names.ts';
import type { ProjectionProcessorDecl, Topology } from '../topology/schema.ts';

/** Why `replay` cannot rebuild this projection's views, or undefined. */
export function replayRefusal(t: Topology, p: ProjectionProcessorDecl): string | undefined {
  if (!replays(p)) return `projection "${p.name}" reads another projection's views (inputFormat: view): a compacted view topic keeps only the latest view, not the history to rebuild from; replay the upstream projection, or reset this one`;
  const route = p.steps.find((s) => 'route' in s);
  if (route) return `projection "${p.name}" has a route step: the copied events would be routed to its targets a second time; reset it instead`;
  const codecs = new Set(inputsOf(p).map((a) => t.topics[a]!.codec));
  if (codecs.size > 1) return `projection "${p.name}" reads inputs with different codecs (${[...codecs].join(', ')}); its replay topic carries copies in one`;
  return undefined;
}

export interface ReplayRequest {
  projection: ProjectionProcessorDecl;
  /** view keys (aggregate ids, `tenantId:aggregateId` with tenants) */
  aggregates?: string[] | undefined;
  /** or: every aggregate with an event dated in [from, to) (the envelope's timestamp), ms since the epoch */
  from?: number | undefined;
  to?: number | undefined;
  log: Logger;
  /** views confirmed so far (rebuilt, or given up) of all to rebuild */
  onProgress?: (done: number, total: number) => void;
}

export interface KeyEvents {
  key: string;
  /** the partition its events are on: the task of the projection that holds its view */
  partition: number;
  records: FetchedRecord[];
  /** the last aggregateVersion among them */
  upTo: number;
}

export interface ReplayPlan {
  keys: KeyEvents[];
  /** named aggregates with no event on the inputs */
  notFound: string[];
  /** events read in all */
  read: number;
}

export interface ReplayOutcomes {
  rebuilt: { key: string; version: number }[];
  /** still stale after every attempt, or superseded by another replay of the key (orphan) */
  notRebuilt: { key: string; outcome: ReplayOutcome }[];
  /** no result before the wait ended (is the app running?) */
  unconfirmed: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Replay {
  private readonly t: Topology;
  private readonly kafka: KafkaClient;
  private readonly reader: ChangelogReader;
  private readonly admin: OffsetsAdmin;
  private readonly topic: string;
  private readonly runId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

  constructor(
    loaded: LoadedTopology,
    private readonly q: ReplayRequest,
  ) {
    this.t = loaded.topology;
    const refusal = replayRefusal(this.t, q.projection);
    if (refusal) throw new FoldstreamError('REPLAY_REFUSED', refusal, { hint: 'nothing was sent; see docs/projections.md#selective-replay' });
    this.kafka = createKafka(this.t, { baseDir: loaded.baseDir, log: q.log, clientIdSuffix: '-replay' });
    this.reader = new ChangelogReader(this.kafka, q.log);
    this.admin = createOffsetsAdmin(this.kafka);
    this.topic = replayTopic(this.t.app, q.projection.name);
  }

  private inputs() {
    return inputsOf(this.q.projection).map((alias) => this.t.topics[alias]!);
  }

  /** Whether an aggregate writing this events topic places its events with a partitioner module (not by key hash). */
  private customPartitioned(topic: string): boolean {
    return this.t.processors.some((p) => p.type === 'aggregate' && this.t.topics[p.output.events]?.name === topic && typeof p.partitioning === 'object');
  }

  /** Reads the inputs' partitions that can hold `keys` (every one when keys is undefined), calling `each` per record. */
  private async scan(keys: Set<string> | undefined, each: (r: FetchedRecord, topicCodec: string) => void): Promise<number> {
    let read = 0;
    for (const d of this.inputs()) {
      const starts = await this.admin.startOffsets(d.name);
      const all = [...Array(d.partitions).keys()];
      const partitions = keys && !this.customPartitioned(d.name) ? [...new Set([...keys].map((k) => partitionForKey(k, d.partitions)))].sort((a, b) => a - b) : all;
      for (const partition of partitions) {
        await this.reader.read(d.name, partition, starts.get(partition) ?? 0n, async (records) => {
          read += records.length;
          for (const r of records) each(r, d.codec);
        });
      }
    }
    return read;
  }

  private decoded(r: FetchedRecord, codec: string): { aggregateVersion?: unknown; timestamp?: unknown } | undefined {
    try {
      const v = decode(codec as Parameters<typeof decode>[0], r.value);
      return v !== null && typeof v === 'object' ? (v as { aggregateVersion?: unknown; timestamp?: unknown }) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The inputs must be there to read, and the replay topic for a running version of the app to read. */
  private async checkTopics(): Promise<void> {
    for (const d of this.inputs()) {
      if ((await this.admin.partitionCount(d.name)) === undefined) {
        throw new FoldstreamError('TOPIC_MISMATCH', `topic ${d.name}, an input of projection "${this.q.projection.name}", does not exist`, {
          hint: 'check kafka.brokers and the topic names, or create the topics with `foldstream topics <file> --create`',
        });
      }
    }
    if ((await this.admin.partitionCount(this.topic)) === undefined) {
      throw new FoldstreamError('REPLAY_REFUSED', `the replay topic ${this.topic} of projection "${this.q.projection.name}" does not exist, so no running version of the app reads it`, {
        hint: 'start this version of the app (it creates its internal topics), or run `foldstream topics <file> --create`, then replay again; nothing was sent',
      });
    }
  }

  /** The chosen keys and their events, read now (read_committed, to the inputs' last stable offsets). */
  async plan(only?: Set<string>): Promise<ReplayPlan> {
    await this.checkTopics();
    let keys = only;
    let read = 0;
    if (!keys && this.q.aggregates) keys = new Set(this.q.aggregates);
    if (!keys) {
      // --from/--to: first the keys with an event dated in the range, then all their events
      const { from = -Infinity, to = Infinity } = this.q;
      const found = new Set<string>();
      read += await this.scan(undefined, (r, codec) => {
        if (r.key === null) return;
        const ts = this.decoded(r, codec)?.timestamp;
        const at = typeof ts === 'string' ? Date.parse(ts) : r.timestamp;
        if (at >= from && at < to) found.add(r.key.toString('utf8'));
      });
      keys = found;
    }
    const byKey = new Map<string, KeyEvents>();
    if (keys.size) {
      read += await this.scan(keys, (r, codec) => {
        const key = r.key?.toString('utf8');
        if (key === undefined || !keys.has(key)) return;
        const e = byKey.get(key) ?? { key, partition: r.partition, records: [], upTo: 0 };
        byKey.set(key, e);
        e.records.push(r);
        const v = this.decoded(r, codec)?.aggregateVersion;
        if (typeof v === 'number' && Number.isSafeInteger(v) && v > e.upTo) e.upTo = v;
      });
    }
    return { keys: [...byKey.values()], notFound: [...keys].filter((k) => !byKey.has(k)).sort(), read };
  }

  /**
   * Sends the plan's sequences (one transaction per `batchKeys` keys) and, unless waitMs is 0, waits for the
   * projection's results, planning and sending stale keys again up to `attempts` times in all.
   */
  async run(first: ReplayPlan, opts: { waitMs: number; attempts: number; batchKeys?: number }): Promise<ReplayOutcomes> {
    await this.checkTopics();
    const total = first.keys.length;
    const rebuilt: ReplayOutcomes['rebuilt'] = [];
    const notRebuilt: ReplayOutcomes['notRebuilt'] = [];
    let plan = first;
    const producer = createTaskProducer(this.kafka, { transactionalId: `${this.t.app}-${this.q.projection.name}-replayer`, transactionTimeoutMs: this.t.processing.transactionTimeoutMs });
    try {
      await producer.init();
      for (let attempt = 1; plan.keys.length; attempt++) {
        const id = `${this.runId}.${attempt}`;
        const since = await this.admin.endOffsets(this.topic);
        await this.send(producer, plan.keys, id, opts.batchKeys ?? 50);
        this.q.log.info({ event: 'replay.sent', projection: this.q.projection.name, keys: plan.keys.length, attempt });
        if (opts.waitMs <= 0) return { rebuilt, notRebuilt, unconfirmed: plan.keys.map((k) => k.key) };
        const results = await this.results(id, since, new Set(plan.keys.map((k) => k.key)), opts.waitMs, () => rebuilt.length + notRebuilt.length, total);
        const again = new Set<string>();
        for (const k of plan.keys) {
          const r = results.get(k.key);
          if (!r) continue;
          if (r.outcome === 'rebuilt') rebuilt.push({ key: k.key, version: r.version });
          else if (attempt < opts.attempts) again.add(k.key);
          else notRebuilt.push({ key: k.key, outcome: r.outcome });
        }
        const unconfirmed = plan.keys.filter((k) => !results.has(k.key)).map((k) => k.key);
        if (unconfirmed.length) return { rebuilt, notRebuilt, unconfirmed };
        this.q.onProgress?.(rebuilt.length + notRebuilt.length, total);
        plan = again.size ? await this.plan(again) : { keys: [], notFound: [], read: 0 };
      }
      return { rebuilt, notRebuilt, unconfirmed: [] };
    } finally {
      await producer.close();
    }
  }

  private async send(producer: ReturnType<typeof createTaskProducer>, keys: KeyEvents[], id: string, batchKeys: number): Promise<void> {
    const control = (k: KeyEvents, what: 'begin' | 'end'): OutgoingRecord => ({
      topic: this.topic,
      partition: k.partition,
      key: Buffer.from(k.key),
      value: null,
      headers: { [REPLAY_HEADERS.control]: what, [REPLAY_HEADERS.id]: id, ...(what === 'end' ? { [REPLAY_HEADERS.upTo]: String(k.upTo) } : {}) },
    });
    for (let i = 0; i < keys.length; i += batchKeys) {
      const records: OutgoingRecord[] = [];
      for (const k of keys.slice(i, i + batchKeys)) {
        records.push(control(k, 'begin'));
        for (const r of k.records) {
          const headers: RecordHeaders = {};
          for (const [h, v] of Object.entries(r.headers)) if (v !== undefined && !h.startsWith('foldstream.replay.')) headers[h] = v;
          headers[REPLAY_HEADERS.id] = id;
          records.push({ topic: this.topic, partition: k.partition, key: r.key, value: r.value, headers, timestamp: r.timestamp });
        }
        records.push(control(k, 'end'));
      }
      await sendInOneTransaction(producer, records);
    }
  }

  /** Reads the replay topic after `since` until every key has a result of run `id`, or the wait ends. */
  private async results(
    id: string,
    since: Map<number, bigint>,
    keys: Set<string>,
    waitMs: number,
    doneBefore: () => number,
    total: number,
  ): Promise<Map<string, { outcome: ReplayOutcome; version: number }>> {
    const out = new Map<string, { outcome: ReplayOutcome; version: number }>();
    const next = new Map(since);
    const deadline = Date.now() + waitMs;
    for (;;) {
      for (const [partition, from] of next) {
        const end = await this.reader.read(this.topic, partition, from, async (records) => {
          for (const r of records) {
            const h = (name: string) => (r.headers[name] === undefined ? undefined : String(r.headers[name]));
            if (h(REPLAY_HEADERS.control) !== 'result' || h(REPLAY_HEADERS.id) !== id || r.key === null) continue;
            const key = r.key.toString('utf8');
            if (keys.has(key)) out.set(key, { outcome: h(REPLAY_HEADERS.outcome) as ReplayOutcome, version: Number(h(REPLAY_HEADERS.version)) });
          }
        });
        next.set(partition, end);
      }
      this.q.onProgress?.(doneBefore() + [...out.values()].filter((r) => r.outcome === 'rebuilt').length, total);
      if (out.size >= keys.size || Date.now() > deadline) return out;
      await sleep(300);
    }
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.admin.close();
  }
}
