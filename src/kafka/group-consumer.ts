/**
 * The consumer of one processor's group (`<app>-<processor>`), over kafkajs:
 * - autoCommit off and eachBatchAutoResolve off: offsets only move inside transactions (or, under at_least_once, by
 *   commitOffsets after the state is written); with autoCommit off kafkajs's seek does not commit either;
 * - read_committed;
 * - the co-partitioned sticky assigner;
 * - tasks learn of their partitions from GROUP_JOIN; there is no revoke callback in kafkajs, so the runtime never
 *   keeps a transaction open after the batch that started it.
 * The batch handler must not throw (a throw makes kafkajs leave and rejoin the group); errors it does not handle are
 * logged and the partition is sought back so nothing is skipped.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { FoldstreamError } from '../errors.ts';
import type { Logger } from '../processors/types.ts';
import { authorizationDenied, retryOnCoordinatorError } from './errors.ts';
import { installGenerationHooks, withGenerationHooks, type GroupGeneration } from './group-generation.ts';
import { explainNoCoordinator, GROUP_COORDINATOR } from './kafkajs-cluster.ts';
import { fencedInstance, withStaticMembership, type StaticMembershipOptions } from './static-membership.ts';
import { coPartitionedAssigner, type MemberUserData } from './task-assigner.ts';
import type { BatchControl, FetchedBatch, TopicPartitionOffset } from './types.ts';

export interface GroupConsumerOptions {
  groupId: string;
  topics: string[];
  readCommitted: boolean;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  partitionsConsumedConcurrently: number;
  userData: () => MemberUserData;
  /** after every rebalance: the tasks (partition numbers) this member now owns, and its member id */
  onAssigned: (tasks: number[], memberId: string) => void;
  onRebalancing?: () => void;
  /** before kafkajs joins the group again (not its first join): awaited; never throws (group-generation.ts) */
  beforeRejoin?: () => Promise<void>;
  /** the generation id and member id after every join */
  onGeneration?: (g: GroupGeneration) => void;
  onBatch: (batch: FetchedBatch, ctl: BatchControl) => Promise<void>;
  /** join as a static member (static-membership.ts) */
  staticMembership?: Omit<StaticMembershipOptions, 'log'>;
  /** another instance took this static member's place: the consumer stopped for good */
  onFenced?: (e: FoldstreamError) => void;
  log: Logger;
}

installGenerationHooks();

export class GroupConsumer {
  private consumer: Consumer;
  private stopping = false;
  /** fenced for good (static membership): kafkajs's consumer is gone, nothing to pause or resume */
  private stopped = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: GroupConsumerOptions,
  ) {
    this.consumer = this.create();
  }

  private create(): Consumer {
    const o = this.opts;
    const consumer = this.kafka.consumer({
      groupId: o.groupId,
      partitionAssigners: [
        withGenerationHooks(
          o.staticMembership
            ? withStaticMembership(coPartitionedAssigner(o.userData), { ...o.staticMembership, log: o.log })
            : coPartitionedAssigner(o.userData),
          {
            beforeRejoin: () => o.beforeRejoin?.() ?? Promise.resolve(),
            joined: (g) => o.onGeneration?.(g),
          },
        ),
      ],
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      rebalanceTimeout: o.rebalanceTimeoutMs,
      readUncommitted: !o.readCommitted,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      const tasks = new Set<number>();
      for (const t of o.topics) for (const p of assignment[t] ?? []) tasks.add(p);
      o.log.info({ event: 'group.joined', group: o.groupId, member: e.payload.memberId, leader: e.payload.isLeader, tasks: [...tasks].sort((a, b) => a - b) });
      o.onAssigned([...tasks].sort((a, b) => a - b), e.payload.memberId);
    });
    consumer.on(consumer.events.REBALANCING, () => {
      o.log.info({ event: 'group.rebalancing', group: o.groupId });
      o.onRebalancing?.();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const error = e.payload.error;
      const fenced = fencedInstance(error, o.groupId, o.staticMembership?.groupInstanceId);
      if (fenced) {
        // rejoining would take the place back and fence the other instance, and so on: stop here
        o.log.error({ event: 'consumer.fenced_instance', group: o.groupId, code: fenced.code, error: fenced.describe() });
        this.stopped = true;
        o.onAssigned([], '');
        o.onFenced?.(fenced);
        return;
      }
      const log = (denied: ReturnType<typeof authorizationDenied>) =>
        o.log.warn({
          event: 'consumer.crash',
          group: o.groupId,
          error: error?.message,
          restart: e.payload.restart,
          ...(denied === 'group' ? { code: 'KAFKA_AUTHORIZATION_FAILED', denied: `consumer group ${o.groupId} (READ)` } : {}),
          ...(denied === 'topic' ? { code: 'KAFKA_AUTHORIZATION_FAILED', denied: `topic ${o.topics.join(' or ')} (READ: the group's inputs)` } : {}),
        });
      if (error?.name !== 'KafkaJSGroupCoordinatorNotFound') return log(authorizationDenied(error));
      // a missing ACL on the group reaches kafkajs as "no coordinator": ask why before saying what happened
      void explainNoCoordinator(this.kafka, error, o.groupId, GROUP_COORDINATOR).then(
        (why) => log(authorizationDenied(why)),
        () => log(authorizationDenied(error)),
      );
      if (!e.payload.restart && !this.stopping) {
        // kafkajs gave up (non-retriable error): start a fresh consumer so the processor keeps running.
        this.consumer = this.create();
        o.onAssigned([], '');
        setTimeout(() => void this.start().catch((err: Error) => o.log.error({ event: 'consumer.restart_failed', error: err.message })), 1000);
      }
    });
    return consumer;
  }

  async start(): Promise<void> {
    const o = this.opts;
    await this.consumer.connect();
    for (const topic of o.topics) await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
      eachBatch: async (payload: EachBatchPayload) => {
        const { batch } = payload;
        const fetched: FetchedBatch = {
          topic: batch.topic,
          partition: batch.partition,
          fetchedOffset: String((batch as unknown as { fetchedOffset: string }).fetchedOffset),
          highWatermark: batch.highWatermark,
          lastOffset: batch.lastOffset(),
          records: batch.messages.map((m) => ({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            timestamp: Number(m.timestamp),
            key: m.key ?? null,
            value: m.value ?? null,
            headers: (m.headers ?? {}) as Record<string, Buffer | string | undefined>,
          })),
        };
        const ctl: BatchControl = {
          heartbeat: () => payload.heartbeat(),
          resolveOffset: (offset) => payload.resolveOffset(offset),
          shouldStop: () => !payload.isRunning() || payload.isStale(),
        };
        try {
          await o.onBatch(fetched, ctl);
        } catch (e) {
          // Never let kafkajs see a throw: it would leave the group. Re-read the batch instead.
          o.log.error({ event: 'batch.unhandled_error', group: o.groupId, topic: batch.topic, partition: batch.partition, error: (e as Error).message });
          this.seek(batch.topic, batch.partition, fetched.fetchedOffset);
        }
      },
    });
  }

  /** Next fetch of this partition starts at `offset` (does not commit: autoCommit is off). */
  seek(topic: string, partition: number, offset: string): void {
    try {
      this.consumer.seek({ topic, partition, offset });
    } catch (e) {
      this.opts.log.warn({ event: 'consumer.seek_failed', topic, partition, offset, error: (e as Error).message });
    }
  }

  pause(partitions: number[]): void {
    if (partitions.length === 0 || this.stopped) return;
    this.consumer.pause(this.opts.topics.map((topic) => ({ topic, partitions })));
  }

  resume(partitions: number[]): void {
    if (partitions.length === 0 || this.stopped) return;
    this.consumer.resume(this.opts.topics.map((topic) => ({ topic, partitions })));
  }

  /** at_least_once only: commit consumed offsets after the state is durable. */
  async commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    await retryOnCoordinatorError(() => this.consumer.commitOffsets(offsets));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer.disconnect();
  }
}
