/**
 * The transactional producer of a processor runner (exactly-once v2, docs/exactly-once.md): transactionalId
 * `<app>-<processor>-<instanceId>`, idempotent, acks=-1. init() runs InitProducerId, which completes or aborts what a
 * crash of this instance left open (and, used by a new owner of a task with a dead writer's id, fences that writer).
 * The producer is foldstream's own (txn-producer.ts) over kafkajs's Cluster and Broker; this file connects the two.
 * A producer whose transaction failed is thrown away by the runner, which creates a new one.
 */
import { createRequire } from 'node:module';
import type { Kafka } from 'kafkajs';
import { createCluster, explainNoCoordinator, GROUP_COORDINATOR, READ_UNCOMMITTED, TRANSACTION_COORDINATOR, type KafkaJsCluster } from './kafkajs-cluster.ts';
import { TxnProducer, type TxnBroker, type TxnCluster, type TxnRetryReason } from './txn-producer.ts';
import { protocolError, sendToBroker, type ProtocolRequest } from './protocol/kafkajs-protocol.ts';
import type { OutgoingRecord, TaskProducer } from './types.ts';

const require = createRequire(import.meta.url);
const apiKeys = require('kafkajs/src/protocol/requests/apiKeys.js') as { AddPartitionsToTxn: number };
const { requests } = require('kafkajs/src/protocol/requests/index.js') as { requests: { AddPartitionsToTxn: unknown } };

/** 55 OPERATION_NOT_ATTEMPTED: said of every partition of a request that failed because of another one */
const OPERATION_NOT_ATTEMPTED = 55;

interface AddPartitionsResponse {
  errors: { topic: string; partitionErrors: { partition: number; errorCode: number }[] }[];
}

/**
 * AddPartitionsToTxn for several partitions at once: kafkajs throws the first partition's error, which is
 * OPERATION_NOT_ATTEMPTED when another partition's was the cause (a topic without WRITE: TOPIC_AUTHORIZATION_FAILED).
 * This throws the error that says why, so the task can name a missing ACL.
 */
async function addPartitionsToTxn(broker: unknown, r: Parameters<TxnBroker['addPartitionsToTxn']>[0]): Promise<unknown> {
  const lookup = (broker as { lookupRequest(apiKey: number, definition: unknown): (r: unknown) => ProtocolRequest<AddPartitionsResponse> }).lookupRequest;
  const request = lookup.call(broker, apiKeys.AddPartitionsToTxn, requests.AddPartitionsToTxn)(r);
  const parse = async (data: AddPartitionsResponse) => {
    const codes = data.errors.flatMap((t) => t.partitionErrors.map((p) => p.errorCode)).filter((c) => c !== 0);
    const cause = codes.find((c) => c !== OPERATION_NOT_ATTEMPTED) ?? codes[0];
    if (cause !== undefined) throw protocolError(cause);
    return data;
  };
  return sendToBroker(broker, { request: request.request, response: { decode: request.response.decode, parse } });
}

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
      const broker = (await this.cluster.findGroupCoordinator({ groupId: key, coordinatorType })) as unknown as TxnBroker;
      if (type === 'group') return broker;
      return {
        initProducerId: (r) => broker.initProducerId(r),
        addPartitionsToTxn: (r) => addPartitionsToTxn(broker, r),
        addOffsetsToTxn: (r) => broker.addOffsetsToTxn(r),
        txnOffsetCommit: (r) => broker.txnOffsetCommit(r),
        endTxn: (r) => broker.endTxn(r),
        produce: (r) => broker.produce(r),
      };
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

/** One transaction holding `records` (an offline tool's step: redrive, replay): committed, or aborted and thrown. */
export async function sendInOneTransaction(producer: TaskProducer, records: OutgoingRecord[]): Promise<void> {
  await producer.begin();
  try {
    await producer.send(records);
    await producer.commit();
  } catch (e) {
    if (producer.inTransaction) await producer.abort().catch(() => undefined);
    throw e;
  }
}
