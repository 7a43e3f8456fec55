/**
 * kafkajs's internal Cluster, for what its public API cannot do: fetch one partition without joining a group
 * (changelog restores), ask ListOffsets for the high watermark (its admin always asks read_committed, which answers
 * the last stable offset), and the task producer's own transactional requests (txn-producer.ts). kafkajs is pinned (2.2.4, its final release); tests cover both uses.
 */
import type { Kafka } from 'kafkajs';

export const READ_UNCOMMITTED = 0;
export const READ_COMMITTED = 1;

export interface KafkaJsBroker {
  fetch(req: {
    replicaId: number;
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: (Record<string, unknown> & { partition: number; lastStableOffset: string })[] }[] }>;
}

export interface KafkaJsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  getNodeIds(): string[];
  /** FindCoordinator (retried by kafkajs), then the coordinator's broker, connected; coordinatorType 0 group, 1 transaction */
  findGroupCoordinator(q: { groupId: string; coordinatorType: number }): Promise<KafkaJsBroker>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(opts: { nodeId: string }): Promise<KafkaJsBroker>;
  findTopicPartitionMetadata(topic: string): { partitionId: number }[];
  /** ListOffsets at the cluster's isolation level: the last stable offset (read_committed) or high watermark */
  fetchTopicsOffset(q: { topic: string; partitions: { partition: number }[]; fromBeginning: boolean }[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

export function createCluster(kafka: Kafka, isolationLevel: typeof READ_UNCOMMITTED | typeof READ_COMMITTED): KafkaJsCluster {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!symbol) throw new Error('kafkajs internals changed: cannot create a cluster (pin kafkajs 2.2.4)');
  const create = (kafka as unknown as Record<symbol, (o: object) => KafkaJsCluster>)[symbol]!;
  return create({ allowAutoTopicCreation: false, isolationLevel, metadataMaxAge: 300000 });
}

export const GROUP_COORDINATOR = 0;
export const TRANSACTION_COORDINATOR = 1;

/**
 * Why kafkajs found no coordinator for a group or transactional id. kafkajs tries FindCoordinator on each broker and,
 * when all fail, throws "Failed to find group coordinator" without their errors — so a missing ACL (the broker answers
 * GROUP_AUTHORIZATION_FAILED or TRANSACTIONAL_ID_AUTHORIZATION_FAILED) looks like an unavailable broker. This asks
 * once more and returns the broker's error, or undefined when the question itself cannot be asked.
 */
export async function coordinatorRefusal(kafka: Kafka, key: string, type: typeof GROUP_COORDINATOR | typeof TRANSACTION_COORDINATOR): Promise<unknown> {
  const cluster = createCluster(kafka, READ_COMMITTED) as KafkaJsCluster & {
    brokerPool: { seedBroker: { findGroupCoordinator(q: { groupId: string; coordinatorType: number }): Promise<unknown> } };
  };
  try {
    await cluster.connect();
    await cluster.brokerPool.seedBroker.findGroupCoordinator({ groupId: key, coordinatorType: type });
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}

/** The broker's refusal when `e` is kafkajs's "no coordinator" and an ACL is what is missing; otherwise `e`. */
export async function explainNoCoordinator(kafka: Kafka, e: unknown, key: string, type: typeof GROUP_COORDINATOR | typeof TRANSACTION_COORDINATOR): Promise<unknown> {
  if ((e as { name?: string })?.name !== 'KafkaJSGroupCoordinatorNotFound') return e;
  const refusal = await coordinatorRefusal(kafka, key, type);
  const t = (refusal as { type?: string } | undefined)?.type ?? '';
  return t.endsWith('_AUTHORIZATION_FAILED') ? refusal : e;
}
