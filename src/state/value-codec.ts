/**
 * Store values are msgpack (plain maps, no msgpackr-only record extensions), so changelog topics can be read by any
 * msgpack library, including the independent chaos verifier.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, int64AsType: 'number' });

export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeValue<V = unknown>(bytes: Buffer): V {
  return packr.unpack(bytes) as V;
}
