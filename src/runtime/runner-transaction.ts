/**
 * Exactly-once v2 (KIP-447) for one processor runner — the role of Kafka Streams' stream thread. All the steps in one
 * place (docs/exactly-once.md):
 *
 * 1. One transactional producer per runner, transactionalId `<app>-<processor>-<instanceId>`. The instance id lives in
 *    the state directory, so an instance restarted after kill -9 uses the same id and its InitProducerId (start())
 *    aborts the transaction the crash left open at once.
 * 2. One transaction per commit interval covering every task of the runner: tasks hand their outputs to send() while
 *    they process; commit() runs on a timer (commitIntervalMs, so low load does not wait for a batch) or when a task
 *    sees more than maxBufferedRecords records processed since the last commit. The commit runs exclusive of task work
 *    (gate.ts): per task with work in it, its changelog records and position marker (naming this transactional id);
 *    then the produce; ONE TxnOffsetCommit v3 for every task's input partitions, carrying the group generation and
 *    member id captured when the transaction began; EndTxn; only then each task's LevelDB apply.
 * 3. Generation fencing: a transaction never mixes generations. Before kafkajs joins the group again
 *    (group-generation.ts) the open transaction is committed under the generation it began in, or aborted; no new
 *    work starts until the join told the new generation. A commit the group coordinator refuses (a zombie: paused
 *    past its session timeout) is aborted: GENERATION_FENCED.
 * 4. Abort: every task with work in the transaction drops its buffered writes and outputs and goes back to its
 *    committed position (it is re-initialised: restore from its committed store, seek back); the producer starts a
 *    new epoch if its transaction failed, or a new producer is made if it was fenced or its EndTxn outcome is unknown.
 * 5. A new owner of a task waits for the previous writer's transaction before it processes: task.ts, waitForStable().
 */
import { FoldstreamError, errorMessage } from '../errors.ts';
import { authorizationDenied } from '../kafka/errors.ts';
import type { OffsetsGeneration, OutgoingRecord, TaskProducer, TopicPartitionOffset } from '../kafka/types.ts';
import type { Logger } from '../processors/types.ts';
import { Gate } from './gate.ts';
import type { RuntimeMetrics, CommitPhase } from './metrics.ts';

/** What a task contributes to one commit. */
export interface TaskCommit {
  records: OutgoingRecord[];
  offsets: TopicPartitionOffset[];
  /** called once the transaction committed: LevelDB apply, position; never throws */
  committed(ends: Map<string, bigint>): Promise<void>;
}

/** A task as the runner's transaction sees it. */
export interface TxnParticipant {
  readonly partition: number;
  /** has work (records processed, outputs sent, writes buffered) in the open transaction */
  readonly inTransaction: boolean;
  /** its part of the commit (its position marker names `writerId`), or undefined when it has nothing in the transaction */
  prepareCommit(writerId: string | undefined): TaskCommit | undefined;
  /** the transaction was aborted: drop what it buffered and go back to the committed position */
  aborted(): void;
}

export interface RunnerTransactionOptions {
  processor: string;
  groupId: string;
  exactlyOnce: boolean;
  /** `<app>-<processor>-<instanceId>` under exactly_once */
  transactionalId: string | undefined;
  /** `<app>-<processor>-`: what every runner's transactional id of this processor starts with, the instance id after it */
  transactionalIdPrefix?: string;
  commitIntervalMs: number;
  maxBufferedRecords: number;
  createProducer(): TaskProducer;
  participants(): Iterable<TxnParticipant>;
  /** at_least_once: commit consumed offsets after the state is written */
  commitOffsets(offsets: TopicPartitionOffset[]): Promise<void>;
  metrics: RuntimeMetrics;
  log: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RunnerTransaction {
  readonly gate = new Gate();
  private producer: TaskProducer | undefined;
  private producerReady: Promise<TaskProducer> | undefined;
  /** the generation of the group now; undefined while (re)joining: no new work starts */
  private generation: OffsetsGeneration | undefined;
  /** the generation the open transaction began in */
  private txnGeneration: OffsetsGeneration | undefined;
  private processed = 0;
  private openedAt = 0;
  private open = false;
  /** sends of the open transaction, one after the other (a producer's sends must not overlap) */
  private sending: Promise<unknown> = Promise.resolve();
  private sendFailed: unknown;
  /** topics the open transaction wrote or tried to (to name a missing ACL) */
  private written = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** previous writers fenced by a task of this runner since the last join (whether one is dead is asked per generation) */
  private readonly fencedWriters = new Set<string>();

  constructor(private readonly o: RunnerTransactionOptions) {}

  get transactionalId(): string | undefined {
    return this.o.transactionalId;
  }

  /** New work may start: the group told its generation (under exactly_once) and the runner is not stopping. */
  get accepting(): boolean {
    return !this.stopped && (!this.o.exactlyOnce || this.generation !== undefined);
  }

  /**
   * The commit timer, and InitProducerId in the background (it aborts what a crash of this instance left open; tasks
   * wait for it: ready()). A producer that cannot start (a missing ACL) is retried and said why, as tasks are.
   */
  start(): void {
    void this.ensureProducer().catch(() => undefined);
    this.timer = setInterval(() => {
      if (this.open && !this.stopped && Date.now() - this.openedAt >= this.o.commitIntervalMs) void this.commit();
    }, Math.max(5, Math.min(50, Math.floor(this.o.commitIntervalMs / 4))));
    this.timer.unref();
  }

  /** The instance id in another runner's transactional id of this processor, if it is one. */
  writerInstance(transactionalId: string): string | undefined {
    const prefix = this.o.transactionalIdPrefix;
    if (!prefix || transactionalId === this.o.transactionalId || !transactionalId.startsWith(prefix)) return undefined;
    return transactionalId.slice(prefix.length);
  }

  claimFencing(transactionalId: string): boolean {
    if (this.fencedWriters.has(transactionalId)) return false;
    this.fencedWriters.add(transactionalId);
    return true;
  }

  /** Resolves once the runner's producer is initialised. */
  async ready(): Promise<void> {
    await this.ensureProducer();
  }

  /** The producer, made and initialised if there is none (retried until it works or the runner stops). */
  private ensureProducer(): Promise<TaskProducer> {
    if (this.producer) return Promise.resolve(this.producer);
    return (this.producerReady ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        const p = this.o.createProducer();
        try {
          await p.init();
          // the runner stopped while this producer started: nobody else would close it (the catch below does)
          if (this.stopped) throw new Error('the processor runner stopped');
          this.producer = p;
          return p;
        } catch (e) {
          await p.close().catch(() => undefined);
          if (this.stopped) throw e;
          const denied = this.denied(e, []);
          this.o.log.warn({
            event: 'runner.producer_init_failed',
            processor: this.o.processor,
            transactionalId: this.o.transactionalId,
            error: errorMessage(e),
            ...(denied ? { code: 'KAFKA_AUTHORIZATION_FAILED', denied, hint: 'grant the ACLs `foldstream describe --acls` prints' } : {}),
          });
          await sleep(Math.min(200 * 2 ** attempt, 5_000));
        }
      }
    })().finally(() => (this.producerReady = undefined)));
  }

  /** The group is about to be joined again: end the open transaction under its generation. Never throws. */
  async beforeRejoin(): Promise<void> {
    this.generation = undefined;
    await this.commit('rejoin');
  }

  joined(g: OffsetsGeneration): void {
    this.generation = g;
    this.fencedWriters.clear();
  }

  /** A task processed `n` records into the open transaction. */
  recordsProcessed(n: number): void {
    this.markOpen();
    this.processed += n;
  }

  /** The transaction begins with its first work: it belongs to the generation of that moment. */
  private markOpen(): void {
    if (this.open) return;
    this.open = true;
    this.openedAt = Date.now();
    this.txnGeneration = this.generation;
  }

  /** The open transaction is due: the bound on buffered records reached, or the commit interval passed. */
  get due(): boolean {
    return this.open && (this.processed >= this.o.maxBufferedRecords || Date.now() - this.openedAt >= this.o.commitIntervalMs);
  }

  /** Sends outputs of a task inside the open transaction, after the sends before it. */
  async send(records: OutgoingRecord[]): Promise<void> {
    if (!records.length) return;
    this.markOpen();
    for (const r of records) this.written.add(r.topic);
    const done = this.sending.then(async () => {
      if (this.sendFailed) return;
      const p = await this.begin();
      await p.send(records);
    });
    this.sending = done.catch((e: unknown) => (this.sendFailed ??= e));
    await done;
  }

  private async begin(): Promise<TaskProducer> {
    const p = await this.ensureProducer();
    if (this.o.exactlyOnce && !p.inTransaction) {
      this.txnGeneration ??= this.generation;
      if (!this.txnGeneration) throw new FoldstreamError('GENERATION_FENCED', 'a transaction cannot begin while the group is being joined', { canRetry: true });
      await p.begin();
    }
    return p;
  }

  /**
   * Commits the open transaction (exclusive of task work). Called by the timer, by a task that found it due (inside its
   * batch: withCommit), before a rejoin, and at stop. On any failure the transaction is aborted. Never throws.
   */
  commit(why: 'timer' | 'rejoin' | 'task' | 'stop' = 'timer'): Promise<void> {
    return this.gate.exclusive(() => this.commitExclusive(why));
  }

  /** For a task inside its shared work: lets the commit run, then takes its share back. */
  async commitFromTask(): Promise<void> {
    this.gate.releaseShared();
    try {
      await this.commit('task');
    } finally {
      await this.gate.acquireShared();
    }
  }

  /** For a task inside its shared work that failed mid-transaction: aborts the runner's transaction. */
  async abortFromTask(cause: unknown): Promise<void> {
    this.gate.releaseShared();
    try {
      await this.gate.exclusive(() => this.abortExclusive(cause));
    } finally {
      await this.gate.acquireShared();
    }
  }

  /** Aborts the open transaction (a task of it is revoked or closed without a rejoin). Never throws. */
  abort(cause: unknown): Promise<void> {
    return this.gate.exclusive(() => this.abortExclusive(cause));
  }

  private phase(name: CommitPhase, since: number): number {
    const now = performance.now();
    this.o.metrics.commitPhase.observe({ processor: this.o.processor, phase: name }, (now - since) / 1000);
    return now;
  }

  private async commitExclusive(why: string): Promise<void> {
    const t0 = performance.now();
    const { metrics, processor, exactlyOnce, groupId } = this.o;
    try {
      await this.sending;
      if (this.sendFailed) throw this.sendFailed;
      const parts: TaskCommit[] = [];
      for (const t of this.o.participants()) {
        const c = t.prepareCommit(this.o.transactionalId);
        if (c) parts.push(c);
      }
      const producer = this.producer;
      if (!parts.length && !producer?.inTransaction) {
        this.reset();
        return;
      }
      const records = parts.flatMap((c) => c.records);
      for (const r of records) this.written.add(r.topic);
      const offsets = parts.flatMap((c) => c.offsets);
      let at = performance.now();
      const p = await this.begin();
      const ends = await p.send(records);
      at = this.phase('produce', at);
      if (exactlyOnce) {
        // every transaction carries its offsets, fenced by the generation it began in: a zombie's is refused
        if (offsets.length) {
          await p.sendOffsets(groupId, offsets, this.txnGeneration);
          at = this.phase('offsets', at);
        }
        await p.commit();
        at = this.phase('end_transaction', at);
      }
      // Committed: now, and only now, the state goes to LevelDB.
      for (const c of parts) await c.committed(ends);
      at = this.phase('leveldb_apply', at);
      if (!exactlyOnce && offsets.length) await this.o.commitOffsets(offsets);
      metrics.transactions.inc({ processor, result: 'committed' });
      metrics.commitLatency.observe({ processor }, (performance.now() - t0) / 1000);
      this.reset();
    } catch (e) {
      await this.abortExclusive(e, why);
    }
  }

  private reset(): void {
    this.written = new Set();
    this.open = false;
    this.processed = 0;
    this.sendFailed = undefined;
    this.sending = Promise.resolve();
    this.txnGeneration = undefined;
  }

  /** The resource an ACL is missing for, when that is why `e` happened; `topics`: what the transaction wrote. */
  private denied(e: unknown, topics: string[]): string | undefined {
    switch (authorizationDenied(e)) {
      case undefined:
        return undefined;
      case 'transactionalId':
        return `transactional id ${this.o.transactionalId ?? '(none)'} (WRITE)`;
      case 'group':
        return `consumer group ${this.o.groupId} (READ)`;
      case 'cluster':
        return 'the cluster';
      case 'topic':
        return `topic ${topics.length ? topics.join(' or ') : '(unknown)'} (WRITE: the transaction of processor ${this.o.processor})`;
    }
  }

  private async abortExclusive(cause: unknown, why = 'task'): Promise<void> {
    const { metrics, processor } = this.o;
    const denied = this.denied(cause, [...this.written]);
    const code = denied ? 'KAFKA_AUTHORIZATION_FAILED' : cause instanceof FoldstreamError ? cause.code : 'TRANSACTION_FAILED';
    const hadWork = this.open || this.producer?.inTransaction;
    await this.sending.catch(() => undefined);
    for (const t of this.o.participants()) if (t.inTransaction) t.aborted();
    this.reset();
    // The producer is thrown away after any failed transaction, as a task's was: the next one's InitProducerId bumps
    // the epoch, which ends a transaction whose EndTxn outcome is unknown, and starts its sequences from 0.
    const p = this.producer;
    this.producer = undefined;
    if (p) {
      if (p.inTransaction) await p.abort().catch(() => undefined);
      await p.close().catch(() => undefined);
    }
    // the group moved on: no new work until kafkajs has joined again (its heartbeat learns it too, and rejoins)
    if (code === 'GENERATION_FENCED') this.generation = undefined;
    if (hadWork) {
      metrics.transactions.inc({ processor, result: 'aborted' });
      this.o.log.warn({
        event: 'runner.transaction_aborted',
        code,
        processor,
        transactionalId: this.o.transactionalId,
        during: why,
        error: errorMessage(cause),
        ...(denied ? { denied, hint: 'grant the ACLs `foldstream describe --acls` prints' } : {}),
      });
    }
  }

  /** Commits what is open, then closes the producer. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.commit('stop');
    this.stopped = true;
    // a producer still starting closes itself when its init returns (ensureProducer)
    await this.producerReady?.catch(() => undefined);
    await this.gate.exclusive(async () => {
      const p = this.producer;
      this.producer = undefined;
      if (p) {
        if (p.inTransaction) await p.abort().catch(() => undefined);
        await p.close().catch(() => undefined);
      }
    });
  }
}
