/**
 * What processor code sees. Processors never import kafkajs, LevelDB or HTTP: they get a ProcessorContext, which the
 * runtime backs with a transaction and LevelDB, and the TopologyTestDriver backs with memory.
 */

export type Headers = Record<string, string>;

/** Where the current record came from. */
export interface RecordMeta {
  topic: string;
  partition: number;
  /** offset as a decimal string (Kafka offsets are 64-bit) */
  offset: string;
  /** record timestamp, ms since the epoch */
  timestamp: number;
  headers: Headers;
  key: string | null;
}

/** A decoded input record. `value` is the decoded value (envelope for event/command processors). */
export interface InputRecord<V = unknown> extends RecordMeta {
  value: V;
}

export interface RangeOptions {
  /** only keys starting with this prefix */
  prefix?: string;
  gte?: string;
  gt?: string;
  lte?: string;
  lt?: string;
  reverse?: boolean;
  limit?: number;
}

/** A key-value store of one task. Writes are buffered until the transaction commits; reads see them at once. */
export interface KeyValueStore<V = unknown> {
  readonly name: string;
  get(key: string): Promise<V | undefined>;
  put(key: string, value: V): void;
  delete(key: string): void;
  /** Entries in key order, merging uncommitted writes over the stored ones. */
  range(options?: RangeOptions): AsyncIterable<[string, V]>;
}

export type PunctuationType = 'stream-time' | 'wall-clock';

export interface Cancellable {
  cancel(): void;
}

export interface Logger {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
}

export interface ForwardOptions {
  headers?: Headers;
  /** explicit partition; by default murmur2 of the key, as the Java client does */
  partition?: number;
  /** record timestamp; by default the input record's (or the punctuation's) timestamp */
  timestamp?: number;
}

/**
 * Counters processor code may bump, with their labels. The runtime exports each as `foldstream_<name>_total` with a
 * `processor` label added (docs/metrics.md); processors never see prom-client.
 */
export interface ProcessorMetrics {
  command_outcomes: { outcome: 'accepted' | 'rejected' | 'conflict' | 'duplicate' | 'reused' | 'expired' };
  projection_events: { outcome: 'applied' | 'already_applied' | 'unknown_type' | 'replayed' | 'replay_rebuilt' | 'replay_stale' | 'replay_orphan' };
  upcasts: { event_type: string; from_version: string; to_version: string };
  saga_events: { outcome: 'started' | 'handled' | 'ignored' | 'already_applied' | 'ended' | 'uncorrelated' | 'expired' };
  saga_lifecycle: { event: 'started' | 'step_completed' | 'timed_out' | 'failed' | 'compensated' | 'completed' };
  saga_commands: { command_type: string };
  window_records: { outcome: 'applied' | 'late' | 'ignored' | 'unkeyed' };
  windows: { event: 'closed' | 'expired' };
  join_records: { outcome: 'joined' | 'unmatched' | 'table' | 'late' | 'ignored' | 'unkeyed' | 'stale' | 'expired' };
}

export type ProcessorMetric = keyof ProcessorMetrics;

export interface ProcessorContext {
  readonly app: string;
  readonly processor: string;
  /** the task's partition number */
  readonly partition: number;
  /** highest record timestamp this task has seen, the record being processed included (as in Kafka Streams) */
  readonly streamTime: number;
  /** the wall clock, ms since the epoch (the TopologyTestDriver's own clock in tests; use it, not Date.now()) */
  readonly wallClockTime: number;
  /** the record being processed; undefined inside a punctuation */
  readonly record: RecordMeta | undefined;
  readonly log: Logger;
  store<V = unknown>(name: string): KeyValueStore<V>;
  /**
   * Sends a record to a declared topic (by alias or name) inside the current transaction.
   * `value` is encoded with the topic's codec; null is a tombstone; a Buffer is sent as is.
   */
  forward(topic: string, key: string | Buffer | null, value: unknown, options?: ForwardOptions): void;
  /** Runs fn every intervalMs of stream time or wall-clock time, inside the task's transaction. */
  schedule(intervalMs: number, type: PunctuationType, fn: (timestamp: number) => void | Promise<void>): Cancellable;
  /** Adds one to a counter; counts of a record whose processing is undone (retry, dead letter) are dropped with it. */
  count<M extends ProcessorMetric>(metric: M, labels: ProcessorMetrics[M], by?: number): void;
}

/** A processor of one task. Built once per task by its kind's factory. */
export interface Processor {
  init?(ctx: ProcessorContext): void | Promise<void>;
  process(record: InputRecord, ctx: ProcessorContext): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** The module contract of `type: custom`. */
export interface CustomModule {
  process(record: InputRecord, ctx: ProcessorContext): void | Promise<void>;
  init?(ctx: ProcessorContext): void | Promise<void>;
  punctuate?(timestamp: number, ctx: ProcessorContext): void | Promise<void>;
  close?(): void | Promise<void>;
}
