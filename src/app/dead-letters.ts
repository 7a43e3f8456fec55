/**
 * `foldstream dlq list|show|replay`: reading a processor's dead letters (docs/dead-letters.md) and sending chosen ones
 * back into their source topic after a fix, each at most once.
 *
 * At most once, even when a redrive is killed mid-way and run again: a redrive is a sequence of Kafka transactions
 * under one transactional id per stage (`<app>-<stage>-dlq-redrive`). Each transaction writes the re-sent records AND
 * one marker per dead letter (key `<dlq partition>@<dlq offset>`) to the stage's compacted marker topic
 * `<app>-<stage>-dlq-redriven`. A redrive first runs InitProducerId, which fences an older redrive still running and
 * aborts (or completes) its open transaction, and only then reads the markers, read_committed: what it reads is
 * exactly what was sent, so it sends the rest. Markers rather than a consumer group's offset on the DLQ, because a
 * filter (one code, some keys) redrives dead letters out of order; an offset could only say "everything before".
 *
 * Where to: the source topic (`foldstream.source.topic`, same partition), when that topic holds commands or is a
 * plain input of a custom processor. Everyone downstream then sees the record as if it had just arrived, and
 * aggregates are idempotent by commandId. Re-sending to an events topic is refused (it would append the event to the
 * event store a second time: for a projection, `foldstream replay` re-applies an aggregate's events instead), and so
 * is a topic of views, replies or saga log entries (a stale copy would be read as the newest) or an internal topic.
 *
 * The wiring of Kafka lives here (app/ is the one composition root of offline operations); cli/dlq parses and prints.
 */
import { FoldstreamError } from '../errors.ts';
import { createTopics } from '../kafka/admin.ts';
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import { createKafka, type KafkaClient } from '../kafka/client.ts';
import { createOffsetsAdmin } from '../kafka/offsets-admin.ts';
import { createTaskProducer, sendInOneTransaction } from '../kafka/task-producer.ts';
import type { FetchedRecord, OffsetsAdmin, OutgoingRecord, RecordHeaders } from '../kafka/types.ts';
import type { Logger } from '../processors/types.ts';
import { DLQ_HEADERS } from '../runtime/record-handler.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { dlqTopic, inputsOf, redriveMarkerTopic, redriveTransactionalId, stagesOf } from '../topology/names.ts';
import type { ProcessorDecl, Topology } from '../topology/schema.ts';
import { ROLE_RECORDS, topicRoles } from '../topology/topic-roles.ts';

/** Added to a re-sent record: the dead letter it came from, `<dlq topic>/<partition>@<offset>`. */
export const REDRIVE_HEADER = 'foldstream.redrive.of';

export interface DeadLetter {
  dlqTopic: string;
  partition: number;
  offset: string;
  /** the record's time: the original record's */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** every header, the foldstream.* ones included */
  headers: RecordHeaders;
  code: string;
  message: string;
  source: { topic: string; partition: number; offset: string; timestamp: number | undefined };
  processor: string;
}

/** `<partition>@<offset>`: a dead letter's identity within its DLQ, and its marker's key. */
export const deadLetterId = (d: Pick<DeadLetter, 'partition' | 'offset'>) => `${d.partition}@${d.offset}`;

export interface DeadLetterFilter {
  codes?: string[] | undefined;
  keys?: string[] | undefined;
  /** record time, ms since the epoch, inclusive */
  from?: number | undefined;
  /** record time, ms since the epoch, exclusive */
  to?: number | undefined;
  /** `<partition>@<offset>` ids */
  ids?: string[] | undefined;
}

export const isEmptyFilter = (f: DeadLetterFilter) => !f.codes?.length && !f.keys?.length && f.from === undefined && f.to === undefined && !f.ids?.length;

export function matches(d: DeadLetter, f: DeadLetterFilter): boolean {
  if (f.codes?.length && !f.codes.includes(d.code)) return false;
  if (f.keys?.length && !f.keys.includes(d.key?.toString('utf8') ?? '')) return false;
  if (f.from !== undefined && d.timestamp < f.from) return false;
  if (f.to !== undefined && d.timestamp >= f.to) return false;
  if (f.ids?.length && !f.ids.includes(deadLetterId(d))) return false;
  return true;
}

const headerText = (v: Buffer | string | undefined) => (v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : v);

export function toDeadLetter(r: FetchedRecord): DeadLetter {
  const headers: RecordHeaders = {};
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) headers[k] = v;
  const h = (name: string) => headerText(r.headers[name]);
  const ts = h(DLQ_HEADERS.timestamp);
  return {
    dlqTopic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key,
    value: r.value,
    headers,
    code: h(DLQ_HEADERS.code) ?? '?',
    message: h(DLQ_HEADERS.message) ?? '',
    source: { topic: h(DLQ_HEADERS.topic) ?? '', partition: Number(h(DLQ_HEADERS.partition) ?? r.partition), offset: h(DLQ_HEADERS.offset) ?? '', timestamp: ts === undefined ? undefined : Number(ts) },
    processor: h(DLQ_HEADERS.processor) ?? '',
  };
}

export type RedriveTarget = { ok: true; topic: string } | { ok: false; why: string };

/**
 * Where a dead letter of `p` may be sent back: its source topic when that topic holds commands (or has no role: a
 * custom processor's input) and is still an input of `p`. Everything else is refused with the reason.
 */
export function redriveTarget(t: Topology, p: ProcessorDecl, d: DeadLetter): RedriveTarget {
  const alias = Object.entries(t.topics).find(([, decl]) => decl.name === d.source.topic)?.[0];
  if (alias === undefined) {
    return { ok: false, why: `its source ${d.source.topic || '(no foldstream.source.topic header)'} is not a declared topic of the topology (an internal topic, or one renamed since)` };
  }
  if (!inputsOf(p).includes(alias)) return { ok: false, why: `its source topics.${alias} is no longer an input of ${p.name}` };
  const role = topicRoles(t).get(alias)?.role;
  switch (role) {
    case undefined:
    case 'commands':
      return { ok: true, topic: d.source.topic };
    case 'events':
      return {
        ok: false,
        why:
          `its source topics.${alias} is an events topic: sending the event again would append it to the event store a second time. ` +
          (p.type === 'projection' ? `Use \`foldstream replay <file> ${p.name} --aggregates <id>\` after the fix instead` : `Reset the processor after the fix instead`),
      };
    case 'views':
    case 'replies':
    case 'saga-log':
      return { ok: false, why: `its source topics.${alias} holds ${ROLE_RECORDS[role]}: a copy sent again would be read as the newest` };
  }
}

/** The record a dead letter is re-sent as: original key, value, time and headers, plus where it came from. */
export function redriveRecord(d: DeadLetter, topic: string): OutgoingRecord {
  const headers: RecordHeaders = {};
  const added = new Set<string>(Object.values(DLQ_HEADERS));
  for (const [k, v] of Object.entries(d.headers)) if (!added.has(k)) headers[k] = v;
  headers[REDRIVE_HEADER] = `${d.dlqTopic}/${deadLetterId(d)}`;
  return { topic, partition: d.source.partition, key: d.key, value: d.value, headers, timestamp: d.source.timestamp ?? d.timestamp };
}

/** The runtime stages of a processor whose dead letters a command reads: by declared name, or one stage by its runtime name. */
export function dlqStages(t: Topology, name: string): { processor: ProcessorDecl; stages: string[] } | undefined {
  for (const p of t.processors) {
    const stages = stagesOf(p).map((s) => s.name);
    if (p.name === name) return { processor: p, stages };
    if (stages.includes(name)) return { processor: p, stages: [name] };
  }
  return undefined;
}

export interface DeadLetterQuery {
  processor: ProcessorDecl;
  stages: string[];
  log: Logger;
  /** records read so far and the records to read in all, for a progress display */
  onProgress?: (done: number, total: number) => void;
}

export interface DeadLetterListing {
  letters: DeadLetter[];
  /** ids of dead letters already sent back (committed markers) */
  redriven: Set<string>;
}

/** Reads the stages' DLQs and redrive markers (read_committed) from the start to their current ends. */
export class DeadLetters {
  private readonly t: Topology;
  private readonly kafka: KafkaClient;
  private readonly reader: ChangelogReader;
  private readonly admin: OffsetsAdmin;

  constructor(
    private readonly loaded: LoadedTopology,
    private readonly q: DeadLetterQuery,
  ) {
    this.t = loaded.topology;
    this.kafka = createKafka(this.t, { baseDir: loaded.baseDir, log: q.log, clientIdSuffix: '-dlq' });
    this.reader = new ChangelogReader(this.kafka, q.log);
    this.admin = createOffsetsAdmin(this.kafka);
  }

  /** Every record of the topic, all partitions; a topic that does not exist has none. */
  private async readTopic(topic: string, progress?: { done: number; total: number }): Promise<FetchedRecord[]> {
    const partitions = await this.admin.partitionCount(topic);
    if (partitions === undefined) return [];
    const starts = await this.admin.startOffsets(topic);
    const out: FetchedRecord[] = [];
    for (let p = 0; p < partitions; p++) {
      const before = progress?.done ?? 0;
      const end = await this.reader.read(topic, p, starts.get(p) ?? 0n, async (records) => {
        out.push(...records);
        if (progress) {
          progress.done += records.length;
          this.q.onProgress?.(progress.done, progress.total);
        }
      });
      // the span counts aborted records and markers too: count the partition as read
      if (progress) {
        progress.done = before + Number(end - (starts.get(p) ?? 0n));
        this.q.onProgress?.(progress.done, progress.total);
      }
    }
    return out;
  }

  private async span(topic: string): Promise<number> {
    if ((await this.admin.partitionCount(topic)) === undefined) return 0;
    const [starts, ends] = await Promise.all([this.admin.startOffsets(topic), this.admin.endOffsets(topic)]);
    let n = 0;
    for (const [p, end] of ends) n += Number(end - (starts.get(p) ?? 0n));
    return n;
  }

  async list(): Promise<DeadLetterListing> {
    const dlqs = this.q.stages.map((s) => dlqTopic(this.t.app, s));
    let total = 0;
    for (const d of dlqs) total += await this.span(d);
    const progress = { done: 0, total };
    const letters: DeadLetter[] = [];
    for (const d of dlqs) for (const r of await this.readTopic(d, progress)) letters.push(toDeadLetter(r));
    return { letters, redriven: await this.markers() };
  }

  /** Ids (`<dlq topic>/<partition>@<offset>`) of the dead letters whose redrive committed. */
  async markers(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const s of this.q.stages) {
      const dlq = dlqTopic(this.t.app, s);
      for (const r of await this.readTopic(redriveMarkerTopic(this.t.app, s))) if (r.key && r.value) out.add(`${dlq}/${r.key.toString('utf8')}`);
    }
    return out;
  }

  /** Creates the stages' marker topics that are missing, sized and replicated like their DLQs. */
  async ensureMarkerTopics(): Promise<void> {
    const plan = [];
    for (const s of this.q.stages) {
      const dlq = dlqTopic(this.t.app, s);
      const partitions = await this.admin.partitionCount(dlq);
      if (partitions === undefined) continue;
      const first = this.t.topics[inputsOf(this.q.processor)[0]!];
      plan.push({
        name: redriveMarkerTopic(this.t.app, s),
        partitions,
        replicationFactor: first?.replicationFactor ?? 1,
        config: { 'cleanup.policy': 'compact', ...((first?.replicationFactor ?? 1) >= 3 ? { 'min.insync.replicas': '2' } : {}) },
        purpose: 'dlq' as const,
        about: `redrive markers of processor ${s}`,
      });
    }
    await createTopics(this.kafka, plan);
  }

  /**
   * Sends the chosen dead letters back, each at most once over every redrive of the stage: in transactions of up to
   * `batchSize` dead letters, each with its marker. Returns what was sent and what earlier redrives had sent.
   */
  async redrive(chosen: readonly DeadLetter[], opts: { batchSize: number; pauseMs?: number }): Promise<{ sent: number; already: number }> {
    // every chosen one must have somewhere to go before anything is sent
    const partitions = new Map<string, number | undefined>();
    for (const d of chosen) {
      const target = redriveTarget(this.t, this.q.processor, d);
      if (!target.ok) throw refused(d, target.why);
      if (!partitions.has(target.topic)) partitions.set(target.topic, await this.admin.partitionCount(target.topic));
      const count = partitions.get(target.topic);
      if (count === undefined || d.source.partition >= count) {
        throw refused(d, `its source partition ${target.topic}/${d.source.partition} does not exist (the topic has ${count ?? 'no'} partitions)`);
      }
    }
    await this.ensureMarkerTopics();
    const byStage = new Map<string, DeadLetter[]>();
    for (const d of chosen) byStage.set(d.dlqTopic, [...(byStage.get(d.dlqTopic) ?? []), d]);
    let sent = 0;
    let already = 0;
    // what is left to send: known per stage once its markers are read
    let toSend = 0;
    for (const s of this.q.stages) {
      const dlq = dlqTopic(this.t.app, s);
      const letters = byStage.get(dlq) ?? [];
      if (!letters.length) continue;
      const producer = createTaskProducer(this.kafka, { transactionalId: redriveTransactionalId(this.t.app, s), transactionTimeoutMs: this.t.processing.transactionTimeoutMs });
      try {
        // fences an older redrive and settles its open transaction: the markers read next are all there will be
        await producer.init();
        const done = new Set<string>();
        for (const r of await this.readTopic(redriveMarkerTopic(this.t.app, s))) if (r.key && r.value) done.add(r.key.toString('utf8'));
        const todo = letters.filter((d) => !done.has(deadLetterId(d)));
        already += letters.length - todo.length;
        toSend += todo.length;
        this.q.onProgress?.(sent, toSend);
        for (let i = 0; i < todo.length; i += opts.batchSize) {
          const batch = todo.slice(i, i + opts.batchSize);
          const records: OutgoingRecord[] = [];
          for (const d of batch) {
            const target = redriveTarget(this.t, this.q.processor, d) as { ok: true; topic: string };
            records.push(redriveRecord(d, target.topic));
            records.push({
              topic: redriveMarkerTopic(this.t.app, s),
              partition: d.partition,
              key: Buffer.from(deadLetterId(d)),
              value: Buffer.from(JSON.stringify({ sentTo: `${target.topic}/${d.source.partition}`, code: d.code, at: new Date().toISOString() })),
            });
          }
          await sendInOneTransaction(producer, records);
          sent += batch.length;
          this.q.log.info({ event: 'dlq.redriven', dlq, sent, of: toSend });
          this.q.onProgress?.(sent, toSend);
          if (opts.pauseMs && i + opts.batchSize < todo.length) await new Promise((r) => setTimeout(r, opts.pauseMs));
        }
      } finally {
        await producer.close();
      }
    }
    return { sent, already };
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.admin.close();
  }
}

export function refused(d: DeadLetter, why: string): FoldstreamError {
  return new FoldstreamError('DLQ_REDRIVE_REFUSED', `dead letter ${d.dlqTopic}/${deadLetterId(d)} (${d.code}) cannot be sent back: ${why}`, {
    hint: 'leave it out with a filter (--code, --key, --from/--to), or fix it another way',
  });
}
