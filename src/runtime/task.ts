/**
 * One task: one processor × one input partition. The unit of ordering, state and position. Its transaction is the
 * processor runner's (exactly-once v2, runner-transaction.ts): the task processes records into it and, at the
 * runner's commit, hands over its part. Step by step:
 *   1. wait    — a new owner waits until no transaction of the previous writer holds the task's offsets (OffsetFetch
 *                with require_stable) or records beyond the stable end of its changelogs; if that takes longer than
 *                2 × commitIntervalMs + 1 s, the writer is dead: its transactional id (from the position marker of
 *                the task's stores, or the metadata of its last committed offsets) is fenced, which aborts it;
 *   2. restore  — replay each changelog from the store's checkpoint to its end;
 *   3. position — the input position restored with the stores (offset markers), or the group's stable committed
 *                offset; batches below it are dropped, a batch past it makes the consumer seek back;
 *   4. process  — records into the runner's open transaction; outputs sent as they accumulate; at the runner's
 *                commit: changelog records and a position marker (naming the writer), offsets; only after the
 *                commit, the store writes, checkpoint and position go to LevelDB together (prepareCommit);
 *   5. aborted  — the runner's transaction failed: drop the buffer, go back to the committed position, start again;
 *   6. close    — on revoke or shutdown (the runner ended its transaction before: no transaction outlives a rejoin).
 */
import { join } from 'node:path';
import { FoldstreamError, errorMessage } from '../errors.ts';
import { authorizationDenied, isRebalanceError } from '../kafka/errors.ts';
import type { BatchControl, FetchedBatch, FetchedRecord, GroupOffsets, OffsetsAdmin, OutgoingRecord, PartitionReader, StableOffsets, TopicPartitionOffset } from '../kafka/types.ts';
import type { ProcessorSpec, StoreSpec } from '../processors/spec.ts';
import type { Logger, Processor } from '../processors/types.ts';
import { BufferedStore } from '../state/buffered-store.ts';
import { decodeChangelogRecord, laterPosition, positionRecord } from '../state/changelog.ts';
import type { CommittedStore, StoreWrite, TaskPosition } from '../state/committed-store.ts';
import { StoreCorruptError } from '../state/leveldb-store.ts';
import type { ReadCache } from '../state/lru-cache.ts';
import { CountBuffer, type RuntimeMetrics } from './metrics.ts';
import { Mutex } from './mutex.ts';
import { PunctuationSchedule } from './punctuation.ts';
import { RecordHandler, TaskFailedError } from './record-handler.ts';
import type { TaskCommit, TxnParticipant } from './runner-transaction.ts';
import { TaskContext } from './task-context.ts';
import type { TopicRegistry } from './topic-registry.ts';

/** A restore logs `store.restore_progress` every this many records. */
const RESTORE_LOG_EVERY = 100_000;

export type TaskState = 'created' | 'initializing' | 'restoring' | 'running' | 'fenced' | 'failed' | 'closed';

/** What a task needs from the processor runner that owns it. */
export interface TaskEnv {
  app: string;
  spec: ProcessorSpec;
  groupId: string;
  partition: number;
  exactlyOnce: boolean;
  commitIntervalMs: number;
  maxBufferedRecords: number;
  /** folder of this task's stores: <stateDir>/<app>/<processor>/<partition> */
  taskDir: string;
  topics: TopicRegistry;
  /** the processor runner's transaction */
  txn: TaskTxn;
  groupOffsets: GroupOffsets;
  transactionTimeoutMs: number;
  /** processing.fenceDeadWriters */
  fenceDeadWriters: boolean;
  openStore(store: StoreSpec, dir: string): Promise<CommittedStore>;
  destroyStore(dir: string): Promise<void>;
  reader: PartitionReader;
  admin: OffsetsAdmin;
  consumer: {
    seek(topic: string, partition: number, offset: string): void;
    pause(partitions: number[]): void;
    resume(partitions: number[]): void;
    commitOffsets(offsets: TopicPartitionOffset[]): Promise<void>;
  };
  metrics: RuntimeMetrics;
  /** the instance's read cache (byte budget shared by every task and store); absent: each store bounds its own by entries */
  readCache?: ReadCache;
  log: Logger;
  now(): number;
  onStateChange(task: Task, from: TaskState, to: TaskState): void;
}

/** What a task uses of its runner's transaction (runner-transaction.ts). */
export interface TaskTxn {
  readonly transactionalId: string | undefined;
  /** the runner's producer is initialised (InitProducerId ended what a crash of this instance left open) */
  ready(): Promise<void>;
  send(records: OutgoingRecord[]): Promise<void>;
  /** the instance id in another runner's transactional id of this processor (`<app>-<stage>-<instanceId>`), if it is one */
  writerInstance(transactionalId: string): string | undefined;
  /** true the first time since the last join that a task of this runner claims a dead writer's id for fencing */
  claimFencing(transactionalId: string): boolean;
  recordsProcessed(n: number): void;
  readonly due: boolean;
  /** inside the task's shared work: commit now */
  commitFromTask(): Promise<void>;
  /** inside the task's shared work: the task failed mid-transaction, abort it */
  abortFromTask(cause: unknown): Promise<void>;
}

interface OpenStore {
  spec: StoreSpec;
  committed: CommittedStore;
  buffered: BufferedStore;
}

/** Output records sent in one send() call; more are sent at commit. */
const FLUSH_RECORDS = 500;

export class Task implements TxnParticipant {
  state: TaskState = 'created';
  /** has work in the runner's open transaction */
  private txWork = false;
  /** a store found corrupt while processing: wiped before the restart that follows the abort */
  private corruptStore: string | undefined;
  private stores = new Map<string, OpenStore>();
  private position: TaskPosition = { offsets: {}, streamTime: -1 };
  private ctx: TaskContext | undefined;
  private handler: RecordHandler | undefined;
  private processor: Processor | undefined;
  private readonly schedule = new PunctuationSchedule();
  private readonly lock = new Mutex();
  /** last offset consumed per topic in the open transaction */
  private consumed = new Map<string, { last: bigint; timestamps: number[] }>();
  private sentCounts = new Map<string, number>();
  private heartbeat: (() => Promise<void>) | undefined;
  private initAttempt = 0;
  private starting: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly log: Logger;
  /** reads of the committed stores in progress (query API): the stores close only after them */
  private readonly reads = new Set<Promise<unknown>>();

  /** per-record counts, added to the counters at the end of each batch and transaction */
  private readonly counts = new CountBuffer();
  /** the per-record histograms with this task's labels, bound once */
  private readonly latency: { observe(seconds: number): void };
  private readonly endToEnd: { observe(seconds: number): void };

  constructor(private readonly env: TaskEnv) {
    this.log = env.log;
    this.latency = env.metrics.processingLatency.labels({ processor: env.spec.name });
    this.endToEnd = env.metrics.endToEndLatency.labels({ processor: env.spec.name });
  }

  get partition(): number {
    return this.env.partition;
  }

  get ready(): boolean {
    return this.state === 'running';
  }

  /**
   * Reads a committed store (what LevelDB holds after the last commit, never the open transaction's writes) for the
   * query API. Only a running task answers; the stores are not closed while a read is in progress.
   */
  async readCommitted<T>(store: string, fn: (s: CommittedStore) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; state: TaskState }> {
    const s = this.state === 'running' ? this.stores.get(store) : undefined;
    if (!s) return { ok: false, state: this.state === 'running' ? 'initializing' : this.state };
    const read = fn(s.committed);
    this.reads.add(read);
    try {
      return { ok: true, value: await read };
    } finally {
      this.reads.delete(read);
    }
  }

  /** A method, not a field read, because close() can happen during any await. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private setState(to: TaskState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.env.onStateChange(this, from, to);
  }

  /** Steps 1-3, retried with backoff until they work or the task is closed; close() waits for it, so nothing it opened outlives the task. */
  start(): Promise<void> {
    const run = this.initializeWithRetries();
    this.starting = run;
    return run;
  }

  private async initializeWithRetries(): Promise<void> {
    for (;;) {
      if (this.isClosed()) return;
      this.setState('initializing');
      try {
        await this.initialize();
        this.initAttempt = 0;
        // closed while initialising: nothing else will release what initialize() opened
        if (this.isClosed()) await this.lock.run(() => this.release());
        return;
      } catch (e) {
        await this.release();
        if (this.isClosed()) return;
        const corrupt = e instanceof StoreCorruptError;
        if (corrupt) {
          this.log.warn({ event: 'store.wiped', processor: this.env.spec.name, partition: this.partition, store: e.store, reason: errorMessage(e.cause ?? e) });
          await this.env.destroyStore(join(this.env.taskDir, e.store));
        }
        const delay = corrupt ? 0 : Math.min(200 * 2 ** this.initAttempt++, 10_000);
        const denied = this.deniedResource(e, 'init');
        this.log.warn({
          event: 'task.init_failed',
          processor: this.env.spec.name,
          partition: this.partition,
          error: errorMessage(e),
          retryInMs: delay,
          ...(denied ? { code: 'KAFKA_AUTHORIZATION_FAILED', denied, hint: 'grant the ACLs `foldstream describe --acls` prints' } : {}),
        });
        await new Promise<void>((r) => {
          this.wakeUp = r;
          setTimeout(r, delay);
        });
        this.wakeUp = undefined;
      }
    }
  }

  private async initialize(): Promise<void> {
    const { spec, partition } = this.env;
    const t0 = Date.now();
    for (const s of spec.stores) {
      const committed = await this.openOrWipe(s);
      this.stores.set(s.name, { spec: s, committed, buffered: new BufferedStore(s.name, committed, s.cacheSize, this.env.readCache) });
    }
    if (this.isClosed()) return;

    // 1. Wait: no transaction of the previous writer may hold this task's offsets or changelog records (this
    // instance's own, left by a crash, is aborted by the runner's InitProducerId).
    await this.env.txn.ready();
    if (this.isClosed()) return;
    if (this.env.exactlyOnce && this.env.fenceDeadWriters) await this.fenceDeadWriters();
    if (this.isClosed()) return;
    const stable = await this.waitForStable();
    if (!stable || this.isClosed()) return;

    // 2. Restore: continue each store from its checkpoint.
    this.setState('restoring');
    let restored = 0;
    for (const s of this.stores.values()) restored += await this.restore(s);

    // 3. Position: from the offset markers restored with the stores, or the group's (stable) committed offsets.
    let position: TaskPosition | undefined;
    for (const s of this.stores.values()) position = laterPosition(position, await s.committed.position());
    const committedOffsets: Record<string, string> = {};
    for (const [topic, c] of Object.entries(stable.offsets)) if (c.offset !== undefined) committedOffsets[topic] = c.offset;
    const fromGroup: TaskPosition = { offsets: committedOffsets, streamTime: -1 };
    if (position) {
      for (const [t, o] of Object.entries(committedOffsets)) {
        const mine = position.offsets[t];
        if (mine !== undefined && BigInt(o) > BigInt(mine)) {
          this.log.warn({ event: 'task.position_behind_group', processor: spec.name, partition, topic: t, store: mine, group: o });
        }
      }
    }
    this.position = laterPosition(position, fromGroup) ?? fromGroup;

    // The processor, its context and its record handler for this task.
    const ctx = new TaskContext({
      maxRecordBytes: spec.maxRecordBytes,
      maxClockSkewMs: spec.maxClockSkewMs,
      app: this.env.app,
      processor: spec.name,
      partition,
      stores: new Map([...this.stores].map(([n, s]) => [n, s.buffered])),
      topics: this.env.topics,
      allowedOutputs: spec.outputs,
      schedule: this.schedule,
      log: this.log,
      now: this.env.now,
      count: (metric, labels, by) => {
        const c = this.env.metrics.processorCounters[metric];
        this.counts.add(c, `${metric}\0${Object.values(labels).join('\0')}`, () => ({ ...labels, processor: spec.name }), by);
      },
    });
    ctx.streamTime = this.position.streamTime;
    this.ctx = ctx;
    this.processor = spec.create(partition);
    this.handler = new RecordHandler({
      spec,
      processor: this.processor,
      ctx,
      observer: {
        outcome: (outcome, code) => {
          const { recordOutcomes, dlqRecords } = this.env.metrics;
          this.counts.add(recordOutcomes, `outcome\0${outcome}\0${code ?? ''}`, () => ({ processor: spec.name, outcome, code: code ?? '' }));
          if (outcome === 'dead_lettered') this.counts.add(dlqRecords, `dlq\0${code ?? ''}`, () => ({ processor: spec.name, code: code ?? '' }));
        },
      },
      sleep: (ms) => this.sleepWithHeartbeat(ms),
    });
    this.schedule.clear();
    if (spec.punctuate) {
      const p = spec.punctuate;
      ctx.schedule(p.intervalMs, p.type, (ts) => p.fn(ts, ctx));
    }
    await this.processor.init?.(ctx);
    if (this.isClosed()) return;
    this.setState('running');
    this.env.consumer.resume([partition]);
    this.log.info({
      event: 'task.running',
      processor: spec.name,
      partition,
      restoredRecords: restored,
      position: this.position.offsets,
      ms: Date.now() - t0,
    });
  }

  /**
   * Step 1 (exactly-once v2, KIP-447): polls until the group's offsets of the task's inputs are stable (no
   * transaction holds newer ones: OffsetFetch require_stable) and every changelog's last stable offset is its high
   * watermark; returns the stable offsets, or undefined if the task closed meanwhile. A writer whose transaction is
   * still open after 2 × commitIntervalMs + 1 s is taken for dead (a live one commits every interval): its
   * transactional id is fenced, which aborts that transaction at once rather than after transactionTimeoutMs.
   */
  private async waitForStable(): Promise<StableOffsets | undefined> {
    const { spec, partition, groupOffsets, admin, groupId } = this.env;
    const topics = spec.inputs.map((i) => i.topic);
    const started = Date.now();
    const patience = 2 * this.env.commitIntervalMs + 1_000;
    let fenced = false;
    let logged = false;
    for (;;) {
      if (this.isClosed()) return undefined;
      const offsets = await groupOffsets.stableOffsets(groupId, topics, partition, true);
      let open: string | undefined = offsets.unstable ? 'offsets' : undefined;
      for (const s of this.stores.values()) {
        const changelog = s.spec.changelog;
        if (open || !changelog) continue;
        const lso = (await admin.endOffsets(changelog)).get(partition) ?? 0n;
        const hw = (await admin.highWatermarks(changelog)).get(partition) ?? 0n;
        // A transaction open beyond what the store holds: restoring to the last stable offset and processing would do
        // its work again. A store whose checkpoint is already past the last stable offset holds committed work beyond
        // it (a transaction whose markers a restarting broker lost: restore() keeps such a store) and need not wait.
        const checkpoint = BigInt((await s.committed.checkpoint()) ?? '0');
        if (lso < hw && checkpoint <= lso) open = `changelog ${changelog}-${partition}`;
      }
      if (!open) {
        if (logged) this.log.info({ event: 'task.previous_transaction_ended', processor: spec.name, partition, waitedMs: Date.now() - started, fenced });
        return offsets;
      }
      if (!logged) {
        logged = true;
        this.log.info({ event: 'task.waiting_for_previous_transaction', processor: spec.name, partition, holds: open });
      }
      if (!fenced && Date.now() - started > patience) {
        fenced = true;
        const writers = await this.previousWriters(topics);
        if (!writers.length) this.log.warn({ event: 'task.previous_writer_unknown', processor: spec.name, partition, holds: open, waitedMs: Date.now() - started, hint: 'waits until the broker aborts the transaction (transactionTimeoutMs)' });
        for (const writer of writers) {
          this.log.warn({ event: 'task.fencing_previous_writer', processor: spec.name, partition, transactionalId: writer, holds: open, waitedMs: Date.now() - started });
          await groupOffsets.abortTransactionOf(writer, this.env.transactionTimeoutMs).catch((e: unknown) =>
            this.log.warn({ event: 'task.fencing_failed', processor: spec.name, partition, transactionalId: writer, error: errorMessage(e) }),
          );
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * A previous writer of this task whose instance is no longer a member of the group is dead (kill -9 without
   * restart): its transaction may still be open with outputs only (no offsets yet, no changelog: nothing the wait
   * below sees), holding back every read_committed reader of those outputs until the transaction timeout. Fencing its
   * transactional id now aborts it at once. A writer of a live instance is left alone (it committed or aborted before
   * it rejoined); an id fenced already by another task of this runner is not fenced again.
   */
  private async fenceDeadWriters(): Promise<void> {
    const { spec, partition, groupOffsets, groupId, txn } = this.env;
    try {
      const writers = await this.previousWriters(spec.inputs.map((i) => i.topic));
      if (!writers.length) return;
      const live = await groupOffsets.memberInstanceIds(groupId);
      for (const writer of writers) {
        const instance = txn.writerInstance(writer);
        if (instance === undefined || live.has(instance) || !txn.claimFencing(writer)) continue;
        this.log.info({ event: 'task.fencing_dead_writer', processor: spec.name, partition, transactionalId: writer, instance });
        await groupOffsets.abortTransactionOf(writer, this.env.transactionTimeoutMs);
      }
    } catch (e) {
      // the wait below still holds the task back while a transaction holds its offsets or changelog records
      this.log.warn({ event: 'task.fencing_failed', processor: spec.name, partition, error: errorMessage(e) });
    }
  }

  /** Transactional ids that wrote this task before: the position markers of its stores, the metadata of its committed offsets. */
  private async previousWriters(topics: string[]): Promise<string[]> {
    const out = new Set<string>();
    for (const s of this.stores.values()) {
      const w = (await s.committed.position().catch(() => undefined))?.writer;
      if (w) out.add(w);
    }
    const last = await this.env.groupOffsets.stableOffsets(this.env.groupId, topics, this.partition, false).catch((e: unknown) => {
      this.log.warn({ event: 'task.offsets_unreadable', processor: this.env.spec.name, partition: this.partition, error: errorMessage(e) });
      return undefined;
    });
    for (const c of Object.values(last?.offsets ?? {})) if (c.metadata) out.add(c.metadata);
    const own = this.env.txn.transactionalId;
    if (own) out.delete(own);
    return [...out];
  }

  private async openOrWipe(s: StoreSpec): Promise<CommittedStore> {
    const dir = join(this.env.taskDir, s.name);
    try {
      return await this.env.openStore(s, dir);
    } catch (e) {
      if (!(e instanceof StoreCorruptError)) throw e;
      this.log.warn({ event: 'store.wiped', processor: this.env.spec.name, partition: this.partition, store: s.name, reason: errorMessage(e.cause ?? e) });
      this.env.metrics.taskReinitialisations.inc({ processor: this.env.spec.name, reason: 'store_corrupt' });
      await this.env.destroyStore(dir);
      return this.env.openStore(s, dir);
    }
  }

  /** Replays the store's changelog from its checkpoint to the end; returns the records applied. */
  private async restore(s: OpenStore): Promise<number> {
    const changelog = s.spec.changelog;
    if (!changelog) return 0;
    const { spec, partition } = this.env;
    const labels = { processor: spec.name, store: s.spec.name };
    let from = BigInt((await s.committed.checkpoint()) ?? '0');
    const end = (await this.env.admin.endOffsets(changelog)).get(partition) ?? 0n;
    const highWatermark = (await this.env.admin.highWatermarks(changelog)).get(partition) ?? 0n;
    if (from < highWatermark && end < highWatermark && from <= end) {
      // After InitProducerId no transaction of this task is open, so records beyond the last stable offset belong
      // to one whose markers never came (a broker that restarted as it committed: docs/exactly-once.md). Restoring
      // to the last stable offset and processing would do that transaction's work again, and the next commit would
      // complete it: duplicates. Wait instead (the task retries its start) until it is completed or aborted.
      throw new FoldstreamError(
        'CHANGELOG_TRANSACTION_OPEN',
        `changelog ${changelog}-${partition} holds an open transaction from offset ${end} (high watermark ${highWatermark}) beyond what store "${s.spec.name}" can restore`,
        {
          hint: 'the task starts once it is completed or aborted; kafka-transactions.sh find-hanging lists it (docs/errors.md says what aborting it costs)',
          canRetry: true,
        },
      );
    }
    if (from > end) {
      // The store is ahead of what a read_committed reader sees. LevelDB applies a batch only after its transaction
      // committed, so if the log holds the records up to the checkpoint, a transaction below it is still open (its
      // markers not written: a broker that restarted as it committed). Keep the store: wiping it would restore to the
      // last stable offset and process again what the open transaction holds, which the coordinator committed. The
      // task's next commit writes to this partition, and its marker completes that transaction. Only a log that ends
      // below the checkpoint (deleted and created again) means the store is ahead of anything the changelog can give.
      if (from <= highWatermark) {
        this.log.warn({ event: 'store.changelog_transaction_open', ...labels, partition, checkpoint: String(from), lastStable: String(end), highWatermark: String(highWatermark) });
      } else {
        this.log.warn({ event: 'store.checkpoint_ahead_of_changelog', ...labels, partition, checkpoint: String(from), end: String(highWatermark) });
        await s.committed.wipe();
        from = 0n;
      }
    }
    let applied = 0;
    this.env.metrics.restoreRemaining.set({ ...labels, partition: String(partition) }, Number(end > from ? end - from : 0n));
    const final = await this.env.reader.read(changelog, partition, from, async (records) => {
      const writes = new Map<string, Buffer | null>();
      let position: TaskPosition | undefined;
      for (const r of records) {
        const d = decodeChangelogRecord(r.key, r.value);
        if (!d) continue;
        if (d.kind === 'position') position = d.position;
        else writes.set(d.key, d.value);
      }
      if (this.isClosed()) throw new Error('task closed during restore');
      const last = BigInt(records[records.length - 1]!.offset) + 1n;
      const meta: { checkpoint: string; position?: TaskPosition } = { checkpoint: last.toString() };
      if (position) meta.position = position;
      await s.committed.apply([...writes].map(([key, value]) => ({ key, value })), meta);
      // a long restore says how far it is (as well as foldstream_restore_remaining_records): a line every 100 000 records
      if (Math.floor((applied + records.length) / RESTORE_LOG_EVERY) > Math.floor(applied / RESTORE_LOG_EVERY)) {
        this.log.info({ event: 'store.restore_progress', ...labels, partition, records: applied + records.length, remaining: String(end > last ? end - last : 0n) });
      }
      applied += records.length;
      this.env.metrics.restoreRecords.inc(labels, records.length);
      this.env.metrics.restoreRemaining.set({ ...labels, partition: String(partition) }, Number(end > last ? end - last : 0n));
    });
    if (final > from) await s.committed.apply([], { checkpoint: final.toString() });
    this.env.metrics.restoreRemaining.set({ ...labels, partition: String(partition) }, 0);
    s.buffered.invalidateCache();
    if (applied) this.log.info({ event: 'store.restored', ...labels, partition, from: String(from), to: String(final), records: applied });
    return applied;
  }

  /** Step 4 for one fetched batch, inside the runner's shared work. Never throws. */
  processBatch(batch: FetchedBatch, ctl: BatchControl): Promise<void> {
    return this.lock.run(async () => {
      if (this.state !== 'running') {
        this.env.consumer.pause([this.partition]);
        return;
      }
      const records = this.admit(batch);
      if (!records) return;
      this.heartbeat = () => ctl.heartbeat();
      try {
        await this.processRecords(batch, records, ctl);
      } catch (e) {
        await this.onFailure(e);
      } finally {
        this.heartbeat = undefined;
        this.counts.flush();
      }
    });
  }

  /** The next offset to process of `topic`: after what the open transaction holds, or the committed position. */
  private nextOffset(topic: string): string | undefined {
    const c = this.consumed.get(topic);
    return c ? (c.last + 1n).toString() : this.position.offsets[topic];
  }

  /** Step 3 applied to a batch: drop what is below the position, seek back when the batch starts past it. */
  private admit(batch: FetchedBatch): FetchedRecord[] | undefined {
    const pos = this.nextOffset(batch.topic);
    if (pos === undefined) return batch.records;
    const position = BigInt(pos);
    const fetched = BigInt(batch.fetchedOffset);
    if (fetched > position) {
      this.log.warn({ event: 'task.seek_back', processor: this.env.spec.name, topic: batch.topic, partition: batch.partition, fetched: batch.fetchedOffset, position: pos });
      this.env.consumer.seek(batch.topic, batch.partition, pos);
      return undefined;
    }
    const records = fetched === position ? batch.records : batch.records.filter((r) => BigInt(r.offset) >= position);
    if (records.length === 0) {
      this.env.consumer.seek(batch.topic, batch.partition, pos);
      return undefined;
    }
    return records;
  }

  private async processRecords(batch: FetchedBatch, records: FetchedRecord[], ctl: BatchControl): Promise<void> {
    const { spec, metrics, txn } = this.env;
    const ctx = this.ctx!;
    let rebalancing = false;
    let sinceHeartbeat = 0;
    const lastRecord = records[records.length - 1];
    for (const record of records) {
      if (ctl.shouldStop() || rebalancing) break;
      const started = performance.now();
      const streamTimeBefore = ctx.streamTime;
      try {
        await this.handler!.handle(record);
      } catch (e) {
        if (!(e instanceof TaskFailedError)) throw e;
        // Policy `fail`: keep what was processed before this record, then stop the task.
        this.resolve(ctl);
        await txn.commitFromTask();
        this.log.error({ event: 'task.failed', processor: spec.name, partition: this.partition, error: e.message });
        if (this.state === 'running') {
          this.setState('failed');
          this.env.consumer.pause([this.partition]);
        }
        return;
      }
      this.txWork = true;
      this.latency.observe((performance.now() - started) / 1000);
      this.counts.add(metrics.recordsConsumed, `consumed\0${batch.topic}`, () => ({ processor: spec.name, topic: batch.topic }));
      const c = this.consumed.get(record.topic) ?? { last: -1n, timestamps: [] };
      c.last = BigInt(record.offset);
      // A transactional input (a projection reading events) ends each transaction with a commit marker, which the
      // consumer filters out and resumes after. At the batch's last record the position moves over such trailing
      // records too, so the next fetch starts at the position rather than one past it (which needs a seek back).
      if (record === lastRecord && BigInt(batch.lastOffset) > c.last) c.last = BigInt(batch.lastOffset);
      c.timestamps.push(record.timestamp);
      this.consumed.set(record.topic, c);
      txn.recordsProcessed(1);
      if (ctx.streamTime > streamTimeBefore && this.schedule.mayFire('stream-time', ctx.streamTime)) {
        await this.schedule.fire('stream-time', ctx.streamTime, (p, at) => this.runPunctuator(p.fn, at, 'stream-time'));
      }
      if (ctx.outputs.length >= FLUSH_RECORDS) await this.flushOutputs();
      if (txn.due) {
        // the runner's transaction is due (bound on buffered records, or the commit interval): commit it now
        this.resolve(ctl);
        await txn.commitFromTask();
        if (this.state !== 'running') return; // aborted: back to the committed position, the batch is fetched again
      }
      if (++sinceHeartbeat >= 100) {
        sinceHeartbeat = 0;
        try {
          await ctl.heartbeat();
        } catch (e) {
          if (!isRebalanceError(e)) throw e;
          rebalancing = true; // hand the batch back quickly: the runner ends the transaction before the rejoin
        }
      }
    }
    // kafkajs fetches on from here; the offsets are committed with the runner's transaction
    this.resolve(ctl);
    const next = this.nextOffset(batch.topic);
    if (next !== undefined) {
      metrics.consumerLag.set({ processor: spec.name, topic: batch.topic, partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(next))));
    }
  }

  /** Tells kafkajs what is processed, so it fetches on (its offsets are committed by the runner's transaction). */
  private resolve(ctl: BatchControl): void {
    for (const c of this.consumed.values()) ctl.resolveOffset(c.last.toString());
  }

  private async runPunctuator(fn: (ts: number) => void | Promise<void>, at: number, type: 'stream-time' | 'wall-clock'): Promise<void> {
    const ctx = this.ctx!;
    ctx.savepoint();
    try {
      await fn(at);
      ctx.release();
      this.txWork = true;
      this.env.txn.recordsProcessed(0);
      this.env.metrics.punctuations.inc({ processor: this.env.spec.name, type });
    } catch (e) {
      ctx.rollback();
      if (e instanceof StoreCorruptError) throw e; // the task's fault: onFailure wipes and restores the store
      this.log.error({ event: 'punctuation.failed', processor: this.env.spec.name, partition: this.partition, type, error: errorMessage(e) });
    }
  }

  /** Wall-clock punctuations, inside the runner's shared work and transaction. Never throws. */
  punctuateWallClock(now: number): Promise<void> {
    if (this.state !== 'running' || !this.schedule.hasWallClock) return Promise.resolve();
    return this.lock.run(async () => {
      if (this.state !== 'running') return;
      try {
        await this.schedule.fire('wall-clock', now, (p, at) => this.runPunctuator(p.fn, at, 'wall-clock'));
        if (this.ctx!.outputs.length >= FLUSH_RECORDS) await this.flushOutputs();
      } catch (e) {
        await this.onFailure(e);
      } finally {
        this.counts.flush();
      }
    });
  }

  /** Sends outputs so far inside the runner's open transaction (keeps memory bounded in large batches). */
  private async flushOutputs(): Promise<void> {
    const outputs = this.ctx!.drainOutputs();
    if (!outputs.length) return;
    this.txWork = true;
    this.countSent(outputs);
    await this.env.txn.send(outputs);
  }

  private countSent(records: OutgoingRecord[]): void {
    for (const r of records) this.sentCounts.set(r.topic, (this.sentCounts.get(r.topic) ?? 0) + 1);
  }

  get inTransaction(): boolean {
    return this.txWork || this.consumed.size > 0 || (this.ctx?.dirty ?? false);
  }

  /**
   * The task's part of the runner's commit (called exclusive of task work): its outputs not sent yet, per changelog
   * the store writes and a position marker naming the writer, and its input offsets — the ones it processed to, or,
   * with no record processed (punctuations only), its committed ones again, so that every transaction is fenced by
   * the group generation. Once committed, the writes go to LevelDB with their checkpoint and the position.
   */
  prepareCommit(writerId: string | undefined): TaskCommit | undefined {
    const ctx = this.ctx;
    if (this.state !== 'running' || !ctx || !this.inTransaction) return undefined;
    const { partition } = this.env;
    const position: TaskPosition = { offsets: { ...this.position.offsets }, streamTime: ctx.streamTime };
    if (writerId) position.writer = writerId;
    for (const [topic, c] of this.consumed) position.offsets[topic] = (c.last + 1n).toString();
    const writes = new Map<string, StoreWrite[]>();
    const changelog: OutgoingRecord[] = [];
    for (const s of this.stores.values()) {
      const w = s.buffered.writes();
      writes.set(s.spec.name, w);
      if (!s.spec.changelog) continue;
      for (const x of w) changelog.push({ topic: s.spec.changelog, partition, key: Buffer.from(x.key, 'utf8'), value: x.value });
      const marker = positionRecord(position);
      changelog.push({ topic: s.spec.changelog, partition, key: marker.key, value: marker.value, headers: marker.headers! });
    }
    const records = [...ctx.drainOutputs(), ...changelog];
    this.countSent(records);
    const offsets: TopicPartitionOffset[] = this.env.spec.inputs.flatMap(({ topic }) => {
      const offset = position.offsets[topic];
      return offset === undefined ? [] : [{ topic, partition, offset }];
    });
    const consumed = this.consumed;
    const sent = this.sentCounts;
    return {
      records,
      offsets: this.env.exactlyOnce ? offsets : offsets.filter((o) => consumed.has(o.topic)),
      committed: (ends) => this.committed(position, writes, consumed, sent, ends),
    };
  }

  /** After the runner's commit: the state goes to LevelDB with its checkpoint and position. Never throws. */
  private async committed(position: TaskPosition, writes: Map<string, StoreWrite[]>, consumed: Map<string, { last: bigint; timestamps: number[] }>, sent: Map<string, number>, ends: Map<string, bigint>): Promise<void> {
    const { spec, partition, metrics } = this.env;
    if (this.isClosed()) return; // revoked meanwhile: its stores are closed; a restart restores from the changelog
    this.position = position;
    this.consumed = new Map();
    this.sentCounts = new Map();
    this.txWork = false;
    try {
      for (const s of this.stores.values()) {
        const checkpoint = s.spec.changelog ? ends.get(`${s.spec.changelog}:${partition}`) : undefined;
        const meta: { checkpoint?: string; position: TaskPosition } = { position };
        if (checkpoint !== undefined) meta.checkpoint = checkpoint.toString();
        await s.committed.apply(writes.get(s.spec.name) ?? [], meta);
        s.buffered.committedWrites();
      }
    } catch (e) {
      // committed to Kafka, not to LevelDB: the store is restored from its changelog
      this.log.warn({ event: 'task.apply_failed', code: e instanceof StoreCorruptError ? 'STORE_CORRUPT' : 'TRANSACTION_FAILED', processor: spec.name, partition, error: errorMessage(e) });
      if (e instanceof StoreCorruptError) this.corruptStore = e.store;
      this.restartAfter('store_corrupt');
      return;
    }
    const now = Date.now();
    for (const c of consumed.values()) for (const ts of c.timestamps) this.endToEnd.observe(Math.max(0, now - ts) / 1000);
    for (const [topic, n] of sent) metrics.recordsProduced.inc({ processor: spec.name, topic }, n);
    this.counts.flush();
  }

  /** Step 5: the runner's transaction was aborted. Nothing of it reached LevelDB; back to the committed position. */
  aborted(): void {
    if (this.state !== 'running') return;
    this.restartAfter('transaction_failed');
  }

  /**
   * Drops what the task holds of the open transaction, seeks its inputs back to the committed position, and starts
   * again (step 1 on: its stores re-read, its punctuations and processor made anew) once the work in progress ended.
   */
  private restartAfter(reason: 'transaction_failed' | 'store_corrupt'): void {
    if (this.isClosed()) return;
    const { spec, partition, metrics } = this.env;
    metrics.taskReinitialisations.inc({ processor: spec.name, reason });
    this.setState('initializing');
    const seekTo = { ...this.position.offsets };
    this.consumed = new Map();
    this.sentCounts = new Map();
    this.txWork = false;
    this.ctx?.discard();
    for (const [t, o] of Object.entries(seekTo)) this.env.consumer.seek(t, partition, o);
    this.env.consumer.pause([partition]);
    void this.lock.run(async () => {
      await this.release();
      const corrupt = this.corruptStore;
      this.corruptStore = undefined;
      if (corrupt) await this.env.destroyStore(join(this.env.taskDir, corrupt)).catch(() => undefined);
    }).then(() => {
      if (!this.isClosed()) void this.start();
    });
  }

  /**
   * The resource an ACL is missing for, as precisely as the error allows: a transactional id or group exactly; a topic
   * by the work that failed (kafkajs drops the topic name of TOPIC_AUTHORIZATION_FAILED), with the operation needed.
   */
  private deniedResource(e: unknown, phase: 'init' | 'transaction'): string | undefined {
    const { spec } = this.env;
    switch (authorizationDenied(e)) {
      case undefined:
        return undefined;
      case 'transactionalId':
        return `transactional id ${this.env.txn.transactionalId ?? '(none)'} (WRITE)`;
      case 'group':
        return `consumer group ${this.env.groupId} (READ)`;
      case 'cluster':
        return 'the cluster';
      case 'topic': {
        const changelogs = spec.stores.flatMap((s) => (s.changelog ? [s.changelog] : []));
        if (phase === 'init') return `topic ${changelogs.join(' or ')} (READ: the restore of the task's stores)`;
        const written = [...new Set([...this.sentCounts.keys(), ...changelogs])];
        return `topic ${written.join(' or ')} (WRITE: the task's transaction)`;
      }
    }
  }

  /** A failure while processing (a corrupt store, a failed send): the runner's transaction is aborted, this task starts again. */
  private async onFailure(e: unknown): Promise<void> {
    const { spec, partition } = this.env;
    const denied = this.deniedResource(e, 'transaction');
    const corrupt = e instanceof StoreCorruptError;
    this.log.warn({
      event: 'task.transaction_failed',
      code: e instanceof FoldstreamError ? e.code : denied ? 'KAFKA_AUTHORIZATION_FAILED' : corrupt ? 'STORE_CORRUPT' : 'TRANSACTION_FAILED',
      processor: spec.name,
      partition,
      error: errorMessage(e),
      ...(denied ? { denied, hint: 'grant the ACLs `foldstream describe --acls` prints' } : {}),
    });
    if (corrupt) this.corruptStore = e.store;
    this.txWork = true; // whatever it sent is in the transaction: it is aborted with the rest
    await this.env.txn.abortFromTask(e);
  }

  /** Drops the task's buffer, its processor and its stores (their files stay). */
  private async release(): Promise<void> {
    this.ctx?.discard();
    this.consumed = new Map();
    this.sentCounts = new Map();
    this.txWork = false;
    this.schedule.clear();
    try {
      await this.processor?.close?.();
    } catch (e) {
      this.log.warn({ event: 'processor.close_failed', processor: this.env.spec.name, error: errorMessage(e) });
    }
    this.processor = undefined;
    this.handler = undefined;
    // new reads find no store from here on; the ones in progress finish before their database closes
    const stores = this.stores;
    this.stores = new Map();
    for (const s of stores.values()) s.buffered.invalidateCache(); // the shared budget is for stores in use
    await Promise.allSettled([...this.reads]);
    for (const s of stores.values()) await s.committed.close().catch(() => undefined);
  }

  /** Start again after a failure, when the runner knows this instance still owns the task. */
  reinitialize(): void {
    if (this.state === 'fenced' || this.state === 'failed') void this.start();
  }

  private async sleepWithHeartbeat(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(1000, until - Date.now())));
      await this.heartbeat?.().catch(() => undefined);
    }
  }

  /**
   * Step 6: revoke or shutdown. Commits nothing: the runner ended its transaction before (before a rejoin, at stop),
   * or aborts it before closing a task that has work in it.
   */
  async close(): Promise<void> {
    const was = this.state;
    this.setState('closed');
    this.wakeUp?.();
    await this.lock.run(() => this.release());
    this.counts.flush();
    // an initialisation in progress stops at its next step and releases what it opened
    await this.starting?.catch(() => undefined);
    this.forgetGauges();
    this.log.info({ event: 'task.closed', processor: this.env.spec.name, partition: this.partition, was });
  }

  /**
   * A closed task's partition may be another instance's now: its lag and restore gauges go with it, so only the owner
   * reports them (not the last value this instance saw, summed with the owner's, and never updated again).
   */
  private forgetGauges(): void {
    const { spec, partition, metrics } = this.env;
    const p = String(partition);
    for (const input of spec.inputs) metrics.consumerLag.remove({ processor: spec.name, topic: input.topic, partition: p });
    for (const s of spec.stores) if (s.changelog) metrics.restoreRemaining.remove({ processor: spec.name, store: s.name, partition: p });
  }
}
