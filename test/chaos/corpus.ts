/**
 * The bad-input corpus: fifteen kinds of record a producer can get wrong. Each workload turns a good record into a
 * bad one of each kind (workloads/*.ts) and says, in its verifier model, where the record must end up. The generator
 * marks every record it spoils with the header `chaos.bad: <kind>`, which the verifier uses only to cross-check its
 * own verdict (a disagreement is a bug in the test, reported as such).
 */
import { pack } from 'msgpackr';
import type { Rng } from './rng.ts';

export const BAD_KINDS = [
  'non-json',
  'truncated-msgpack',
  'wrong-field-types',
  'missing-fields',
  'unknown-type',
  'too-new-version',
  'null-key',
  'key-mismatch',
  'oversize',
  'binary-garbage',
  'huge-numbers',
  'deeply-nested',
  'empty-value',
  'null-value',
  'invalid-utf8',
] as const;

export type BadKind = (typeof BAD_KINDS)[number];

export const BAD_KIND_HEADER = 'chaos.bad';

export function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

/** JSON text cut in the middle of a value. */
export function nonJson(v: unknown): Buffer {
  const text = JSON.stringify(v);
  return Buffer.from(text.slice(0, Math.max(1, Math.floor(text.length / 2))), 'utf8');
}

/** The msgpack encoding of the value, cut in half (its first byte, a map header, is not valid UTF-8). */
export function truncatedMsgpack(v: unknown): Buffer {
  const b = pack(v);
  return b.subarray(0, Math.max(1, Math.floor(b.length / 2)));
}

/** Random bytes that start with 0xFF, which no UTF-8 text (and so no JSON) starts with. */
export function binaryGarbage(rng: Rng): Buffer {
  return Buffer.concat([Buffer.from([0xff]), rng.bytes(16 + rng.int(48))]);
}

/** A valid JSON object padded past `limit` bytes. */
export function oversize(v: Record<string, unknown>, limit: number): Buffer {
  return json({ ...v, pad: 'x'.repeat(limit + 512) });
}

/** An array nested `depth` deep. JSON.parse copes; a field holding it has the wrong type. */
export function deeplyNestedText(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

/** JSON whose string value holds a byte sequence that is not UTF-8. */
export function invalidUtf8(v: Record<string, unknown>, field: string): Buffer {
  const text = JSON.stringify({ ...v, [field]: '@@' });
  const at = text.indexOf('@@');
  return Buffer.concat([Buffer.from(text.slice(0, at), 'utf8'), Buffer.from([0xc3, 0x28]), Buffer.from(text.slice(at + 2), 'utf8')]);
}

/** The JSON of `v` with the text of `field`'s value replaced by raw JSON (numbers JSON.stringify cannot write). */
export function withRawField(v: Record<string, unknown>, field: string, raw: string): Buffer {
  const text = JSON.stringify({ ...v, [field]: '@@RAW@@' });
  return Buffer.from(text.replace('"@@RAW@@"', raw), 'utf8');
}

/** What a workload says about one of its good records so that `spoil` can make a bad record of any kind from it. */
export interface Spoilable {
  key: string;
  /** the good value */
  value: Record<string, unknown>;
  /** the value with one field of the wrong type */
  wrongFieldTypes: Record<string, unknown>;
  /** the value without a field it needs */
  missingFields: Record<string, unknown>;
  /** the value with a type nothing handles */
  unknownType: Record<string, unknown>;
  /** the value at a version newer than any supported */
  tooNewVersion: Record<string, unknown>;
  /** a key and a value that disagree on whose record it is */
  keyMismatch: { key: string; value: Record<string, unknown> };
  /** a number field (written as 1e400), a field to hold a deeply nested array, a string field to hold invalid UTF-8 */
  fields: { hugeNumber: string; deeplyNested: string; invalidUtf8: string };
}

/**
 * The Spoilable of an event or command envelope keyed by its aggregateId (the bank and saga workloads): an event's
 * version or a command's aggregateId of the wrong type, no eventId or commandId, an event type nothing handles, a key
 * naming another aggregate.
 */
export function envelopeSpoilable(key: string, tpl: Record<string, unknown>, toEvents: boolean, unknownEventType: string): Spoilable {
  const { eventId: _e, commandId: _c, ...withoutId } = tpl;
  return {
    key,
    value: tpl,
    wrongFieldTypes: toEvents ? { ...tpl, aggregateVersion: '1' } : { ...tpl, aggregateId: 42 },
    missingFields: withoutId,
    unknownType: { ...tpl, eventType: unknownEventType },
    tooNewVersion: { ...tpl, eventVersion: 3 },
    keyMismatch: { key, value: { ...tpl, aggregateId: `${key}-other` } },
    fields: { hugeNumber: toEvents ? 'aggregateVersion' : 'expectedVersion', deeplyNested: 'aggregateId', invalidUtf8: 'aggregateId' },
  };
}

/** A bad record of the given kind (key null for `null-key`). */
export function spoil(kind: BadKind, s: Spoilable, rng: Rng, maxRecordBytes: number): { key: string | null; value: Buffer | null } {
  const r = (value: Buffer | null, key: string | null = s.key) => ({ key, value });
  switch (kind) {
    case 'non-json': return r(nonJson(s.value));
    case 'truncated-msgpack': return r(truncatedMsgpack(s.value));
    case 'wrong-field-types': return r(json(s.wrongFieldTypes));
    case 'missing-fields': return r(json(s.missingFields));
    case 'unknown-type': return r(json(s.unknownType));
    case 'too-new-version': return r(json(s.tooNewVersion));
    case 'null-key': return r(json(s.value), null);
    case 'key-mismatch': return r(json(s.keyMismatch.value), s.keyMismatch.key);
    case 'oversize': return r(oversize(s.value, maxRecordBytes));
    case 'binary-garbage': return r(binaryGarbage(rng));
    case 'huge-numbers': return r(withRawField(s.value, s.fields.hugeNumber, '1e400'));
    case 'deeply-nested': return r(withRawField(s.value, s.fields.deeplyNested, deeplyNestedText(5000)));
    case 'empty-value': return r(Buffer.alloc(0));
    case 'null-value': return r(null);
    case 'invalid-utf8': return r(invalidUtf8(s.value, s.fields.invalidUtf8));
  }
}
