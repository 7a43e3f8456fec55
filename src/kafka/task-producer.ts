/**
 * One producer per task (DESIGN §4): transactionalId `<app>-<processor>-<partition>`, idempotent, acks=-1.
 * init() runs InitProducerId before restore, which fences a zombie holding the same id and completes or aborts its
 * open transaction. The producer is foldstream's own (txn-producer.ts) over kafkajs's Cluster and Broker; this file
 * connects the two. A producer whose commit or abort failed is thrown away by the task, which creates a new one.
 */
import type { Kafka } from 'kafkajs';
import { createCluster, explainNoCoordinator, GROUP_COORDINATOR, READ_UNCOMMITTED, TRANSACTION_COORDINATOR, type KafkaJsCluster } from './kafkajs-cluster.ts';
import { TxnProducer, type TxnBroker, type TxnCluster, type TxnRetryReason } from './txn-producer.ts';
import type { TaskProducer } from './types.ts';

export interface TaskProducerOptions {
  /** set under exactly_once; absent under at_least_once */
  transactionalId?: string;
  transactionTimeoutMs: number;
  /** the consumer group whose offsets the transactions commit (lets AddOffsetsToTxn go out early) */
  groupId?: string;
  /** called each time a transactional request is retried, with the reason (for a metric) */
  onRetry?: (reason: TxnRetryReason) => void;
}

export type { TxnRetryReason };

/** kafkajs's Cluster as the producer's TxnCluster. */
export class KafkaJsTxnCluster implements TxnCluster {
  private readonly cluster: KafkaJsCluster;
  private readonly topics = new Set<string>();

  constructor(private readonly kafka: Kafka) {
    this.cluster = createCluster(kafka, READ_UNCOMMITTED);
  }

  connect(): Promise<void> {
    return this.cluster.connect();
  }

  disconnect(): Promise<void> {
    return this.cluster.disconnect();
  }

  async coordinator(type: 'transaction' | 'group', key: string): Promise<TxnBroker> {
    const coordinatorType = type === 'transaction' ? TRANSACTION_COORDINATOR : GROUP_COORDINATOR;
    try {
      return (await this.cluster.findGroupCoordinator({ groupId: key, coordinatorType })) as unknown as TxnBroker;
    } catch (e) {
      // a missing ACL on the transactional id or group reaches kafkajs as "no coordinator": name it
      throw await explainNoCoordinator(this.kafka, e, key, coordinatorType);
    }
  }

  async leaders(topic: string, partitions: number[]): Promise<Map<number, string>> {
    if (!this.topics.has(topic)) {
      await this.cluster.addMultipleTargetTopics([topic]);
      this.topics.add(topic);
    }
    const find = () => {
      const out = new Map<number, string>();
      for (const [node, ps] of Object.entries(this.cluster.findLeaderForPartitions(topic, partitions))) for (const p of ps) out.set(p, node);
      return out;
    };
    let found = find();
    if (found.size < partitions.length) {
      await this.cluster.refreshMetadata();
      found = find();
    }
    return found;
  }

  async broker(nodeId: string): Promise<TxnBroker> {
    return (await this.cluster.findBroker({ nodeId })) as unknown as TxnBroker;
  }

  async anyBroker(): Promise<TxnBroker> {
    let last: unknown = new Error('no broker known');
    // the broker list comes with the metadata, which kafkajs's connect() does not load
    if (this.cluster.getNodeIds().length === 0) await this.cluster.refreshMetadata();
    for (const nodeId of this.cluster.getNodeIds()) {
      try {
        return await this.broker(nodeId);
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  refreshMetadata(): Promise<void> {
    return this.cluster.refreshMetadata();
  }
}

export function createTaskProducer(kafka: Kafka, opts: TaskProducerOptions): TaskProducer {
  return new TxnProducer(new KafkaJsTxnCluster(kafka), opts);
}
