/**
 * An idempotent, non-transactional producer for records that are not part of a task's transaction: the HTTP command
 * gateway writes each command with it. Connects on the first send.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { OutgoingRecord, RecordSender } from './types.ts';

class KafkaJsRecordSender implements RecordSender {
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 } });
  }

  async send(r: OutgoingRecord): Promise<bigint> {
    this.connected ??= this.producer.connect().catch((e: unknown) => {
      this.connected = undefined;
      throw e;
    });
    await this.connected;
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
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = undefined;
  }
}

export function createRecordSender(kafka: Kafka): RecordSender {
  return new KafkaJsRecordSender(kafka);
}
