/**
 * What a new owner of a task asks before it processes (exactly-once v2, KIP-447): the group's committed offsets of the
 * task's input partitions with require_stable (OffsetFetch v7), so that offsets a transaction of the previous owner
 * still holds answer UNSTABLE_OFFSET_COMMIT instead of an older offset; and, when that previous owner is dead, the
 * end of its hanging transaction at once: InitProducerId with its transactional id (named by the last position marker
 * of the task's changelogs, or by the metadata of its last committed offsets) aborts it and fences its producer.
 */
import type { Admin, Kafka } from 'kafkajs';
import { isConnectionError, isCoordinatorError } from './errors.ts';
import { sendToBroker } from './protocol/kafkajs-protocol.ts';
import { offsetFetchV7, UNSTABLE_OFFSET_COMMIT } from './protocol/offset-fetch.ts';
import { KafkaJsTxnCluster } from './task-producer.ts';
import type { TxnBroker } from './txn-producer.ts';
import { TxnProducer } from './txn-producer.ts';
import { decodeUserData } from './task-assigner.ts';
import type { GroupOffsets, StableOffsets } from './types.ts';

export class KafkaJsGroupOffsets implements GroupOffsets {
  private readonly cluster: KafkaJsTxnCluster;
  private connected: Promise<void> | undefined;
  private coordinators = new Map<string, TxnBroker>();
  /** closed by the runner's stop: a task's last poll still in flight must not connect again */
  private closed = false;
  private admin: Promise<Admin> | undefined;

  constructor(private readonly kafka: Kafka) {
    this.cluster = new KafkaJsTxnCluster(kafka);
  }

  async stableOffsets(groupId: string, topics: string[], partition: number, requireStable = true): Promise<StableOffsets> {
    if (this.closed) throw new Error('the group offsets reader is closed (the runner stopped)');
    await (this.connected ??= this.cluster.connect());
    if (this.closed) {
      await this.cluster.disconnect().catch(() => undefined);
      throw new Error('the group offsets reader is closed (the runner stopped)');
    }
    let broker = this.coordinators.get(groupId);
    try {
      broker ??= await this.cluster.coordinator('group', groupId);
      this.coordinators.set(groupId, broker);
      const r = await sendToBroker(broker, offsetFetchV7({ groupId, topics: topics.map((topic) => ({ topic, partitions: [partition] })), requireStable }));
      const out: StableOffsets = { unstable: false, offsets: {} };
      for (const t of r.topics) {
        for (const p of t.partitions) {
          if (p.partition !== partition) continue;
          if (p.errorCode === UNSTABLE_OFFSET_COMMIT) out.unstable = true;
          else if (p.errorCode !== 0) throw Object.assign(new Error(`OffsetFetch ${t.topic}-${partition}: error code ${p.errorCode}`), { code: p.errorCode });
          else out.offsets[t.topic] = { ...(p.offset >= 0n ? { offset: p.offset.toString() } : {}), metadata: p.metadata };
        }
      }
      return out;
    } catch (e) {
      if (isCoordinatorError(e) || isConnectionError(e)) this.coordinators.delete(groupId);
      throw e;
    }
  }

  async abortTransactionOf(transactionalId: string, transactionTimeoutMs: number): Promise<void> {
    if (this.closed) return;
    const producer = new TxnProducer(new KafkaJsTxnCluster(this.kafka), { transactionalId, transactionTimeoutMs });
    try {
      await producer.init();
    } finally {
      await producer.close().catch(() => undefined);
    }
  }

  async memberInstanceIds(groupId: string): Promise<Set<string>> {
    if (this.closed) throw new Error('the group offsets reader is closed (the runner stopped)');
    const admin = await (this.admin ??= (async () => {
      const a = this.kafka.admin({ retry: { retries: 2 } });
      await a.connect();
      return a;
    })().catch((e: unknown) => {
      this.admin = undefined;
      throw e;
    }));
    const { groups } = await admin.describeGroups([groupId]);
    return new Set((groups[0]?.members ?? []).map((m) => decodeUserData({ memberId: m.memberId, memberMetadata: m.memberMetadata }).instanceId));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.admin) await this.admin.then((a) => a.disconnect(), () => undefined).catch(() => undefined);
    this.admin = undefined;
    if (this.connected) await this.connected.then(() => this.cluster.disconnect(), () => undefined).catch(() => undefined);
    this.connected = undefined;
  }
}
