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

/**
 * One lower and one upper bound from prefix, gt, gte, lt and lte (the tightest of each side). LevelDB honours only
 * one bound per side (given gt and gte it uses gte), so the bounds it receives must already be combined.
 */
export function rangeBounds(o: RangeOptions): KeyBounds {
  let lower: { key: string; inclusive: boolean } | undefined;
  let upper: { key: string; inclusive: boolean } | undefined;
  const tighterLower = (key: string, inclusive: boolean) => {
    const c = lower ? compareKeys(key, lower.key) : 1;
    if (c > 0 || (c === 0 && !inclusive)) lower = { key, inclusive };
  };
  const tighterUpper = (key: string, inclusive: boolean) => {
    const c = upper ? compareKeys(key, upper.key) : -1;
    if (c < 0 || (c === 0 && !inclusive)) upper = { key, inclusive };
  };
  if (o.gte !== undefined) tighterLower(o.gte, true);
  if (o.gt !== undefined) tighterLower(o.gt, false);
  if (o.lte !== undefined) tighterUpper(o.lte, true);
  if (o.lt !== undefined) tighterUpper(o.lt, false);
  if (o.prefix !== undefined) {
    tighterLower(o.prefix, true);
    tighterUpper(`${o.prefix}\udbff\udfff`, true);
  }
  const b: KeyBounds = {};
  if (lower) b[lower.inclusive ? 'gte' : 'gt'] = lower.key;
  if (upper) b[upper.inclusive ? 'lte' : 'lt'] = upper.key;
  return b;
}

export function inBounds(key: string, b: KeyBounds): boolean {
  if (b.gt !== undefined && compareKeys(key, b.gt) <= 0) return false;
  if (b.gte !== undefined && compareKeys(key, b.gte) < 0) return false;
  if (b.lt !== undefined && compareKeys(key, b.lt) >= 0) return false;
  if (b.lte !== undefined && compareKeys(key, b.lte) > 0) return false;
  return true;
}
