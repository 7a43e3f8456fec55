/**
 * An idempotent, non-transactional producer for records that are not part of a task's transaction: the HTTP command
 * gateway writes each command with it. Connects on the first send.
 */
import type { Kafka, Producer } from 'kafkajs';
import { LazyConnection } from './lazy-connection.ts';
import type { OutgoingRecord, RecordSender } from './types.ts';

class KafkaJsRecordSender implements RecordSender {
  private readonly producer: Producer;
  private readonly connection: LazyConnection;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 } });
    this.connection = new LazyConnection('record sender', () => this.producer.connect(), () => this.producer.disconnect());
  }

  async send(r: OutgoingRecord): Promise<bigint> {
    await this.connection.ensure();
    const meta = await this.producer.send({
      topic: r.topic,
      acks: -1,
      messages: [{ key: r.key, value: r.value, partition: r.partition, ...(r.headers ? { headers: r.headers } : {}) }],
    });
    const m = meta.find((x) => x.topicName === r.topic && x.partition === r.partition);
    const offset = m?.baseOffset ?? m?.offset;
    if (offset === undefined) throw new Error(`no acknowledgement for the record to ${r.topic}-${r.partition}`);
    return BigInt(offset);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

export function createRecordSender(kafka: Kafka): RecordSender {
  return new KafkaJsRecordSender(kafka);
}
