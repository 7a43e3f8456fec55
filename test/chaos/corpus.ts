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
