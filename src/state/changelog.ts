/**
 * Changelog records (compacted topic `<app>-<processor>-<store>-changelog`, partition = task partition):
 * - data: key = store key (UTF-8), value = msgpack value, or null (tombstone) for a delete;
 * - position marker: key = "\u0000position", header `foldstream.marker: position`, value = msgpack TaskPosition.
 * Every transaction writes a marker into each changelog of the task, so restoring a changelog to its end also
 * restores the input position its data belongs to (DESIGN §4 step 3). Compaction keeps the newest marker.
 */
import type { TaskPosition } from './committed-store.ts';
import { RESERVED_KEY_PREFIX } from './buffered-store.ts';
import { decodeValue, encodeValue } from './value-codec.ts';

export const POSITION_KEY = `${RESERVED_KEY_PREFIX}position`;
export const MARKER_HEADER = 'foldstream.marker';

export interface ChangelogRecord {
  key: Buffer;
  value: Buffer | null;
  headers?: Record<string, string>;
}

export function dataRecord(key: string, value: Buffer | null): ChangelogRecord {
  return { key: Buffer.from(key, 'utf8'), value };
}

export function positionRecord(position: TaskPosition): ChangelogRecord {
  return { key: Buffer.from(POSITION_KEY, 'utf8'), value: encodeValue(position), headers: { [MARKER_HEADER]: 'position' } };
}

export type DecodedChangelogRecord =
  | { kind: 'data'; key: string; value: Buffer | null }
  | { kind: 'position'; position: TaskPosition };

export function decodeChangelogRecord(key: Buffer | null, value: Buffer | null): DecodedChangelogRecord | undefined {
  if (key === null) return undefined;
  const k = key.toString('utf8');
  if (k === POSITION_KEY) return value ? { kind: 'position', position: decodeValue<TaskPosition>(value) } : undefined;
  if (k.startsWith(RESERVED_KEY_PREFIX)) return undefined;
  return { kind: 'data', key: k, value };
}

/** The further of two positions: per topic the higher offset, and the later stream time. */
export function laterPosition(a: TaskPosition | undefined, b: TaskPosition | undefined): TaskPosition | undefined {
  if (!a) return b;
  if (!b) return a;
  const offsets: Record<string, string> = { ...a.offsets };
  for (const [t, o] of Object.entries(b.offsets)) {
    const mine = offsets[t];
    if (mine === undefined || BigInt(o) > BigInt(mine)) offsets[t] = o;
  }
  return { offsets, streamTime: Math.max(a.streamTime, b.streamTime) };
}
