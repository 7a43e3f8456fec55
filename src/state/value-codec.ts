/**
 * Store values are msgpack (plain maps, no msgpackr-only record extensions), so changelog topics can be read by any
 * msgpack library, including the independent chaos verifier. Keys round-trip exactly, "__proto__" too (serde/msgpack.ts).
 */
import { pack, unpack } from '../serde/msgpack.ts';

export function encodeValue(value: unknown): Buffer {
  return pack(value);
}

export function decodeValue<V = unknown>(bytes: Buffer): V {
  return unpack(bytes) as V;
}
