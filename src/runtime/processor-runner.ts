/**
 * Runs one processor on this instance — the role of Kafka Streams' stream thread: its consumer group, its tasks
 * (created and closed as the group assigns partitions), its transaction (exactly-once v2: one transactional producer
 * and one transaction per commit interval for all its tasks, runner-transaction.ts), wall-clock punctuation, and the
 * cleanup of state folders of tasks it no longer owns.
 */
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import type { KafkaClient } from '../kafka/client.ts';
import { GroupConsumer } from '../kafka/group-consumer.ts';
import { KafkaJsGroupOffsets } from '../kafka/group-offsets.ts';
import { createTaskProducer } from '../kafka/task-producer.ts';
import type { FetchedBatch, BatchControl, OffsetsAdmin } from '../kafka/types.ts';
import type { ProcessorSpec } from '../processors/spec.ts';
import type { Logger } from '../processors/types.ts';
import type { CommittedStore } from '../state/committed-store.ts';
import { LevelDbStore } from '../state/leveldb-store.ts';
import type { ReadCache } from '../state/lru-cache.ts';
import { StateDirJanitor, taskDir } from '../state/state-dir.ts';
import { groupId, runnerTransactionalId } from '../topology/names.ts';
import type { Topology } from '../topology/schema.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { RunnerTransaction } from './runner-transaction.ts';
import { Task, type TaskState } from './task.ts';
import type { TopicRegistry } from './topic-registry.ts';
import { join } from 'node:path';

export interface ProcessorRunnerOptions {
  topology: Topology;
  spec: ProcessorSpec;
  kafka: KafkaClient;
  admin: OffsetsAdmin;
  topics: TopicRegistry;
  stateDir: string;
  instanceId: string;
  /** where this instance answers queries, told to the group so others can point clients here */
  url?: () => string | undefined;
  metrics: RuntimeMetrics;
  /** the instance's read cache, shared by every task and store (processing.cacheMaxBytes) */
  readCache: ReadCache;
  /** join the group as a static member (processing.staticMembership; src/kafka/static-membership.ts) */
  staticMembership?: { groupInstanceId: string; leaveOnStop: () => boolean };
  log: Logger;
}

/** A read of a task's committed store: its result, or why this instance cannot answer for that partition. */
export type StoreRead<T> = { ok: true; value: T } | { ok: false; reason: 'not_hosted' | 'not_running'; state: string | undefined };

const TASK_STATES: TaskState[] = ['initializing', 'restoring', 'running', 'fenced', 'failed'];

export class ProcessorRunner {
  private readonly tasks = new Map<number, Task>();
  private readonly consumer: GroupConsumer;
  private readonly reader: ChangelogReader;
  private readonly janitor: StateDirJanitor;
  private readonly groupId: string;
  private readonly txn: RunnerTransaction;
  private readonly groupOffsets: KafkaJsGroupOffsets;
  private punctuationTimer: NodeJS.Timeout | undefined;
  private readonly punctuating = new Set<Task>();
  private memberId: string | undefined;
  private readonly closing = new Map<number, Promise<void>>();
  private janitorStarted = false;
  private joined = false;
  private stopped = false;
  private fenced = false;

  constructor(private readonly o: ProcessorRunnerOptions) {
    const t = o.topology;
    this.groupId = groupId(t.app, o.spec.name);
    this.reader = new ChangelogReader(o.kafka, o.log);
    this.groupOffsets = new KafkaJsGroupOffsets(o.kafka);
    const exactlyOnce = t.processing.guarantee === 'exactly_once';
    const txnId = exactlyOnce ? runnerTransactionalId(t.app, o.spec.name, o.instanceId) : undefined;
    this.txn = new RunnerTransaction({
      processor: o.spec.name,
      groupId: this.groupId,
      exactlyOnce,
      transactionalId: txnId,
      ...(exactlyOnce ? { transactionalIdPrefix: runnerTransactionalId(t.app, o.spec.name, '') } : {}),
      commitIntervalMs: t.processing.commitIntervalMs,
      maxBufferedRecords: t.processing.maxBufferedRecords,
      createProducer: () =>
        createTaskProducer(o.kafka, {
          ...(txnId ? { transactionalId: txnId, groupId: this.groupId } : {}),
          transactionTimeoutMs: t.processing.transactionTimeoutMs,
          onRetry: (reason) => o.metrics.transactionRetries.inc({ reason }),
        }),
      participants: () => this.tasks.values(),
      commitOffsets: (offsets) => this.consumer.commitOffsets(offsets),
      metrics: o.metrics,
      log: o.log,
    });
    this.janitor = new StateDirJanitor(join(o.stateDir, t.app, o.spec.name), t.processing.stateCleanupDelayMs, () => new Set(this.tasks.keys()), o.log);
    this.consumer = new GroupConsumer(o.kafka, {
      groupId: this.groupId,
      topics: o.spec.inputs.map((i) => i.topic),
      readCommitted: true,
      sessionTimeoutMs: this.sessionTimeoutMs,
      heartbeatIntervalMs: t.processing.heartbeatIntervalMs,
      rebalanceTimeoutMs: t.processing.rebalanceTimeoutMs,
      partitionsConsumedConcurrently: t.processing.partitionsConsumedConcurrently,
      userData: () => {
        const url = o.url?.();
        return { instanceId: o.instanceId, owned: [...this.tasks.keys()], ...(url === undefined ? {} : { url }) };
      },
      onAssigned: (tasks, memberId) => {
        // every completed rebalance this member took part in, its first join included (Kafka's rebalance-total);
        // REBALANCING is only seen by members already in the group. No member id: a consumer restarted after a crash.
        if (memberId !== '') o.metrics.rebalances.inc({ processor: o.spec.name });
        void this.assign(tasks, memberId);
      },
      beforeRejoin: () => this.txn.beforeRejoin(),
      // a static member's offset commits carry its group.instance.id, as its heartbeats do
      onGeneration: (g) => this.txn.joined(o.staticMembership ? { ...g, groupInstanceId: o.staticMembership.groupInstanceId } : g),
      onBatch: (batch, ctl) => this.onBatch(batch, ctl),
      ...(o.staticMembership ? { staticMembership: o.staticMembership, onFenced: () => (this.fenced = true) } : {}),
      log: o.log,
    });
  }

  /** the group's session timeout: a static member's is processing.staticMembership.sessionTimeoutMs */
  private get sessionTimeoutMs(): number {
    const p = this.o.topology.processing;
    return this.o.staticMembership ? p.staticMembership.sessionTimeoutMs : p.sessionTimeoutMs;
  }

  get name(): string {
    return this.o.spec.name;
  }

  get spec(): ProcessorSpec {
    return this.o.spec;
  }

  /** Joined its group and every assigned task is running. */
  get ready(): boolean {
    return this.joined && !this.fenced && [...this.tasks.values()].every((t) => t.ready);
  }

  /** Partition count of the processor's inputs: one task per partition number. */
  get partitions(): number {
    return this.o.topics.get(this.o.spec.inputs[0]!.topic).partitions;
  }

  /**
   * Reads a committed store of the task of `partition`, if this instance runs it (the query API). Never touches a
   * closed store: a task revoked meanwhile answers `not_running`.
   */
  async readCommitted<T>(partition: number, store: string, fn: (s: CommittedStore) => Promise<T>): Promise<StoreRead<T>> {
    const task = this.tasks.get(partition);
    if (!task) return { ok: false, reason: this.joined ? 'not_hosted' : 'not_running', state: this.joined ? undefined : 'joining' };
    const r = await task.readCommitted(store, fn);
    return r.ok ? r : { ok: false, reason: 'not_running', state: r.state };
  }

  taskStates(): Record<number, TaskState> {
    return Object.fromEntries([...this.tasks].map(([p, t]) => [p, t.state]));
  }

  async start(): Promise<void> {
    // InitProducerId (in the background; tasks wait for it): it aborts what a crash of this instance left open
    this.txn.start();
    await this.consumer.start();
    this.punctuationTimer = setInterval(() => {
      if (!this.txn.accepting || this.stopped) return;
      const now = Date.now();
      for (const t of this.tasks.values()) {
        // one at a time per task: while a commit holds the gate, ticks do not pile up behind it
        if (this.punctuating.has(t)) continue;
        this.punctuating.add(t);
        void this.txn.gate.shared(() => t.punctuateWallClock(now)).finally(() => this.punctuating.delete(t));
      }
    }, 50);
    this.punctuationTimer.unref();
  }

  private async onBatch(batch: FetchedBatch, ctl: BatchControl): Promise<void> {
    const task = this.tasks.get(batch.partition);
    if (!task) {
      // A batch for a partition we have not (or no longer) assigned: leave it unresolved.
      this.consumer.pause([batch.partition]);
      return;
    }
    // no new work while the group is being joined (the generation is not known) or the runner stops: left
    // unresolved, the batch is fetched again
    if (!this.txn.accepting || this.stopped) {
      // kafkajs fetches it again at once: do not spin until its heartbeat learns of the rebalance
      await new Promise((r) => setTimeout(r, 50));
      return;
    }
    await this.txn.gate.shared(async () => {
      if (!this.txn.accepting || this.stopped) return;
      await task.processBatch(batch, ctl);
    });
  }

  private async assign(partitions: number[], memberId: string): Promise<void> {
    if (this.stopped) return;
    this.joined = true;
    const next = new Set(partitions);
    // A new member id means this instance was out of the group (a zombie whose session expired, or a restarted
    // consumer): others may have owned its tasks meanwhile, so none of them is kept; they start again from step 1.
    const rejoined = this.memberId !== undefined && memberId !== this.memberId;
    this.memberId = memberId;
    const revoked = [...this.tasks.keys()].filter((p) => rejoined || !next.has(p));
    // Before a rejoin the transaction was ended (group-generation.ts); a consumer restarted after a crash did not
    // rejoin: its revoked tasks' work in the open transaction is aborted before they close.
    if (revoked.some((p) => this.tasks.get(p)!.inTransaction)) await this.txn.abort(new Error('tasks revoked without a rejoin'));
    for (const p of revoked) {
      const task = this.tasks.get(p)!;
      this.tasks.delete(p);
      this.consumer.pause([p]);
      const closed = task.close().then(() => {
        if (this.closing.get(p) === closed) this.closing.delete(p);
        if (!this.tasks.has(p)) this.janitor.released(p);
      });
      this.closing.set(p, closed);
    }
    for (const p of partitions) {
      const existing = this.tasks.get(p);
      if (existing) continue;
      this.janitor.claimed(p);
      const task = this.createTask(p);
      this.tasks.set(p, task);
      this.consumer.pause([p]);
      // A task of the same partition that is still closing holds the stores' LevelDB locks: start after it.
      void (this.closing.get(p) ?? Promise.resolve()).then(() => task.start());
    }
    this.o.metrics.assignedTasks.set({ processor: this.name }, this.tasks.size);
    this.refreshStateGauge();
    // Sweep only once the group said which tasks are ours: before that every folder would look unowned.
    if (!this.janitorStarted) {
      this.janitorStarted = true;
      this.janitor.start();
    }
  }

  private createTask(partition: number): Task {
    const { topology: t, spec } = this.o;
    return new Task({
      app: t.app,
      spec,
      groupId: this.groupId,
      partition,
      exactlyOnce: t.processing.guarantee === 'exactly_once',
      commitIntervalMs: t.processing.commitIntervalMs,
      maxBufferedRecords: t.processing.maxBufferedRecords,
      taskDir: taskDir(this.o.stateDir, t.app, spec.name, partition),
      topics: this.o.topics,
      txn: this.txn,
      groupOffsets: this.groupOffsets,
      transactionTimeoutMs: t.processing.transactionTimeoutMs,
      fenceDeadWriters: t.processing.fenceDeadWriters,
      openStore: (_s, dir) => LevelDbStore.open(_s.name, dir),
      destroyStore: (dir) => LevelDbStore.destroy(dir),
      reader: this.reader,
      admin: this.o.admin,
      consumer: {
        seek: (topic, p, offset) => this.consumer.seek(topic, p, offset),
        pause: (ps) => this.consumer.pause(ps),
        resume: (ps) => this.consumer.resume(ps),
        commitOffsets: (offsets) => this.consumer.commitOffsets(offsets),
      },
      metrics: this.o.metrics,
      readCache: this.o.readCache,
      log: this.o.log,
      now: Date.now,
      onStateChange: () => this.refreshStateGauge(),
    });
  }

  private refreshStateGauge(): void {
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const t of this.tasks.values()) if (t.state in counts) counts[t.state]++;
    for (const s of TASK_STATES) this.o.metrics.tasksByState.set({ processor: this.name, state: s }, counts[s]);
  }

  /** Stops taking work, commits the open transaction (still a member of the group), stops consuming, closes every task. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.punctuationTimer) clearInterval(this.punctuationTimer);
    this.janitor.stop();
    await this.txn.stop();
    await this.consumer.stop().catch((e: Error) => this.o.log.warn({ event: 'consumer.stop_failed', error: e.message }));
    await Promise.all([...this.tasks.values()].map((t) => t.close()));
    this.tasks.clear();
    await this.reader.close();
    await this.groupOffsets.close();
  }
}
