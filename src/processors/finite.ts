/**
 * Numbers in views, states and events are finite. JSON has no Infinity or NaN (JSON.stringify writes null), so an
 * overflow (two increments of 1e308) or a division by zero would silently become null in a view or an event and a
 * different value in a msgpack store. Each kind checks the value it has finished — a view, an aggregate's state and
 * events, a saga's state and commands — before anything is kept or sent, and a non-finite number is a handler
 * failure (not retried: the same input overflows again), so the record goes to the dead-letter topic with the path.
 */
import { FoldstreamError } from '../errors.ts';

/** Where the first number that is not finite is (`counts.total`, `items[2]`; '' for the value itself), and what it is. */
export function nonFinite(value: unknown, path = ''): { path: string; value: number } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value };
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nonFinite(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  for (const k of Object.keys(value)) {
    const found = nonFinite((value as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    if (found) return found;
  }
  return undefined;
}

/** Throws HANDLER_FAILED when `value` holds a non-finite number; `what` says whose value it is. */
export function requireFinite(value: unknown, what: string): void {
  const found = nonFinite(value);
  if (!found) return;
  throw new FoldstreamError('HANDLER_FAILED', `${what} has ${found.value}${found.path ? ` at ${found.path}` : ''}, which JSON cannot carry (it would be written as null)`, {
    hint: 'keep numbers finite: an increment or a sum overflowed, or something was divided by zero',
  });
}
