/** A dead-letter record as a test reads it: the error code and message, where it came from, and its original value. */
import { DLQ_HEADERS } from '../runtime/record-handler.ts';
import type { TopicRegistry } from '../runtime/topic-registry.ts';
import { decode } from '../serde/codecs.ts';

export interface OutputRecord<V = unknown> {
  topic: string;
  partition: number;
  key: string | null;
  /** decoded with the topic's codec; undecodable bytes stay a Buffer */
  value: V;
  headers: Record<string, string>;
  timestamp: number;
}

export interface DeadLetter extends OutputRecord<Buffer | null> {
  code: string;
  message: string;
  source: { topic: string; partition: number; offset: string };
  /** the original value decoded with the source topic's codec; its text when it does not decode; null for a tombstone */
  original: unknown;
}

export function asDeadLetter(r: OutputRecord, topics: TopicRegistry): DeadLetter {
  const h = r.headers;
  const bytes = Buffer.isBuffer(r.value) ? r.value : null;
  const sourceTopic = h[DLQ_HEADERS.topic] ?? '';
  let original: unknown = null;
  if (bytes) {
    try {
      original = decode(topics.find(sourceTopic)?.codec ?? 'json', bytes);
    } catch {
      original = bytes.toString('utf8');
    }
  }
  return {
    ...r,
    value: bytes,
    code: h[DLQ_HEADERS.code] ?? '',
    message: h[DLQ_HEADERS.message] ?? '',
    source: { topic: sourceTopic, partition: Number(h[DLQ_HEADERS.partition]), offset: h[DLQ_HEADERS.offset] ?? '' },
    original,
  };
}
