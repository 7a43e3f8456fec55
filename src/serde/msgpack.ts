/**
 * msgpack as foldstream writes it (store values, changelogs, topics with codec msgpack): plain maps, no
 * msgpackr-only record extensions, so any msgpack library reads it (the chaos verifier does). Decoding is exact:
 * msgpackr renames a "__proto__" key to "__proto_" (which then collides with a real "__proto_"), so a value that
 * holds those bytes is decoded through Maps and rebuilt with own properties instead; every other value takes
 * msgpackr's fast path.
 */
import { Packr } from 'msgpackr';
import { setOwn } from './own-keys.ts';

const options = { useRecords: false, variableMapSize: true, int64AsType: 'number' } as const;
const packr = new Packr({ ...options, mapsAsObjects: true });
const exact = new Packr({ ...options, mapsAsObjects: false });
const PROTO = Buffer.from('__proto__', 'utf8');

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Buffer): unknown {
  if (!bytes.includes(PROTO)) return packr.unpack(bytes);
  return objects(exact.unpack(bytes));
}

function objects(v: unknown): unknown {
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) setOwn(out, String(k), objects(x));
    return out;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = objects(v[i]);
    return v;
  }
  return v;
}
