/** `filter: <expr>`: records for which the expression is false are dropped (counted as dropped, not dead-lettered). */
import { compileExpression, isTrue } from '../expressions.ts';
import type { Stage } from '../spec.ts';

export function filterStage(source: string, where: string): Stage {
  const expr = compileExpression(source, where);
  return async (record) => (isTrue(await expr.evaluate(record.value)) ? { record } : { drop: true, reason: 'filtered' });
}
