/**
 * The ProcessorContext of one task, shared by the runtime and the TopologyTestDriver: buffered stores, forward()
 * into the task's pending outputs, punctuation scheduling, stream time and the current record. Outputs and store
 * writes of one record can be undone together (a handler that throws is retried from a clean slate).
 */
import { FoldstreamError } from '../errors.ts';
import type { BufferedStore } from '../state/buffered-store.ts';
import type { OutgoingRecord } from '../kafka/types.ts';
import type {
  Cancellable,
  ForwardOptions,
  KeyValueStore,
  Logger,
  ProcessorContext,
  ProcessorMetric,
  ProcessorMetrics,
  PunctuationType,
  RecordMeta,
} from '../processors/types.ts';
import { encode } from '../serde/codecs.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import type { PunctuationSchedule } from './punctuation.ts';
import type { TopicRegistry } from './topic-registry.ts';

export interface TaskContextOptions {
  app: string;
  processor: string;
  partition: number;
  stores: Map<string, BufferedStore>;
  topics: TopicRegistry;
  /** topic names (not aliases) this processor may forward to; undefined: any declared topic */
  allowedOutputs: Set<string> | undefined;
  schedule: PunctuationSchedule;
  log: Logger;
  /** wall-clock source (the test driver controls it) */
  now: () => number;
  /** largest output record (key + value bytes); larger ones fail the record (RECORD_TOO_LARGE) instead of the transaction */
  maxRecordBytes: number;
  /** how far ahead of the wall clock an output's record time may be (processing.maxClockSkewMs); later ones are held to it */
  maxClockSkewMs: number;
  /** receives processor counters (ctx.count) once the record's work is kept; absent: they are dropped */
  count?: (metric: ProcessorMetric, labels: Record<string, string>, by: number) => void;
}

export class TaskContext implements ProcessorContext {
  readonly app: string;
  readonly processor: string;
  readonly partition: number;
  readonly log: Logger;
  streamTime = -1;
  record: RecordMeta | undefined;

  get wallClockTime(): number {
    return this.o.now();
  }
  /** records forwarded since the last flush, in order */
  readonly outputs: OutgoingRecord[] = [];
  private savepointAt: number | undefined;
  /** counts since savepoint(), reported on release() */
  private pendingCounts: [ProcessorMetric, Record<string, string>, number][] = [];

  constructor(private readonly o: TaskContextOptions) {
    this.app = o.app;
    this.processor = o.processor;
    this.partition = o.partition;
    this.log = o.log;
  }

  store<V = unknown>(name: string): KeyValueStore<V> {
    const s = this.o.stores.get(name);
    if (!s) {
      throw new FoldstreamError('STORE_UNDECLARED', `processor "${this.processor}" has no store "${name}"`, {
        hint: `declare it under stores: and list it in the processor's stores (it has: ${[...this.o.stores.keys()].join(', ') || 'none'})`,
      });
    }
    return s as unknown as KeyValueStore<V>;
  }

  forward(topic: string, key: string | Buffer | null, value: unknown, options: ForwardOptions = {}): void {
    const t = this.o.topics.get(topic);
    if (this.o.allowedOutputs && !this.o.allowedOutputs.has(t.name)) {
      throw new FoldstreamError('OUTPUT_UNDECLARED', `processor "${this.processor}" forwarded to "${topic}", which is not among its outputs`, {
        hint: 'list the topic alias under the processor outputs',
      });
    }
    const keyBytes = key === null ? null : typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    let partition = options.partition;
    if (partition === undefined) partition = keyBytes ? partitionForKey(keyBytes, t.partitions) : this.partition % t.partitions;
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) {
      throw new RangeError(`partition ${partition} is outside topic "${t.name}" (${t.partitions} partitions)`);
    }
    const encoded = encode(t.codec, value);
    const size = (keyBytes?.length ?? 0) + (encoded?.length ?? 0);
    if (size > this.o.maxRecordBytes) {
      // Sent, it would fail the whole transaction on every retry; failing this record lets its policy handle it.
      throw new FoldstreamError('RECORD_TOO_LARGE', `an output record to "${t.name}" is ${size} bytes; processing.maxRecordBytes is ${this.o.maxRecordBytes}`, {
        hint: 'keep records small (store large payloads elsewhere and send a reference), or raise maxRecordBytes and the broker message.max.bytes',
      });
    }
    const rec: OutgoingRecord = {
      topic: t.name,
      partition,
      key: keyBytes,
      value: encoded,
      timestamp: this.outputTime(options.timestamp ?? this.record?.timestamp ?? this.o.now()),
    };
    if (options.headers) rec.headers = options.headers;
    this.outputs.push(rec);
  }

  count<M extends ProcessorMetric>(metric: M, labels: ProcessorMetrics[M], by = 1): void {
    if (!this.o.count) return;
    if (this.savepointAt === undefined) this.o.count(metric, labels, by);
    else this.pendingCounts.push([metric, labels, by]);
  }

  /** Adds an already encoded record (dead letters, internal records); its time is held as forward() holds it. */
  send(record: OutgoingRecord): void {
    this.outputs.push(record.timestamp === undefined ? record : { ...record, timestamp: this.outputTime(record.timestamp) });
  }

  /**
   * An output's record time, held to at most maxClockSkewMs ahead of the wall clock. Outputs inherit the input record's
   * time, and a broker refuses a record dated more than its message.timestamp.after.max.ms (Kafka 4: one hour) ahead:
   * one command from a producer with a wrong clock, on a topic that accepted it, would then fail every transaction of
   * its task for good. Times behind the wall clock (replays) are kept as they are.
   */
  private outputTime(timestamp: number): number {
    return Math.min(timestamp, this.o.now() + this.o.maxClockSkewMs);
  }

  schedule(intervalMs: number, type: PunctuationType, fn: (timestamp: number) => void | Promise<void>): Cancellable {
    return this.o.schedule.add(intervalMs, type, fn, type === 'stream-time' ? this.streamTime : this.o.now());
  }

  /** Marks the start of one record's work. */
  savepoint(): void {
    this.savepointAt = this.outputs.length;
    this.pendingCounts = [];
    for (const s of this.o.stores.values()) s.savepoint();
  }

  /** Undoes the outputs and store writes since savepoint(). */
  rollback(): void {
    if (this.savepointAt !== undefined) this.outputs.length = this.savepointAt;
    for (const s of this.o.stores.values()) s.rollback();
    this.savepointAt = undefined;
    this.pendingCounts = [];
  }

  release(): void {
    this.savepointAt = undefined;
    const counts = this.pendingCounts;
    this.pendingCounts = [];
    for (const [metric, labels, by] of counts) this.o.count?.(metric, labels, by);
    for (const s of this.o.stores.values()) s.release();
  }

  /** Takes the pending outputs (they are being sent). */
  drainOutputs(): OutgoingRecord[] {
    return this.outputs.splice(0, this.outputs.length);
  }

  get dirty(): boolean {
    if (this.outputs.length) return true;
    for (const s of this.o.stores.values()) if (s.dirtyKeys) return true;
    return false;
  }

  /** Forget every pending output and write (the transaction failed). */
  discard(): void {
    this.outputs.length = 0;
    this.savepointAt = undefined;
    this.pendingCounts = [];
    for (const s of this.o.stores.values()) s.discard();
  }
}
