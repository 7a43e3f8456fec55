/**
 * The processor runner's transactional producer, foldstream's own, over kafkajs's Cluster and Broker (its connections,
 * metadata and request encoders), replacing kafkajs's producer and eosManager. One transactional id per processor
 * runner (exactly-once v2, docs/exactly-once.md); its offsets go in TxnOffsetCommit v3 with the group generation
 * (KIP-447), so a zombie's are refused (GENERATION_FENCED); InitProducerId completes or aborts an open transaction
 * of the same id. The wire:
 *
 * - the transaction and group coordinators are looked up once and cached; looked up again only after a coordinator
 *   error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS) or a connection error;
 * - a send adds all its new partitions to the transaction in ONE AddPartitionsToTxn (and, the first time in a
 *   transaction, AddOffsetsToTxn for the task's group in parallel), then sends ONE Produce per leader broker carrying
 *   every partition that broker leads, each partition a record batch with this producer's own sequence numbers
 *   (idempotent, acks=-1); brokers are written in parallel;
 * - CONCURRENT_TRANSACTIONS (the previous transaction's markers still being written) is retried after 10-20 ms,
 *   then with a growing pause, within a bound;
 * - **a Produce that fails poisons the transaction**: the only way on is abort(), after which the next transaction
 *   starts with a new InitProducerId (a new epoch, sequences from 0). A batch is never sent again with other
 *   sequence numbers, and never sent again at all: the duplicate-batch defect of kafkajs's send path
 *   (docs/reliability.md, anomaly 1) cannot happen by construction;
 * - an EndTxn whose outcome is unknown (the connection failed with it in flight) leaves the producer unusable: the
 *   task throws it away, and the next producer's InitProducerId completes or aborts that transaction.
 *
 * Errors reach the runtime as FoldstreamErrors: PRODUCER_FENCED when another producer took the transactional id,
 * TRANSACTION_FAILED for everything else (the kafkajs error as the cause).
 */
import { FoldstreamError } from '../errors.ts';
import { COORDINATOR_CODES, errorCode, isConnectionError, isFencingError, isGenerationFencingError, wasNotSent } from './errors.ts';
import { partitionKey, planProduce, type PartitionBatch } from './produce-plan.ts';
import { sendToBroker } from './protocol/kafkajs-protocol.ts';
import { txnOffsetCommitV3, type TxnOffsetCommitV3 } from './protocol/txn-offset-commit.ts';
import type { OffsetsGeneration, OutgoingRecord, TaskProducer, TopicPartitionOffset } from './types.ts';

/** Below the broker's default message.max.bytes (1 MiB), leaving room for batch and record overhead. */
export const MAX_PARTITION_BATCH_BYTES = 768 * 1024;

const CONCURRENT_TRANSACTIONS = 51;

/** Why a request was sent again (for the transaction-retries metric). */
export type TxnRetryReason = 'concurrent_transactions' | 'coordinator';

/** The requests the producer sends to one broker: kafkajs's Broker has these methods. */
export interface TxnBroker {
  initProducerId(r: { transactionalId: string | null; transactionTimeout: number }): Promise<{ producerId: string; producerEpoch: number }>;
  addPartitionsToTxn(r: { transactionalId: string; producerId: string; producerEpoch: number; topics: { topic: string; partitions: number[] }[] }): Promise<unknown>;
  addOffsetsToTxn(r: { transactionalId: string; producerId: string; producerEpoch: number; groupId: string }): Promise<unknown>;
  txnOffsetCommit(r: {
    transactionalId: string;
    groupId: string;
    producerId: string;
    producerEpoch: number;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<unknown>;
  /** TxnOffsetCommit v3 (KIP-447, generation-fenced); absent: sent over the broker as kafkajs's (protocol/) */
  txnOffsetCommitV3?(r: TxnOffsetCommitV3): Promise<unknown>;
  endTxn(r: { transactionalId: string; producerId: string; producerEpoch: number; transactionResult: boolean }): Promise<unknown>;
  produce(r: {
    topicData: { topic: string; partitions: { partition: number; firstSequence: number; messages: ProduceMessage[] }[] }[];
    transactionalId: string | null;
    producerId: string;
    producerEpoch: number;
    acks: number;
    timeout: number;
  }): Promise<{ topics: { topicName: string; partitions: { partition: number; errorCode: number; baseOffset: string }[] }[] }>;
}

export interface ProduceMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, string | Buffer>;
  timestamp?: number;
}

/** What the producer needs of the cluster: kafkajs's Cluster behind an adapter (task-producer.ts), a fake in unit tests. */
export interface TxnCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** the coordinator of a transactional id or a group, found with FindCoordinator */
  coordinator(type: 'transaction' | 'group', key: string): Promise<TxnBroker>;
  /** the leader's node id per partition */
  leaders(topic: string, partitions: number[]): Promise<Map<number, string>>;
  broker(nodeId: string): Promise<TxnBroker>;
  /** some broker of the cluster, for an InitProducerId without transactional id */
  anyBroker(): Promise<TxnBroker>;
  refreshMetadata(): Promise<void>;
}

export interface TxnProducerOptions {
  /** set under exactly_once; absent under at_least_once (idempotent only) */
  transactionalId?: string;
  transactionTimeoutMs: number;
  /** the group whose offsets the transactions carry: its AddOffsetsToTxn goes out with the first AddPartitionsToTxn */
  groupId?: string;
  /** each time a request is retried, and why */
  onRetry?: (reason: TxnRetryReason) => void;
  /** how long coordinator requests are retried (coordinator moving, CONCURRENT_TRANSACTIONS); default 30 s */
  retryTimeoutMs?: number;
  /** the broker's ack timeout for a Produce; default 30 s */
  produceTimeoutMs?: number;
  maxBatchBytes?: number;
}

type State =
  | 'new' //           init() not called yet
  | 'ready' //         initialised, no transaction open
  | 'transaction' //   begin() called
  | 'poisoned' //      a request of the open transaction failed: abort() is the only way on
  | 'reinit' //        the next transaction needs a new InitProducerId (after a poisoned one was aborted)
  | 'unusable'; //     fenced, or an EndTxn whose outcome is unknown: throw the producer away

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class TxnProducer implements TaskProducer {
  readonly transactional: boolean;
  private readonly txnId: string | null;
  private state: State = 'new';
  private producerId = '-1';
  private producerEpoch = 0;
  private sequences = new Map<string, number>();
  private txnCoordinator: TxnBroker | undefined;
  private groupCoordinators = new Map<string, TxnBroker>();
  /** partitions added to the open transaction */
  private added = new Set<string>();
  /** groups whose offsets were added (AddOffsetsToTxn) to the open transaction, or are being added */
  private offsetsAdded = new Map<string, Promise<void>>();
  private connected = false;

  constructor(
    private readonly cluster: TxnCluster,
    private readonly o: TxnProducerOptions,
  ) {
    this.txnId = o.transactionalId ?? null;
    this.transactional = this.txnId !== null;
  }

  get inTransaction(): boolean {
    return this.state === 'transaction' || this.state === 'poisoned';
  }

  async init(): Promise<void> {
    if (!this.connected) {
      await this.cluster.connect();
      this.connected = true;
    }
    await this.initProducerId();
  }

  private async initProducerId(): Promise<void> {
    try {
      const r = this.txnId === null
        ? await (await this.cluster.anyBroker()).initProducerId({ transactionalId: null, transactionTimeout: this.o.transactionTimeoutMs })
        : await this.coordinatorRequest('transaction', this.txnId, (b) => b.initProducerId({ transactionalId: this.txnId, transactionTimeout: this.o.transactionTimeoutMs }));
      this.producerId = r.producerId;
      this.producerEpoch = r.producerEpoch;
      this.sequences = new Map();
      this.state = 'ready';
    } catch (e) {
      throw this.fail(e, 'InitProducerId', isFencingError(e) ? 'unusable' : 'reinit');
    }
  }

  async begin(): Promise<void> {
    if (!this.transactional) return;
    await this.readyForWork();
    if (this.state !== 'ready') throw new Error(`begin() with a transaction ${this.state === 'poisoned' ? 'that failed' : 'already'} open`);
    this.added = new Set();
    this.offsetsAdded = new Map();
    this.state = 'transaction';
  }

  /** A producer that must not be used, or needs a new InitProducerId first. */
  private async readyForWork(): Promise<void> {
    if (this.state === 'unusable') throw new FoldstreamError('TRANSACTION_FAILED', 'this task producer is unusable after a fencing or an EndTxn of unknown outcome', { canRetry: true });
    if (this.state === 'new') throw new Error('init() first');
    if (this.state === 'reinit') await this.initProducerId();
  }

  /** Sends records: one Produce per leader broker; returns, per "topic:partition", the offset after the last record. */
  async send(records: OutgoingRecord[]): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    if (this.transactional) {
      if (this.state === 'poisoned') throw new FoldstreamError('TRANSACTION_FAILED', 'send() in a transaction that already failed: abort it', { canRetry: true });
      if (this.state !== 'transaction') throw new Error('send() outside a transaction');
    } else {
      await this.readyForWork();
    }
    if (!records.length) return ends;

    // Leaders, and the partitions new to the transaction, added in one request (with the group's offsets, once).
    let plan;
    try {
      const partitions = new Map<string, Set<number>>();
      for (const r of records) {
        let set = partitions.get(r.topic);
        if (!set) partitions.set(r.topic, (set = new Set()));
        set.add(r.partition);
      }
      const leaders = new Map<string, string>();
      await Promise.all(
        [...partitions].map(async ([topic, set]) => {
          const found = await this.cluster.leaders(topic, [...set]);
          for (const p of set) {
            const node = found.get(p);
            if (node === undefined) throw Object.assign(new Error(`no leader known for ${topic}-${p}`), { type: 'LEADER_NOT_AVAILABLE' });
            leaders.set(partitionKey(topic, p), node);
          }
        }),
      );
      if (this.transactional) await this.addToTransaction(partitions);
      plan = planProduce(records, (t, p) => leaders.get(partitionKey(t, p))!, this.sequences, this.o.maxBatchBytes ?? MAX_PARTITION_BATCH_BYTES);
    } catch (e) {
      throw this.fail(e, 'adding partitions to the transaction', isFencingError(e) ? 'unusable' : this.transactional ? 'poisoned' : 'reinit');
    }

    // From here on the sequences are spent: whatever happens, these batches are never planned again.
    for (const [k, s] of plan.nextSequences) this.sequences.set(k, s);
    const results = await Promise.allSettled([...plan.byBroker].map(([nodeId, requests]) => this.produceTo(nodeId, requests, ends)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failed.length) {
      const fencing = failed.find(isFencingError);
      // leaders may have moved: the next producer should not ask the same brokers
      await this.cluster.refreshMetadata().catch(() => undefined);
      throw this.fail(fencing ?? failed[0], `producing ${records.length} records`, fencing ? 'unusable' : this.transactional ? 'poisoned' : 'reinit');
    }
    return ends;
  }

  /** The Produce requests for one broker, one after the other; the end offset of each partition into `ends`. */
  private async produceTo(nodeId: string, requests: PartitionBatch[][], ends: Map<string, bigint>): Promise<void> {
    const broker = await this.cluster.broker(nodeId);
    for (const batches of requests) {
      const byTopic = new Map<string, { partition: number; firstSequence: number; messages: ProduceMessage[] }[]>();
      for (const b of batches) {
        let list = byTopic.get(b.topic);
        if (!list) byTopic.set(b.topic, (list = []));
        list.push({ partition: b.partition, firstSequence: b.firstSequence, messages: b.records.map(toMessage) });
      }
      const response = await broker.produce({
        topicData: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        transactionalId: this.txnId,
        producerId: this.producerId,
        producerEpoch: this.producerEpoch,
        acks: -1,
        timeout: this.o.produceTimeoutMs ?? 30_000,
      });
      for (const b of batches) {
        const answer = response.topics.find((t) => t.topicName === b.topic)?.partitions.find((p) => p.partition === b.partition);
        // Never assume a write happened: without its acknowledgement the transaction must not commit.
        if (!answer || answer.errorCode !== 0 || BigInt(answer.baseOffset) < 0n) {
          throw new Error(`no acknowledgement for ${b.records.length} records to ${b.topic}-${b.partition}${answer && answer.errorCode !== 0 ? ` (error code ${answer.errorCode})` : ''}`);
        }
        ends.set(partitionKey(b.topic, b.partition), BigInt(answer.baseOffset) + BigInt(b.records.length));
      }
    }
  }

  /** One AddPartitionsToTxn for the partitions not yet in the transaction; AddOffsetsToTxn for the group alongside, once. */
  private async addToTransaction(partitions: Map<string, Set<number>>): Promise<void> {
    const txnId = this.txnId!;
    const topics: { topic: string; partitions: number[] }[] = [];
    const keys: string[] = [];
    for (const [topic, set] of partitions) {
      const fresh = [...set].filter((p) => !this.added.has(partitionKey(topic, p)));
      if (fresh.length) topics.push({ topic, partitions: fresh });
      for (const p of fresh) keys.push(partitionKey(topic, p));
    }
    const group = this.o.groupId;
    const offsets = group !== undefined && !this.offsetsAdded.has(group) ? this.addOffsets(group) : undefined;
    if (topics.length) {
      await this.coordinatorRequest('transaction', txnId, (b) =>
        b.addPartitionsToTxn({ transactionalId: txnId, producerId: this.producerId, producerEpoch: this.producerEpoch, topics }),
      );
      for (const k of keys) this.added.add(k);
    }
    // `offsets` goes on in parallel; its failure is the transaction's too, thrown by sendOffsets() or commit()
    void offsets;
  }

  /** AddOffsetsToTxn for `group`, once per transaction; a failure is kept and thrown where it is awaited. */
  private addOffsets(group: string): Promise<void> {
    const txnId = this.txnId!;
    const done = this.coordinatorRequest('transaction', txnId, (b) =>
      b.addOffsetsToTxn({ transactionalId: txnId, producerId: this.producerId, producerEpoch: this.producerEpoch, groupId: group }),
    ).then(() => undefined);
    done.catch(() => undefined); // awaited by sendOffsets or commit; never an unhandled rejection
    this.offsetsAdded.set(group, done);
    return done;
  }

  /**
   * Adds consumed offsets to the transaction. With `generation` (exactly-once v2), TxnOffsetCommit v3 carries the
   * group generation and member id, so the group coordinator refuses it from a member of an old generation
   * (GENERATION_FENCED); its `metadata` (this producer's transactional id) names the writer to a later owner.
   */
  async sendOffsets(groupId: string, offsets: TopicPartitionOffset[], generation?: OffsetsGeneration): Promise<void> {
    if (this.state === 'poisoned') throw new FoldstreamError('TRANSACTION_FAILED', 'sendOffsets() in a transaction that already failed: abort it', { canRetry: true });
    if (this.state !== 'transaction') throw new Error('sendOffsets outside a transaction');
    const txnId = this.txnId!;
    const byTopic = new Map<string, { partition: number; offset: string; metadata?: string | null }[]>();
    for (const o of offsets) {
      let list = byTopic.get(o.topic);
      if (!list) byTopic.set(o.topic, (list = []));
      list.push({ partition: o.partition, offset: o.offset, ...(generation ? { metadata: txnId } : {}) });
    }
    const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
    const ids = { transactionalId: txnId, groupId, producerId: this.producerId, producerEpoch: this.producerEpoch };
    try {
      await (this.offsetsAdded.get(groupId) ?? this.addOffsets(groupId));
      await this.coordinatorRequest('group', groupId, (b) => {
        if (!generation) return b.txnOffsetCommit({ ...ids, topics: topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map(({ partition, offset }) => ({ partition, offset })) })) });
        const r: TxnOffsetCommitV3 = { ...ids, generationId: generation.generationId, memberId: generation.memberId, groupInstanceId: generation.groupInstanceId ?? null, topics };
        return b.txnOffsetCommitV3 ? b.txnOffsetCommitV3(r) : sendToBroker(b, txnOffsetCommitV3(r));
      });
    } catch (e) {
      throw this.fail(e, 'sending offsets', isFencingError(e) ? 'unusable' : 'poisoned');
    }
  }

  async commit(): Promise<void> {
    if (this.state === 'poisoned') throw new FoldstreamError('TRANSACTION_FAILED', 'commit() of a transaction that failed: abort it', { canRetry: true });
    if (this.state !== 'transaction') return;
    try {
      // an AddOffsetsToTxn still in flight (offsets added, never sent) must be answered before EndTxn
      await Promise.all(this.offsetsAdded.values());
    } catch (e) {
      throw this.fail(e, 'adding offsets to the transaction', isFencingError(e) ? 'unusable' : 'poisoned');
    }
    await this.endTransaction(true);
  }

  async abort(): Promise<void> {
    if (!this.inTransaction) return;
    const poisoned = this.state === 'poisoned';
    await Promise.allSettled(this.offsetsAdded.values());
    await this.endTransaction(false);
    // a failed transaction's sequences are uncertain (a batch may or may not have been written): start a new epoch
    if (poisoned) this.state = 'reinit';
  }

  private async endTransaction(commit: boolean): Promise<void> {
    const txnId = this.txnId!;
    if (this.added.size === 0 && this.offsetsAdded.size === 0) {
      // nothing reached the coordinator: the transaction ends without an EndTxn, as in kafkajs
      this.state = 'ready';
      return;
    }
    try {
      // Retried only on answers that say it was not done (coordinator moved, CONCURRENT_TRANSACTIONS); a connection
      // lost with it in flight leaves the outcome unknown.
      await this.coordinatorRequest('transaction', txnId, (b) =>
        b.endTxn({ transactionalId: txnId, producerId: this.producerId, producerEpoch: this.producerEpoch, transactionResult: commit }),
        { connectionErrorIsUnknownOutcome: true },
      );
      this.state = 'ready';
    } catch (e) {
      throw this.fail(e, commit ? 'EndTxn(commit)' : 'EndTxn(abort)', 'unusable');
    }
  }

  async close(): Promise<void> {
    this.state = 'unusable';
    if (this.connected) await this.cluster.disconnect();
    this.connected = false;
  }

  /**
   * A request to a coordinator, retried while the answer says it was not done: the coordinator moved or is loading
   * (looked up again), CONCURRENT_TRANSACTIONS (after 10-20 ms, then longer), a connection that refused it (it never
   * left), or — unless the outcome of the request would then be unknown — a connection lost with it in flight.
   */
  private async coordinatorRequest<T>(type: 'transaction' | 'group', key: string, fn: (b: TxnBroker) => Promise<T>, o: { connectionErrorIsUnknownOutcome?: boolean } = {}): Promise<T> {
    const deadline = Date.now() + (this.o.retryTimeoutMs ?? 30_000);
    let concurrent = 0;
    let moved = 0;
    for (;;) {
      let broker: TxnBroker;
      try {
        broker = await this.coordinatorOf(type, key);
      } catch (e) {
        if (Date.now() >= deadline || !(isConnectionError(e) || COORDINATOR_CODES.has(errorCode(e) ?? -1))) throw e;
        this.o.onRetry?.('coordinator');
        await sleep(Math.min(50 * 2 ** moved++, 1000));
        continue;
      }
      try {
        return await fn(broker);
      } catch (e) {
        const code = errorCode(e);
        const lost = isConnectionError(e);
        if (Date.now() >= deadline) throw e;
        if (code === CONCURRENT_TRANSACTIONS) {
          this.o.onRetry?.('concurrent_transactions');
          // the previous transaction's markers are being written: that takes a few ms (the Java client waits 20)
          await sleep(concurrent < 10 ? 10 + Math.random() * 10 : Math.min(20 * 2 ** (concurrent - 10), 500));
          concurrent++;
          continue;
        }
        if ((code !== undefined && COORDINATOR_CODES.has(code)) || (lost && (!o.connectionErrorIsUnknownOutcome || wasNotSent(e)))) {
          this.forgetCoordinator(type, key);
          this.o.onRetry?.('coordinator');
          await sleep(Math.min(50 * 2 ** moved++, 1000));
          continue;
        }
        if (lost) this.forgetCoordinator(type, key);
        throw e;
      }
    }
  }

  private async coordinatorOf(type: 'transaction' | 'group', key: string): Promise<TxnBroker> {
    if (type === 'transaction') return (this.txnCoordinator ??= await this.cluster.coordinator('transaction', key));
    let b = this.groupCoordinators.get(key);
    if (!b) this.groupCoordinators.set(key, (b = await this.cluster.coordinator('group', key)));
    return b;
  }

  private forgetCoordinator(type: 'transaction' | 'group', key: string): void {
    if (type === 'transaction') this.txnCoordinator = undefined;
    else this.groupCoordinators.delete(key);
  }

  /** Moves to `next` and turns the error into the FoldstreamError the runtime sees. */
  private fail(e: unknown, what: string, next: State): FoldstreamError {
    if (next !== 'poisoned' || this.inTransaction) this.state = next;
    if (e instanceof FoldstreamError) return e;
    if (isGenerationFencingError(e)) {
      return new FoldstreamError('GENERATION_FENCED', `${what} for ${this.txnId ?? 'an idempotent producer'}: ${describe(e)}`, {
        cause: e,
        hint: 'the consumer group moved to a new generation since this transaction began (a rebalance, or this instance was out of the group): the transaction is aborted and its tasks go back to their committed position',
      });
    }
    if (isFencingError(e)) {
      return new FoldstreamError('PRODUCER_FENCED', `${what} for ${this.txnId ?? 'an idempotent producer'}: ${describe(e)}`, {
        cause: e,
        hint: 'another instance took over this task (it started with the same transactional id); this one stops working on it',
      });
    }
    return new FoldstreamError('TRANSACTION_FAILED', `${what} for ${this.txnId ?? 'an idempotent producer'}: ${describe(e)}`, { cause: e, canRetry: true });
  }
}

function toMessage(r: OutgoingRecord): ProduceMessage {
  const m: ProduceMessage = { key: r.key, value: r.value };
  if (r.headers) m.headers = r.headers;
  if (r.timestamp !== undefined) m.timestamp = r.timestamp;
  return m;
}
