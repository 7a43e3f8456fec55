/**
 * Runs a topology's processors with no broker: the same processor code, codecs, stages (envelopes, upcasters,
 * steps), error policies and dead-letter routing as the runtime — they are the runtime's own RecordHandler,
 * TaskContext, PunctuationSchedule and BufferedStore, over in-memory stores. Each piped record is its own
 * "transaction": on success its outputs become readable and its store writes are committed.
 *
 * Like the runtime, every processor has a task per input partition from the start (so init() and wall-clock
 * punctuations run in each), and records written to a topic that another processor reads are delivered to it too,
 * in order, so chained processors (a projection over an aggregate's events, a groupBy's two stages) run end to end.
 */
import { stringify } from 'yaml';
import { errorMessage } from '../errors.ts';
import type { FetchedRecord, OutgoingRecord } from '../kafka/types.ts';
import { eventId } from '../processors/aggregate/event-id.ts';
import type { EventDraft } from '../processors/aggregate/decider.ts';
import { buildProcessorSpecs } from '../processors/build.ts';
import { stateAt } from '../processors/aggregate/state-at.ts';
import { commandKey } from '../processors/input/commands.ts';
import type { ProcessorSpec } from '../processors/spec.ts';
import type { Logger, Processor, ProcessorMetric, PunctuationType } from '../processors/types.ts';
import { PunctuationSchedule } from '../runtime/punctuation.ts';
import { RecordHandler, TaskFailedError, headersToStrings, type Outcome } from '../runtime/record-handler.ts';
import { TaskContext } from '../runtime/task-context.ts';
import { TopicRegistry } from '../runtime/topic-registry.ts';
import { BufferedStore } from '../state/buffered-store.ts';
import { MemoryCommittedStore } from '../state/committed-store.ts';
import { decodeValue } from '../state/value-codec.ts';
import { decode, encode } from '../serde/codecs.ts';
import { aggregateKey, describeValue, eventProblem, isPlainObject, type CommandEnvelope, type EventEnvelope, type Reply } from '../serde/envelope.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import { silentLogger } from '../log.ts';
import { loadTopology, parseTopology, type LoadedTopology } from '../topology/load.ts';
import type { TopologyInput } from '../topology/schema.ts';
import { asDeadLetter, type DeadLetter, type OutputRecord } from './dead-letters.ts';
import { completeCommand, completeEvent, type CommandInput, type EventInput } from './envelopes.ts';
import { OutputLog } from './output-log.ts';
import { TopologyFacts } from './topology-facts.ts';

export type { OutputRecord } from './dead-letters.ts';

export interface PipeOptions {
  headers?: Record<string, string>;
  /** record timestamp; defaults to the driver's wall clock */
  timestamp?: number;
  /** explicit partition; defaults to murmur2 of the key, as producers do */
  partition?: number;
  /** the value is already encoded: bytes (a Buffer or Uint8Array) are sent as is, a string as its UTF-8 bytes, null as a tombstone */
  raw?: boolean;
}

/** Where pipeCommand and pipeEvent send: the topic (default: the aggregate's) and the key (default: the aggregate key). */
export interface EnvelopeOptions extends Omit<PipeOptions, 'raw'> {
  topic?: string;
  key?: string | null;
}

/** An aggregate's state as of a time, rebuilt from its events (TopologyTestDriver.stateAt). */
export interface DriverStateAt {
  /** the version of the last event at or before the time (0: the aggregate had no events by then) */
  version: number;
  /** the state then; undefined when it had no events */
  state: unknown;
  /** the timestamp of that last event, or null */
  lastEventAt: string | null;
  /** events of the aggregate after the time, not applied */
  laterEvents: number;
  /** the events applied, upcast, in order */
  events: EventEnvelope[];
}

/** Reads records written from a mark() on. */
export interface SinceOptions {
  since?: number;
}

interface DriverTask {
  spec: ProcessorSpec;
  partition: number;
  ctx: TaskContext;
  handler: RecordHandler;
  processor: Processor;
  stores: Map<string, BufferedStore>;
  schedule: PunctuationSchedule;
  failed: boolean;
}

export interface DriverOptions {
  log?: Logger;
  /** start of the driver's wall clock (ms since the epoch); default 2026-01-01T00:00:00Z */
  wallClock?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Delivers queued records in a random order that keeps each topic partition's order (as consumers of different
   * partitions and processors run on a broker), from this number in [0, 1); default: in the order they were queued.
   */
  interleave?: () => number;
}

export class TopologyTestDriver {
  private readonly topics: TopicRegistry;
  private readonly facts: TopologyFacts;
  private readonly tasks = new Map<string, DriverTask>();
  private started: Promise<void> | undefined;
  private readonly written = new OutputLog();
  private readonly offsets = new Map<string, bigint>();
  /** highest aggregateVersion seen per topic and key, for events piped without one */
  private readonly versions = new Map<string, number>();
  private readonly log: Logger;
  private wallClock: number;
  private readonly pending: FetchedRecord[] = [];
  private delivering = false;
  private held = false;
  private readonly interleave: (() => number) | undefined;
  private commands = 0;
  /** ctx.count calls kept: processor, metric, labels */
  private readonly counts: { processor: string; metric: ProcessorMetric; labels: Record<string, string>; by: number }[] = [];

  private constructor(
    readonly loaded: LoadedTopology,
    private readonly specs: ProcessorSpec[],
    opts: DriverOptions,
  ) {
    this.topics = new TopicRegistry(loaded.topology);
    this.facts = new TopologyFacts(loaded.topology, this.topics);
    this.log = opts.log ?? silentLogger;
    this.wallClock = opts.wallClock ?? Date.parse('2026-01-01T00:00:00.000Z');
    this.interleave = opts.interleave;
  }

  /** Queues what is piped from now on without processing it, until release(). */
  hold(): void {
    this.held = true;
  }

  /** Processes what was queued since hold() (with `interleave`, in a random order that keeps each partition's). */
  async release(): Promise<void> {
    this.held = false;
    await this.deliver();
  }

  /** The next queued record: the first, or with `interleave` the first of a random topic partition. */
  private nextPending(): FetchedRecord | undefined {
    if (!this.interleave || this.pending.length < 2) return this.pending.shift();
    const heads: number[] = [];
    const seen = new Set<string>();
    this.pending.forEach((r, i) => {
      const tp = `${r.topic}:${r.partition}`;
      if (!seen.has(tp)) heads.push(i);
      seen.add(tp);
    });
    const i = heads[Math.floor(this.interleave() * heads.length)]!;
    return this.pending.splice(i, 1)[0];
  }

  /** From a topology file. */
  static async fromFile(file: string, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    return TopologyTestDriver.fromLoaded(loadTopology(file, opts.env ? { env: opts.env } : {}), opts);
  }

  /** From YAML text; modules resolve against baseDir. */
  static async fromYaml(yaml: string, baseDir: string, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    return TopologyTestDriver.fromLoaded(parseTopology(yaml, `${baseDir}/topology.yaml`, opts.env ? { env: opts.env } : {}), opts);
  }

  /** From a topology object (validated like a file); modules resolve against baseDir. */
  static async fromObject(topology: TopologyInput, baseDir: string, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    return TopologyTestDriver.fromYaml(stringify(topology), baseDir, opts);
  }

  static async fromLoaded(loaded: LoadedTopology, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    return new TopologyTestDriver(loaded, await buildProcessorSpecs(loaded), opts);
  }

  /** The driver's wall clock (ms since the epoch). */
  get now(): number {
    return this.wallClock;
  }

  /** Runtime processor names (a projection with groupBy is two: `<name>` and `<name>-group`). */
  get processors(): string[] {
    return this.specs.map((s) => s.name);
  }

  /** Creates every task (processor × input partition) and runs init(), as the runtime does on assignment. */
  private start(): Promise<void> {
    this.started ??= (async () => {
      for (const spec of this.specs) {
        const partitions = this.topics.get(spec.inputs[0]!.topic).partitions;
        for (let p = 0; p < partitions; p++) await this.createTask(spec, p);
      }
      await this.deliver();
    })();
    return this.started;
  }

  private async createTask(spec: ProcessorSpec, partition: number): Promise<void> {
    const stores = new Map(spec.stores.map((s) => [s.name, new BufferedStore(s.name, new MemoryCommittedStore(s.name), s.cacheSize)]));
    const schedule = new PunctuationSchedule();
    const ctx = new TaskContext({
      maxRecordBytes: spec.maxRecordBytes,
      maxClockSkewMs: spec.maxClockSkewMs,
      app: this.loaded.topology.app,
      processor: spec.name,
      partition,
      stores,
      topics: this.topics,
      allowedOutputs: spec.outputs,
      schedule,
      log: this.log,
      now: () => this.wallClock,
      count: (metric, labels, by) => this.counts.push({ processor: spec.name, metric, labels, by }),
    });
    const processor = spec.create(partition);
    const handler = new RecordHandler({ spec, processor, ctx, observer: { outcome: () => undefined }, sleep: async () => undefined });
    const t: DriverTask = { spec, partition, ctx, handler, processor, stores, schedule, failed: false };
    this.tasks.set(`${spec.name}:${partition}`, t);
    if (spec.punctuate) {
      const p = spec.punctuate;
      ctx.schedule(p.intervalMs, p.type, (ts) => p.fn(ts, ctx));
    }
    await processor.init?.(ctx);
    await this.commit(t);
  }

  private task(processor: string, partition: number): DriverTask {
    const t = this.tasks.get(`${processor}:${partition}`);
    if (!t) throw new Error(`processor "${processor}" has no partition ${partition}`);
    return t;
  }

  /** Sends a record to a topic (alias or name) and runs every processor reading it, and those downstream. */
  async pipe(topic: string, key: string | null, value: unknown, opts: PipeOptions = {}): Promise<void> {
    await this.start();
    const t = this.topics.get(topic);
    const keyBytes = key === null ? null : Buffer.from(key, 'utf8');
    const partition = opts.partition ?? (keyBytes ? partitionForKey(keyBytes, t.partitions) : 0);
    const bytes = opts.raw ? rawBytes(value) : encode(t.codec, value);
    if (!opts.raw) this.noteVersion(t.name, key, value);
    this.pending.push({
      topic: t.name,
      partition,
      offset: this.nextOffset(t.name, partition),
      timestamp: opts.timestamp ?? this.wallClock,
      key: keyBytes,
      value: bytes,
      headers: opts.headers ?? {},
    });
    await this.deliver();
  }

  /**
   * Sends a command (commandId and data filled in when absent) to the aggregate's input topic, keyed as the
   * aggregate keys it; returns its reply, or undefined when there is none (e.g. it was dead-lettered).
   */
  async pipeCommand(command: CommandInput, opts: EnvelopeOptions = {}): Promise<Reply | undefined> {
    const c = completeCommand(command, ++this.commands);
    const { topic, tenant } = this.facts.commandTopic(opts.topic);
    const key = opts.key === undefined ? commandKey(c, tenant) : opts.key;
    const mark = this.mark();
    await this.pipe(topic, key, c, opts);
    return this.replies(c.commandId, { since: mark, aggregateId: c.aggregateId }).at(-1);
  }

  /**
   * Sends an event envelope to an events topic (by default the aggregate's), with what is absent filled in as an
   * aggregate would: eventId, eventVersion 1, aggregateType, the next aggregateVersion of its key, the record time.
   */
  async pipeEvent(event: EventInput, opts: EnvelopeOptions = {}): Promise<EventEnvelope> {
    const topic = this.facts.eventTopic(opts.topic);
    const key = opts.key === undefined ? aggregateKey(event.aggregateId, event.tenantId) : opts.key;
    const e = completeEvent(event, {
      eventId: (type, v) => eventId(topic, type, key ?? event.aggregateId, v),
      aggregateType: this.facts.aggregateTypeOf(topic),
      nextVersion: (this.versions.get(`${topic}\u0000${key}`) ?? 0) + 1,
      timestamp: new Date(opts.timestamp ?? this.wallClock).toISOString(),
    });
    await this.pipe(topic, key, e, opts);
    return e;
  }

  /**
   * Appends events to an aggregate's history as if its decider had emitted them: stamped like its own events,
   * evolved into its state by its evolve, kept in its stores and sent to its events topic (so downstream processors
   * see them) — no command, no reply.
   */
  async appendEvents(
    processor: string,
    aggregateId: string,
    events: EventDraft[],
    opts: { tenantId?: string; userId?: string; timestamp?: number } = {},
  ): Promise<EventEnvelope[]> {
    await this.start();
    const spec = this.requireSpec(processor);
    if (!spec.appendEvents) throw new Error(`processor "${processor}" is not an aggregate`);
    const cause: CommandEnvelope = { commandId: `given-${++this.commands}`, commandType: '(given)', aggregateId, data: {} };
    if (opts.tenantId !== undefined) cause.tenantId = opts.tenantId;
    if (opts.userId !== undefined) cause.userId = opts.userId;
    if (opts.timestamp !== undefined) cause.timestamp = new Date(opts.timestamp).toISOString();
    const decl = this.facts.decl(processor);
    const key = commandKey(cause, decl?.type === 'aggregate' && decl.partitioning === 'tenant');
    const t = this.task(processor, partitionForKey(key, this.topics.get(spec.inputs[0]!.topic).partitions));
    t.ctx.savepoint();
    let appended: EventEnvelope[];
    try {
      appended = await spec.appendEvents(t.ctx, cause, events, this.wallClock);
    } catch (e) {
      t.ctx.rollback();
      throw e;
    }
    t.ctx.release();
    await this.commit(t);
    await this.deliver();
    return appended;
  }

  /**
   * An aggregate's state as of a time (ms since the epoch or ISO-8601; default: now), the way `foldstream state-at`
   * and `GET /aggregates/<type>/<id>?at=` rebuild it — with no broker: its events on its events topic (what it and
   * appendEvents wrote) at or before the time, in version order, lifted by the upcasters, through its own evolve.
   */
  async stateAt(aggregate: string, aggregateId: string, at?: number | string, opts: { tenantId?: string } = {}): Promise<DriverStateAt> {
    await this.start();
    const spec = this.requireSpec(aggregate);
    const decl = this.facts.decl(aggregate);
    if (!spec.aggregate || decl?.type !== 'aggregate') throw new Error(`processor "${aggregate}" is not an aggregate`);
    const time = at === undefined ? undefined : typeof at === 'number' ? at : Date.parse(at);
    if (time !== undefined && Number.isNaN(time)) throw new Error(`stateAt: ${JSON.stringify(at)} is not a time (give ms since the epoch or ISO-8601, e.g. 2026-01-01T00:00:00Z)`);
    const key = spec.aggregate.tenant ? aggregateKey(aggregateId, opts.tenantId) : aggregateId;
    const events = this.output(decl.output.events)
      .filter((r) => r.key === key && eventProblem(r.value) === undefined && (r.value as EventEnvelope).aggregateType === spec.aggregate!.aggregateType)
      .map((r) => r.value as EventEnvelope);
    const r = await stateAt(spec.aggregate, spec.aggregate.upcasters, events, time);
    return { version: r.version, state: r.version === 0 ? undefined : r.state, lastEventAt: r.events.at(-1)?.timestamp ?? null, laterEvents: r.later, events: r.events };
  }

  /** Delivers queued records (piped or written by processors) to the processors that read them, in order. */
  private async deliver(): Promise<void> {
    if (this.delivering || this.held) return;
    this.delivering = true;
    try {
      for (let r = this.nextPending(); r; r = this.nextPending()) {
        for (const spec of this.specs) {
          if (!spec.inputs.some((i) => i.topic === r!.topic)) continue;
          const task = this.task(spec.name, r.partition);
          if (task.failed) continue;
          await this.handle(task, r);
        }
      }
    } finally {
      this.delivering = false;
    }
  }

  private async handle(task: DriverTask, record: FetchedRecord): Promise<Outcome | 'failed'> {
    const streamTimeBefore = task.ctx.streamTime;
    try {
      const outcome = await task.handler.handle(record);
      if (task.ctx.streamTime > streamTimeBefore) await this.punctuate(task, 'stream-time', task.ctx.streamTime);
      await this.commit(task);
      return outcome;
    } catch (e) {
      if (!(e instanceof TaskFailedError)) throw e;
      // what came before this record was committed with its own record; this one's work is dropped, the task stops
      task.ctx.discard();
      task.failed = true;
      this.log.error({ event: 'task.failed', processor: task.spec.name, partition: task.partition, error: e.message });
      return 'failed';
    }
  }

  /** As the runtime does: each due punctuator inside the task's transaction; one that throws is undone and logged. */
  private async punctuate(t: DriverTask, type: PunctuationType, now: number): Promise<void> {
    await t.schedule.fire(type, now, async (p, at) => {
      t.ctx.savepoint();
      try {
        await p.fn(at);
        t.ctx.release();
      } catch (e) {
        t.ctx.rollback();
        this.log.error({ event: 'punctuation.failed', processor: t.spec.name, partition: t.partition, type, error: errorMessage(e) });
      }
    });
  }

  private async commit(task: DriverTask): Promise<void> {
    for (const s of task.stores.values()) {
      await s.committed.apply(s.writes(), {});
      s.committedWrites();
    }
    for (const out of task.ctx.drainOutputs()) this.write(out);
  }

  private nextOffset(topic: string, partition: number): string {
    const offset = this.offsets.get(`${topic}:${partition}`) ?? 0n;
    this.offsets.set(`${topic}:${partition}`, offset + 1n);
    return offset.toString();
  }

  private noteVersion(topic: string, key: string | null, value: unknown): void {
    if (key === null || !isPlainObject(value) || typeof value.aggregateVersion !== 'number') return;
    const k = `${topic}\u0000${key}`;
    this.versions.set(k, Math.max(this.versions.get(k) ?? 0, value.aggregateVersion));
  }

  private write(out: OutgoingRecord): void {
    const info = this.topics.find(out.topic);
    let value: unknown = out.value;
    if (out.value !== null && info) {
      try {
        value = decode(info.codec, out.value);
      } catch {
        value = out.value;
      }
    }
    const record: OutputRecord = {
      topic: out.topic,
      partition: out.partition,
      key: out.key ? out.key.toString('utf8') : null,
      value,
      headers: out.headers ? headersToStrings(out.headers) : {},
      timestamp: out.timestamp ?? this.wallClock,
    };
    this.written.append(record);
    this.noteVersion(out.topic, record.key, value);
    // Records written to a topic some processor reads are processed next.
    if (this.specs.some((s) => s.inputs.some((i) => i.topic === out.topic))) {
      this.pending.push({
        topic: out.topic,
        partition: out.partition,
        offset: this.nextOffset(out.topic, out.partition),
        timestamp: record.timestamp,
        key: out.key,
        value: out.value,
        headers: out.headers ?? {},
      });
    }
  }

  /** A point in the output: pass it as `since` to read only what was written after it. */
  mark(): number {
    return this.written.mark();
  }

  /** What processors wrote to a topic (alias or name), in write order; with `since`, only after that mark. */
  output<V = unknown>(topic: string, opts: SinceOptions = {}): OutputRecord<V>[] {
    return this.written.records(this.topics.find(topic)?.name ?? topic, opts.since) as OutputRecord<V>[];
  }

  /** What processors wrote to any of these topics (aliases or names), merged in write order. */
  outputOf<V = unknown>(topics: string[], opts: SinceOptions = {}): OutputRecord<V>[] {
    return this.written.merged(topics.map((t) => this.topics.find(t)?.name ?? t), opts.since) as OutputRecord<V>[];
  }

  /** Reads and clears a topic's output. */
  readOutput<V = unknown>(topic: string): OutputRecord<V>[] {
    const out = this.output<V>(topic);
    this.written.clear(this.topics.find(topic)?.name ?? topic);
    return out;
  }

  /** Names of the topics processors wrote to. */
  writtenTopics(): string[] {
    return this.written.topics();
  }

  /** The latest value per key of a topic's output (null: a tombstone), as a compacted topic would keep it. */
  latest<V = unknown>(topic: string, opts: SinceOptions = {}): Map<string, V | null> {
    const out = new Map<string, V | null>();
    for (const r of this.output<V | null>(topic, opts)) if (r.key !== null) out.set(r.key, r.value);
    return out;
  }

  /**
   * Replies to a command, on every aggregate's replies topic, in order (a resent command gets its reply again).
   * commandIds are per aggregate: `aggregateId` keeps the replies to that aggregate's command with this id.
   */
  replies(commandId: string, opts: SinceOptions & { aggregateId?: string } = {}): Reply[] {
    return this.facts
      .replyTopics()
      .flatMap((t) => this.output<Reply>(t, opts))
      .map((r) => r.value)
      .filter((v) => isPlainObject(v) && v.commandId === commandId && (opts.aggregateId === undefined || v.aggregateId === opts.aggregateId));
  }

  /** The last reply to a command, or undefined. */
  reply(commandId: string): Reply | undefined {
    return this.replies(commandId).at(-1);
  }

  /** Dead letters of a processor (runtime name), with their code, message, source and original value. */
  deadLetters(processor: string, opts: SinceOptions = {}): DeadLetter[] {
    const spec = this.requireSpec(processor);
    return this.output(spec.dlqTopic, opts).map((r) => asDeadLetter(r, this.topics));
  }

  private requireSpec(processor: string): ProcessorSpec {
    const spec = this.specs.find((s) => s.name === processor);
    if (!spec) throw new Error(`no processor "${processor}" (have: ${this.specs.map((s) => s.name).join(', ')})`);
    return spec;
  }

  /** Committed contents of a processor's store, merged over its partitions, in key order. */
  async store<V = unknown>(processor: string, store: string): Promise<Map<string, V>> {
    this.requireSpec(processor);
    await this.start();
    const out = new Map<string, V>();
    const tasks = [...this.tasks.values()].filter((t) => t.spec.name === processor).sort((a, b) => a.partition - b.partition);
    for (const t of tasks) {
      const s = t.stores.get(store);
      if (!s) throw new Error(`processor "${processor}" has no store "${store}" (has: ${[...t.stores.keys()].join(', ')})`);
      for await (const [k, v] of s.committed.entries({}, false)) out.set(k, decodeValue<V>(v));
    }
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Seeds a store entry (in the partition that owns the key) — raw state; for aggregates prefer appendEvents. */
  async seedStore(processor: string, store: string, key: string, value: unknown, partition?: number): Promise<void> {
    const spec = this.requireSpec(processor);
    await this.start();
    const t = this.task(processor, partition ?? partitionForKey(key, this.topics.get(spec.inputs[0]!.topic).partitions));
    const s = t.stores.get(store);
    if (!s) throw new Error(`processor "${processor}" has no store "${store}"`);
    s.put(key, value);
    await this.commit(t);
  }

  /** Moves the wall clock forward and runs due wall-clock punctuations of every task. */
  async advanceWallClock(ms: number): Promise<void> {
    await this.start();
    this.wallClock += ms;
    for (const t of this.tasks.values()) {
      if (t.failed) continue;
      await this.punctuate(t, 'wall-clock', this.wallClock);
      await this.commit(t);
    }
    await this.deliver();
  }

  /** Moves stream time of every task (of one processor, or all) forward, firing due stream-time punctuations. */
  async advanceStreamTime(to: number, processor?: string): Promise<void> {
    if (processor !== undefined) this.requireSpec(processor);
    await this.start();
    for (const t of this.tasks.values()) {
      if (t.failed || (processor && t.spec.name !== processor) || to <= t.ctx.streamTime) continue;
      t.ctx.streamTime = to;
      await this.punctuate(t, 'stream-time', to);
      await this.commit(t);
    }
    await this.deliver();
  }

  /** How often a processor bumped a counter (ctx.count), over the label sets that match `labels`. */
  metric(processor: string, metric: ProcessorMetric, labels: Record<string, string> = {}): number {
    return this.counts
      .filter((c) => c.processor === processor && c.metric === metric && Object.entries(labels).every(([k, v]) => c.labels[k] === v))
      .reduce((sum, c) => sum + c.by, 0);
  }

  /** Tasks stopped by the `fail` policy, as "processor:partition". */
  failedTasks(): string[] {
    return [...this.tasks.entries()].filter(([, t]) => t.failed).map(([id]) => id);
  }

  async close(): Promise<void> {
    for (const t of this.tasks.values()) await t.processor.close?.();
    this.tasks.clear();
  }
}

/** The value of a `raw` pipe as bytes: what a producer could have written. */
function rawBytes(value: unknown): Buffer | null {
  if (value === null || Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`pipe(..., { raw: true }) takes a string (sent as UTF-8), a Buffer or Uint8Array, or null (a tombstone); got ${describeValue(value)}: leave raw out to encode a value with the topic's codec`);
}
