/**
 * The runtime's Prometheus metrics (prefix foldstream_), registered on an injected registry so tests and several
 * apps in one process do not collide. Names, types and labels are documented in docs/metrics.md.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { ProcessorMetric } from '../processors/types.ts';

/**
 * Phases of a commit (foldstream_commit_phase_seconds): add_partitions (AddPartitionsToTxn, when the producer sends it
 * on its own; kafkajs adds partitions inside each produce, so there it is part of produce), produce (the outputs,
 * changelog records and position markers), offsets (the consumed offsets into the transaction), end_transaction
 * (EndTxn), leveldb_apply (the committed writes, checkpoint and position into the stores).
 */
export type CommitPhase = 'add_partitions' | 'produce' | 'offsets' | 'end_transaction' | 'leveldb_apply';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const E2E_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class RuntimeMetrics {
  readonly recordsConsumed: Counter<'processor' | 'topic'>;
  readonly recordsProduced: Counter<'processor' | 'topic'>;
  readonly recordOutcomes: Counter<'processor' | 'outcome' | 'code'>;
  readonly dlqRecords: Counter<'processor' | 'code'>;
  readonly processingLatency: Histogram<'processor'>;
  readonly transactions: Counter<'processor' | 'result'>;
  readonly commitLatency: Histogram<'processor'>;
  /** where a commit's time goes, phase by phase (COMMIT_PHASES) */
  readonly commitPhase: Histogram<'processor' | 'phase'>;
  /** transactional requests the Kafka client sent again, by the broker's reason (e.g. concurrent_transactions) */
  readonly transactionRetries: Counter<'reason'>;
  readonly consumerLag: Gauge<'processor' | 'topic' | 'partition'>;
  readonly restoreRecords: Counter<'processor' | 'store'>;
  readonly restoreRemaining: Gauge<'processor' | 'store' | 'partition'>;
  readonly rebalances: Counter<'processor'>;
  readonly assignedTasks: Gauge<'processor'>;
  readonly tasksByState: Gauge<'processor' | 'state'>;
  readonly endToEndLatency: Histogram<'processor'>;
  readonly punctuations: Counter<'processor' | 'type'>;
  readonly taskReinitialisations: Counter<'processor' | 'reason'>;
  readonly httpRequests: Counter<'route' | 'status'>;
  /** counters processor code bumps through ctx.count (see ProcessorMetrics) */
  readonly processorCounters: Record<ProcessorMetric, Counter<string>>;

  constructor(readonly registry: Registry, opts: { defaultMetrics?: boolean } = {}) {
    const r = [registry];
    this.recordsConsumed = new Counter({ name: 'foldstream_records_consumed_total', help: 'Input records read and processed (committed or not)', labelNames: ['processor', 'topic'], registers: r });
    this.recordsProduced = new Counter({ name: 'foldstream_records_produced_total', help: 'Records written in committed transactions (outputs, dead letters, changelogs)', labelNames: ['processor', 'topic'], registers: r });
    this.recordOutcomes = new Counter({ name: 'foldstream_record_outcomes_total', help: 'What happened to input records: processed, dropped by a step, dead_lettered, skipped, retried', labelNames: ['processor', 'outcome', 'code'], registers: r });
    this.dlqRecords = new Counter({ name: 'foldstream_dlq_records_total', help: 'Records sent to the dead-letter topic, by error code', labelNames: ['processor', 'code'], registers: r });
    this.processingLatency = new Histogram({ name: 'foldstream_processing_latency_seconds', help: 'Time to handle one input record (decode, stages, processor)', labelNames: ['processor'], buckets: LATENCY_BUCKETS, registers: r });
    this.transactions = new Counter({ name: 'foldstream_transactions_total', help: 'Transactions by result: committed or aborted', labelNames: ['processor', 'result'], registers: r });
    this.commitLatency = new Histogram({ name: 'foldstream_commit_latency_seconds', help: 'Time to send outputs, offsets and commit one transaction', labelNames: ['processor'], buckets: LATENCY_BUCKETS, registers: r });
    this.commitPhase = new Histogram({ name: 'foldstream_commit_phase_seconds', help: 'Time of each phase of a commit: add_partitions, produce, offsets, end_transaction, leveldb_apply', labelNames: ['processor', 'phase'], buckets: LATENCY_BUCKETS, registers: r });
    this.transactionRetries = new Counter({ name: 'foldstream_transaction_retries_total', help: 'Transactional requests the Kafka client retried, by reason (concurrent_transactions: the coordinator was still completing the previous transaction)', labelNames: ['reason'], registers: r });
    this.consumerLag = new Gauge({ name: 'foldstream_consumer_lag', help: 'Records between the committed position and the end of each input partition', labelNames: ['processor', 'topic', 'partition'], registers: r });
    this.restoreRecords = new Counter({ name: 'foldstream_restore_records_total', help: 'Changelog records applied while restoring stores', labelNames: ['processor', 'store'], registers: r });
    this.restoreRemaining = new Gauge({ name: 'foldstream_restore_remaining_records', help: 'Changelog records left to restore, per store and partition', labelNames: ['processor', 'store', 'partition'], registers: r });
    this.rebalances = new Counter({ name: 'foldstream_rebalances_total', help: 'Consumer group rebalances this instance completed, its first join included', labelNames: ['processor'], registers: r });
    this.assignedTasks = new Gauge({ name: 'foldstream_assigned_tasks', help: 'Tasks (partitions) assigned to this instance', labelNames: ['processor'], registers: r });
    this.tasksByState = new Gauge({ name: 'foldstream_tasks', help: 'Tasks of this instance by state (initializing, restoring, running, fenced, failed)', labelNames: ['processor', 'state'], registers: r });
    this.endToEndLatency = new Histogram({ name: 'foldstream_end_to_end_latency_seconds', help: 'Commit time minus input record timestamp', labelNames: ['processor'], buckets: E2E_BUCKETS, registers: r });
    this.punctuations = new Counter({ name: 'foldstream_punctuations_total', help: 'Punctuations run, by clock', labelNames: ['processor', 'type'], registers: r });
    this.taskReinitialisations = new Counter({ name: 'foldstream_task_reinitialisations_total', help: 'Tasks re-initialised after fencing, a failed transaction or a corrupt store', labelNames: ['processor', 'reason'], registers: r });
    this.httpRequests = new Counter({ name: 'foldstream_http_requests_total', help: 'HTTP requests answered, by route and status code', labelNames: ['route', 'status'], registers: r });
    this.processorCounters = {
      command_outcomes: new Counter({ name: 'foldstream_command_outcomes_total', help: 'Commands handled by aggregates: accepted, rejected (domain error), conflict (stale expectedVersion), duplicate (repeated commandId), reused (a commandId the aggregate saw with another command: COMMAND_ID_REUSED), expired (remembered replies deleted after commandRetentionMs)', labelNames: ['processor', 'outcome'], registers: r }),
      projection_events: new Counter({ name: 'foldstream_projection_events_total', help: 'Events seen by projections: applied, already_applied (version at or below the view\'s), unknown_type', labelNames: ['processor', 'outcome'], registers: r }),
      upcasts: new Counter({ name: 'foldstream_upcasts_total', help: 'Events lifted by an upcaster before a processor saw them', labelNames: ['processor', 'event_type', 'from_version', 'to_version'], registers: r }),
      saga_events: new Counter({ name: 'foldstream_saga_events_total', help: 'Events seen by sagas: started (an instance), handled, ignored (no reaction), already_applied (version at or below the one the instance handled from that aggregate), ended (instance already ended), uncorrelated (no saga id); expired: ended instances deleted after endedRetentionMs', labelNames: ['processor', 'outcome'], registers: r }),
      saga_lifecycle: new Counter({ name: 'foldstream_saga_lifecycle_total', help: 'Saga log entries by kind: started, step_completed, timed_out, failed, compensated, completed', labelNames: ['processor', 'event'], registers: r }),
      join_records: new Counter({ name: 'foldstream_join_records_total', help: 'Records seen by joins: joined (a result was sent), unmatched (no row to join), table (a table row changed), late, ignored (not one of eventTypes), unkeyed, stale (a foreign-key response for an older left row), expired (buffered stream records deleted)', labelNames: ['processor', 'outcome'], registers: r }),
      saga_commands: new Counter({ name: 'foldstream_saga_commands_total', help: 'Commands sent by sagas', labelNames: ['processor', 'command_type'], registers: r }),
      window_records: new Counter({ name: 'foldstream_window_records_total', help: 'Records seen by window processors: applied, late (every window it belongs to had closed: dropped, or dead-lettered with late: dlq), ignored (not one of eventTypes), unkeyed (the key expression gave nothing)', labelNames: ['processor', 'outcome'], registers: r }),
      windows: new Counter({ name: 'foldstream_windows_total', help: 'Windows of window processors that closed (with emit: close, their result was sent) or expired (deleted after retentionMs)', labelNames: ['processor', 'event'], registers: r }),
    };
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  }
}

/**
 * Counter increments kept per label set and added to prom-client at once by flush(): a record costs a Map update
 * instead of a prom-client call (which validates and hashes its labels every time). A task flushes at the end of each
 * batch and transaction, so a scrape sees its counts at most one batch late.
 */
export class CountBuffer {
  private readonly pending = new Map<string, { counter: Counter<string>; labels: Record<string, string>; n: number }>();

  /** `key` names the counter and label set; `labels` builds the label set the first time a key is seen. */
  add(counter: Counter<string>, key: string, labels: () => Record<string, string>, by = 1): void {
    const p = this.pending.get(key);
    if (p) p.n += by;
    else this.pending.set(key, { counter, labels: labels(), n: by });
  }

  flush(): void {
    for (const p of this.pending.values()) if (p.n) p.counter.inc(p.labels, p.n);
    this.pending.clear();
  }
}

