import type { RangeOptions } from '../processors/types.ts';

/** LevelDB orders keys by their UTF-8 bytes; JS compares UTF-16 code units. Merges must use the store's order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export interface KeyBounds {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
}

/** Turns a prefix into bounds; keeps gt/gte/lt/lte. */
export function rangeBounds(o: RangeOptions): KeyBounds {
  const b: KeyBounds = {};
  if (o.gt !== undefined) b.gt = o.gt;
  if (o.gte !== undefined) b.gte = o.gte;
  if (o.lt !== undefined) b.lt = o.lt;
  if (o.lte !== undefined) b.lte = o.lte;
  if (o.prefix !== undefined) {
    if (b.gte === undefined || compareKeys(o.prefix, b.gte) > 0) b.gte = o.prefix;
    const end = `${o.prefix}\udbff\udfff`;
    if (b.lte === undefined || compareKeys(end, b.lte) < 0) b.lte = end;
  }
  return b;
}

export function inBounds(key: string, b: KeyBounds): boolean {
  if (b.gt !== undefined && compareKeys(key, b.gt) <= 0) return false;
  if (b.gte !== undefined && compareKeys(key, b.gte) < 0) return false;
  if (b.lt !== undefined && compareKeys(key, b.lt) >= 0) return false;
  if (b.lte !== undefined && compareKeys(key, b.lte) > 0) return false;
  return true;
}
