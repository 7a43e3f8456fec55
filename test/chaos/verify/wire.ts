/**
 * What docs/wire-formats.md says foldstream writes, restated for the verifier (it must not import src/): topic names,
 * dead-letter headers, changelog records and the murmur2 partition of a key.
 *
 * Part of the chaos verifier: imports only Node, kafkajs and msgpackr, nothing from src/.
 */
import kafkajs from 'kafkajs';
import { Unpackr } from 'msgpackr';
import type { VRecord } from './read-topics.ts';

export const changelogName = (app: string, processor: string, store: string) => `${app}-${processor}-${store}-changelog`;
export const dlqName = (app: string, processor: string) => `${app}-${processor}-dlq`;
export const groupName = (app: string, processor: string) => `${app}-${processor}`;
/** A projection with `groupBy`: the topic its first stage writes and its second stage `<processor>-group` reads. */
export const repartitionName = (app: string, processor: string) => `${app}-${processor}-repartition`;
/** Runtime name of a groupBy projection's second stage (its consumer group, changelogs and DLQ derive from it). */
export const groupStageName = (processor: string) => `${processor}-group`;
/** Header of a view record (and of a group view record): the version it reflects. */
export const VIEW_VERSION_HEADER = 'foldstream.view.version';

export const DLQ = {
  code: 'foldstream.error.code',
  message: 'foldstream.error.message',
  topic: 'foldstream.source.topic',
  partition: 'foldstream.source.partition',
  offset: 'foldstream.source.offset',
  timestamp: 'foldstream.source.timestamp',
  processor: 'foldstream.processor',
} as const;

/** Header the chaos generator puts on every record it made bad on purpose (the kind of bad input). */
export const BAD_KIND_HEADER = 'chaos.bad';

const unpackr = new Unpackr({ mapsAsObjects: true, int64AsType: 'number' });

export function unpack(b: Buffer): unknown {
  return unpackr.unpack(b);
}

export type ChangelogEntry =
  | { kind: 'data'; key: string; value: unknown }
  | { kind: 'tombstone'; key: string }
  | { kind: 'position'; offsets: Record<string, string>; streamTime: number }
  | { kind: 'reserved' };

/** Keys starting with NUL are never store keys; `\u0000position` is the task's position marker. */
export function readChangelogRecord(r: VRecord): ChangelogEntry {
  const key = r.key === null ? '' : r.key.toString('utf8');
  if (key.startsWith('\u0000')) {
    if (key === '\u0000position' && r.value) {
      const p = unpack(r.value) as { offsets: Record<string, string>; streamTime: number };
      return { kind: 'position', offsets: p.offsets, streamTime: p.streamTime };
    }
    return { kind: 'reserved' };
  }
  if (r.value === null) return { kind: 'tombstone', key };
  return { kind: 'data', key, value: unpack(r.value) };
}

const { Partitioners } = kafkajs;
const javaPartitioner = Partitioners.DefaultPartitioner();

/** The partition the Java client's default partitioner (murmur2) gives a key. */
export function partitionOf(key: Buffer | string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  return javaPartitioner({ topic: 't', partitionMetadata, message: { key: Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8'), value: null } });
}

export function where(r: VRecord): string {
  return `${r.topic}/${r.partition}@${r.offset}`;
}

/** partition@offset: enough where the topic is known (kept per output record, so short) */
export function at(r: VRecord): string {
  return `${r.partition}@${r.offset}`;
}
