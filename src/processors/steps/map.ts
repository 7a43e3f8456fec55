/** `map: { field.path: <expr> }`: sets fields of the value; every expression sees the value as it came in. */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject } from '../../serde/envelope.ts';
import { compileMap } from '../expressions.ts';
import { setPath, unsetPath } from '../field-paths.ts';
import type { Stage } from '../spec.ts';

export function mapStage(fields: Record<string, string>, where: string): Stage {
  const exprs = compileMap(fields, where);
  return async (record) => {
    if (!isPlainObject(record.value)) {
      throw new FoldstreamError('HANDLER_FAILED', `${where}: map needs an object value, got ${describeValue(record.value)}`, {
        hint: 'put a filter step before the map, or map only topics whose values are objects',
      });
    }
    const values = await Promise.all(exprs.map(async ([f, x]) => [f, await x.evaluate(record.value)] as const));
    const value = structuredClone(record.value);
    for (const [f, v] of values) {
      if (v === undefined) unsetPath(value, f);
      else setPath(value, f, v);
    }
    return { record: { ...record, value } };
  };
}
