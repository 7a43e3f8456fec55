/**
 * Runs a topology's processors with no broker: the same processor code, codecs, stages (envelopes, upcasters,
 * steps), error policies and dead-letter routing as the runtime — they are the runtime's own RecordHandler,
 * TaskContext and BufferedStore, over in-memory stores. Each piped record is its own "transaction": on success its
 * outputs become readable and its store writes are committed.
 *
 * Records written to a topic that another processor reads are delivered to it too (in order), so chained
 * processors (a projection over an aggregate's events, a groupBy's two stages) run end to end.
 */
import { silentLogger } from '../log.ts';
import type { FetchedRecord, OutgoingRecord } from '../kafka/types.ts';
import { buildProcessorSpecs } from '../processors/build.ts';
import type { ProcessorSpec } from '../processors/spec.ts';
import type { Logger, Processor, ProcessorMetric } from '../processors/types.ts';
import { PunctuationSchedule } from '../runtime/punctuation.ts';
import { RecordHandler, TaskFailedError, headersToStrings, type Outcome } from '../runtime/record-handler.ts';
import { TaskContext } from '../runtime/task-context.ts';
import { TopicRegistry } from '../runtime/topic-registry.ts';
import { BufferedStore } from '../state/buffered-store.ts';
import { MemoryCommittedStore } from '../state/committed-store.ts';
import { decodeValue } from '../state/value-codec.ts';
import { decode, encode } from '../serde/codecs.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import { loadTopology, parseTopology, type LoadedTopology } from '../topology/load.ts';

export interface PipeOptions {
  headers?: Record<string, string>;
  /** record timestamp; defaults to the driver's wall clock */
  timestamp?: number;
  /** explicit partition; defaults to murmur2 of the key, as producers do */
  partition?: number;
  /** the value is already encoded (bytes are sent as is) */
  raw?: boolean;
}

export interface OutputRecord<V = unknown> {
  topic: string;
  partition: number;
  key: string | null;
  /** decoded with the topic's codec; undecodable bytes stay a Buffer */
  value: V;
  headers: Record<string, string>;
  timestamp: number;
}

interface DriverTask {
  spec: ProcessorSpec;
  partition: number;
  ctx: TaskContext;
  handler: RecordHandler;
  processor: Processor;
  stores: Map<string, BufferedStore>;
  schedule: PunctuationSchedule;
  offsets: Map<string, bigint>;
  failed: boolean;
}

export interface DriverOptions {
  log?: Logger;
  /** start of the driver's wall clock (ms since the epoch) */
  wallClock?: number;
  env?: NodeJS.ProcessEnv;
}

export class TopologyTestDriver {
  private readonly topics: TopicRegistry;
  private readonly tasks = new Map<string, DriverTask>();
  private readonly written = new Map<string, OutputRecord[]>();
  private readonly offsets = new Map<string, bigint>();
  private readonly log: Logger;
  private wallClock: number;
  private readonly pending: FetchedRecord[] = [];
  private delivering = false;
  /** ctx.count calls kept: processor, metric, labels */
  private readonly counts: { processor: string; metric: ProcessorMetric; labels: Record<string, string> }[] = [];

  private constructor(
    readonly loaded: LoadedTopology,
    private readonly specs: ProcessorSpec[],
    opts: DriverOptions,
  ) {
    this.topics = new TopicRegistry(loaded.topology);
    this.log = opts.log ?? silentLogger;
    this.wallClock = opts.wallClock ?? Date.parse('2026-01-01T00:00:00.000Z');
  }

  /** From a topology file. */
  static async fromFile(file: string, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    const loaded = loadTopology(file, opts.env ? { env: opts.env } : {});
    return new TopologyTestDriver(loaded, await buildProcessorSpecs(loaded), opts);
  }

  /** From YAML text; modules resolve against baseDir. */
  static async fromYaml(yaml: string, baseDir: string, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    const loaded = parseTopology(yaml, `${baseDir}/topology.yaml`, opts.env ? { env: opts.env } : {});
    return new TopologyTestDriver(loaded, await buildProcessorSpecs(loaded), opts);
  }

  static async fromLoaded(loaded: LoadedTopology, opts: DriverOptions = {}): Promise<TopologyTestDriver> {
    return new TopologyTestDriver(loaded, await buildProcessorSpecs(loaded), opts);
  }

  get now(): number {
    return this.wallClock;
  }

  private async task(spec: ProcessorSpec, partition: number): Promise<DriverTask> {
    const id = `${spec.name}:${partition}`;
    let t = this.tasks.get(id);
    if (t) return t;
    const stores = new Map(spec.stores.map((s) => [s.name, new BufferedStore(s.name, new MemoryCommittedStore(s.name), s.cacheSize)]));
    const schedule = new PunctuationSchedule();
    const ctx = new TaskContext({
      maxRecordBytes: spec.maxRecordBytes,
      app: this.loaded.topology.app,
      processor: spec.name,
      partition,
      stores,
      topics: this.topics,
      allowedOutputs: spec.outputs,
      schedule,
      log: this.log,
      now: () => this.wallClock,
      count: (metric, labels) => this.counts.push({ processor: spec.name, metric, labels }),
    });
    const processor = spec.create(partition);
    const handler = new RecordHandler({ spec, processor, ctx, observer: { outcome: () => undefined }, sleep: async () => undefined });
    t = { spec, partition, ctx, handler, processor, stores, schedule, offsets: new Map(), failed: false };
    this.tasks.set(id, t);
    if (spec.punctuate) {
      const p = spec.punctuate;
      ctx.schedule(p.intervalMs, p.type, (ts) => p.fn(ts, ctx));
    }
    await processor.init?.(ctx);
    await this.commit(t);
    return t;
  }

  /** Sends a record to an input topic (alias or name) and runs every processor reading it. */
  async pipe(topic: string, key: string | null, value: unknown, opts: PipeOptions = {}): Promise<void> {
    const t = this.topics.get(topic);
    const keyBytes = key === null ? null : Buffer.from(key, 'utf8');
    const partition = opts.partition ?? (keyBytes ? partitionForKey(keyBytes, t.partitions) : 0);
    const bytes = opts.raw ? (value as Buffer | null) : encode(t.codec, value);
    const offset = this.offsets.get(`${t.name}:${partition}`) ?? 0n;
    this.offsets.set(`${t.name}:${partition}`, offset + 1n);
    this.pending.push({
      topic: t.name,
      partition,
      offset: offset.toString(),
      timestamp: opts.timestamp ?? this.wallClock,
      key: keyBytes,
      value: bytes,
      headers: opts.headers ?? {},
    });
    await this.deliver();
  }

  /** Delivers queued records (piped or written by processors) to the processors that read them, in order. */
  private async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let r = this.pending.shift(); r; r = this.pending.shift()) {
        for (const spec of this.specs) {
          if (!spec.inputs.some((i) => i.topic === r!.topic)) continue;
          const task = await this.task(spec, r.partition);
          if (task.failed) continue;
          await this.handle(task, r);
        }
      }
    } finally {
      this.delivering = false;
    }
  }

  private async handle(task: DriverTask, record: FetchedRecord): Promise<Outcome | 'failed'> {
    try {
      const outcome = await task.handler.handle(record);
      if (record.timestamp > task.ctx.streamTime) {
        task.ctx.streamTime = record.timestamp;
        await task.schedule.fire('stream-time', task.ctx.streamTime, async (p, at) => {
          task.ctx.savepoint();
          await p.fn(at);
          task.ctx.release();
        });
      }
      await this.commit(task);
      return outcome;
    } catch (e) {
      if (!(e instanceof TaskFailedError)) throw e;
      task.ctx.discard();
      task.failed = true;
      this.log.error({ event: 'task.failed', processor: task.spec.name, partition: task.partition, error: e.message });
      return 'failed';
    }
  }

  private async commit(task: DriverTask): Promise<void> {
    for (const s of task.stores.values()) {
      await s.committed.apply(s.writes(), {});
      s.committedWrites();
    }
    for (const out of task.ctx.drainOutputs()) this.write(out);
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
    const headers: Record<string, string> = {};
    if (out.headers) Object.assign(headers, headersToStrings(out.headers));
    const rec: OutputRecord = {
      topic: out.topic,
      partition: out.partition,
      key: out.key ? out.key.toString('utf8') : null,
      value,
      headers,
      timestamp: out.timestamp ?? this.wallClock,
    };
    const list = this.written.get(out.topic) ?? [];
    list.push(rec);
    this.written.set(out.topic, list);
    // Records written to a topic some processor reads are processed next.
    if (this.specs.some((s) => s.inputs.some((i) => i.topic === out.topic))) {
      const offset = this.offsets.get(`${out.topic}:${out.partition}`) ?? 0n;
      this.offsets.set(`${out.topic}:${out.partition}`, offset + 1n);
      this.pending.push({
        topic: out.topic,
        partition: out.partition,
        offset: offset.toString(),
        timestamp: rec.timestamp,
        key: out.key,
        value: out.value,
        headers: out.headers ?? {},
      });
    }
  }

  /** Everything written to a topic (alias or name), in write order. */
  output<V = unknown>(topic: string): OutputRecord<V>[] {
    const name = this.topics.find(topic)?.name ?? topic;
    return [...(this.written.get(name) ?? [])] as OutputRecord<V>[];
  }

  /** Reads and clears a topic's output. */
  readOutput<V = unknown>(topic: string): OutputRecord<V>[] {
    const out = this.output<V>(topic);
    this.written.delete(this.topics.find(topic)?.name ?? topic);
    return out;
  }

  /** Dead letters of a processor. */
  deadLetters(processor: string): OutputRecord[] {
    const spec = this.requireSpec(processor);
    return this.output(spec.dlqTopic);
  }

  private requireSpec(processor: string): ProcessorSpec {
    const spec = this.specs.find((s) => s.name === processor);
    if (!spec) throw new Error(`no processor "${processor}" (have: ${this.specs.map((s) => s.name).join(', ')})`);
    return spec;
  }

  /** Committed contents of a processor's store, merged over its partitions, in key order. */
  async store<V = unknown>(processor: string, store: string): Promise<Map<string, V>> {
    this.requireSpec(processor);
    const out = new Map<string, V>();
    const tasks = [...this.tasks.values()].filter((t) => t.spec.name === processor).sort((a, b) => a.partition - b.partition);
    for (const t of tasks) {
      const s = t.stores.get(store);
      if (!s) throw new Error(`processor "${processor}" has no store "${store}"`);
      for await (const [k, v] of s.committed.entries({}, false)) out.set(k, decodeValue<V>(v));
    }
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Seeds a store entry before records are piped (in the partition that owns the key). */
  async seedStore(processor: string, store: string, key: string, value: unknown, partition?: number): Promise<void> {
    const spec = this.requireSpec(processor);
    const input = this.topics.get(spec.inputs[0]!.topic);
    const t = await this.task(spec, partition ?? partitionForKey(key, input.partitions));
    const s = t.stores.get(store);
    if (!s) throw new Error(`processor "${processor}" has no store "${store}"`);
    s.put(key, value);
    await this.commit(t);
  }

  /** Moves the wall clock forward and runs due wall-clock punctuations of every task. */
  async advanceWallClock(ms: number): Promise<void> {
    this.wallClock += ms;
    for (const t of this.tasks.values()) {
      if (t.failed) continue;
      await t.schedule.fire('wall-clock', this.wallClock, async (p, at) => {
        t.ctx.savepoint();
        await p.fn(at);
        t.ctx.release();
      });
      await this.commit(t);
    }
    await this.deliver();
  }

  /** Moves stream time of every task (of one processor, or all) forward, firing due stream-time punctuations. */
  async advanceStreamTime(to: number, processor?: string): Promise<void> {
    for (const t of this.tasks.values()) {
      if (t.failed || (processor && t.spec.name !== processor) || to <= t.ctx.streamTime) continue;
      t.ctx.streamTime = to;
      await t.schedule.fire('stream-time', to, async (p, at) => {
        t.ctx.savepoint();
        await p.fn(at);
        t.ctx.release();
      });
      await this.commit(t);
    }
    await this.deliver();
  }

  /** How often a processor bumped a counter (ctx.count), over the label sets that match `labels`. */
  metric(processor: string, metric: ProcessorMetric, labels: Record<string, string> = {}): number {
    return this.counts.filter((c) => c.processor === processor && c.metric === metric && Object.entries(labels).every(([k, v]) => c.labels[k] === v)).length;
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
