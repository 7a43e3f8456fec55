/**
 * The small interfaces the runtime uses to talk to Kafka. kafkajs implements them in this folder; another client
 * (for example one with KIP-447 support) can be added as a second implementation without touching runtime/.
 */

export type RecordHeaders = Record<string, string | Buffer>;

export interface FetchedRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string | undefined>;
}

export interface FetchedBatch {
  topic: string;
  partition: number;
  /** the offset the fetch asked for: where the consumer's position was */
  fetchedOffset: string;
  highWatermark: string;
  /**
   * The offset of the last record the fetch covered, counting records the consumer filtered out (transaction
   * markers, aborted records); at or after the last offset in `records`. The consumer resumes after it.
   */
  lastOffset: string;
  records: FetchedRecord[];
}

/** What a batch handler may do with the consumer while it holds the batch. */
export interface BatchControl {
  /** Heartbeats when due; throws when the group is rebalancing (then return soon). */
  heartbeat(): Promise<void>;
  /** Moves the consumer past `offset` (after the transaction that consumed it committed). */
  resolveOffset(offset: string): void;
  /** The consumer is stopping, or the partition was sought: stop early. */
  shouldStop(): boolean;
}

export interface OutgoingRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeaders;
  /** ms since the epoch */
  timestamp?: number;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** One task's producer: transactional under exactly_once, idempotent (no transactions) under at_least_once. */
/** The consumer group generation a transaction's offsets are committed under (KIP-447). */
export interface OffsetsGeneration {
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
}

export interface TaskProducer {
  readonly transactional: boolean;
  /** Connects and runs InitProducerId: fences zombies and completes or aborts their open transaction. */
  init(): Promise<void>;
  begin(): Promise<void>;
  readonly inTransaction: boolean;
  /** Sends records; returns, per "topic:partition", the offset after the last record sent. */
  send(records: OutgoingRecord[]): Promise<Map<string, bigint>>;
  /**
   * Adds consumed offsets (next offset to read) to the transaction; with `generation`, fenced by the consumer group
   * generation (TxnOffsetCommit v3, KIP-447).
   */
  sendOffsets(groupId: string, offsets: TopicPartitionOffset[], generation?: OffsetsGeneration): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  close(): Promise<void>;
}

/** Reads one partition of a (changelog) topic, read_committed, from an offset to its end; returns the end offset. */
export interface PartitionReader {
  read(topic: string, partition: number, fromOffset: bigint, onRecords: (records: FetchedRecord[]) => Promise<void>): Promise<bigint>;
  close(): Promise<void>;
}

/** The committed offsets of one task's input partitions, asked with require_stable (OffsetFetch v7). */
export interface StableOffsets {
  /** some partition's offsets are held by a transaction that has not ended (UNSTABLE_OFFSET_COMMIT) */
  unstable: boolean;
  /** per topic, when stable: the committed offset (absent: none) and its metadata (the writer's transactional id) */
  offsets: Record<string, { offset?: string; metadata: string | null }>;
}

/** What a new owner of a task asks of the group and the transaction coordinator (exactly-once v2). */
export interface GroupOffsets {
  /** `requireStable` false: the last committed offsets even while a transaction holds newer ones (their metadata names the writer) */
  stableOffsets(groupId: string, topics: string[], partition: number, requireStable?: boolean): Promise<StableOffsets>;
  /** InitProducerId with another writer's transactional id: aborts its open transaction and fences it */
  abortTransactionOf(transactionalId: string, transactionTimeoutMs: number): Promise<void>;
  /** the instance ids of the group's members now (the userData they joined with) */
  memberInstanceIds(groupId: string): Promise<Set<string>>;
  close(): Promise<void>;
}

export interface OffsetsAdmin {
  /**
   * Last stable offset per partition: the end a read_committed reader can reach (kafkajs's admin always asks with
   * isolation READ_COMMITTED, so this is not the high watermark while a transaction is open).
   */
  endOffsets(topic: string): Promise<Map<number, bigint>>;
  /** High watermark per partition: the end of the log, records of transactions still open included. */
  highWatermarks(topic: string): Promise<Map<number, bigint>>;
  /** The first offset still in the log per partition (records before it were deleted by retention). */
  startOffsets(topic: string): Promise<Map<number, bigint>>;
  /** Committed offsets of a group per partition of a topic (absent: none). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>>;
  partitionCount(topic: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Writes single records outside any transaction (idempotent): the command gateway's producer. */
export interface RecordSender {
  /** Sends one record to its explicit partition; returns its offset once acknowledged by all in-sync replicas. */
  send(record: OutgoingRecord): Promise<bigint>;
  close(): Promise<void>;
}

/**
 * What the Kafka clients report for the runtime's metrics (runtime/metrics.ts), so that src/kafka/ needs no
 * prom-client and the runtime no kafkajs. Whatever sends the transactional requests reports its retries here.
 */
export interface KafkaObserver {
  /**
   * A transactional request is sent again: `concurrent_transactions` when the coordinator was still completing the
   * previous transaction of the same transactional id (CONCURRENT_TRANSACTIONS), `other` for any other reason.
   */
  transactionRetry(reason: 'concurrent_transactions' | 'other'): void;
}
