/**
 * Declarative `on:` rules: per event type, `set` / `unset` / `increment` / `append` view fields, or `delete` the view.
 * Expressions are JSONata over the event envelope, with `$view` (the view before the event) and `$key` bound; all of
 * a rule's expressions see the same input, then the changes apply in that order.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue } from '../../serde/envelope.ts';
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import { SLOW, compileExpression, compileMap, type Expression } from '../expressions.ts';
import { getPath, setPath, unsetPath } from '../field-paths.ts';
import type { Projector, View } from './projector.ts';

interface CompiledRule {
  delete: boolean;
  set: [string, Expression][];
  unset: string[];
  increment: [string, number | Expression][];
  append: [string, Expression][];
}

/** The pairs with their values, waiting only when some value is still a promise (a JSONata evaluation). */
function settled(pairs: [string, unknown][]): [string, unknown][] | Promise<[string, unknown][]> {
  if (!pairs.some(([, v]) => v instanceof Promise)) return pairs;
  return Promise.all(pairs.map(async ([f, v]) => [f, await v] as [string, unknown]));
}

export function rulesProjector(decl: ProjectionProcessorDecl): Projector {
  const where = `processor "${decl.name}" on`;
  const rules = new Map<string, CompiledRule>(
    Object.entries(decl.on ?? {}).map(([type, r]) => [
      type,
      {
        delete: r.delete ?? false,
        set: compileMap(r.set, `${where}.${type}.set`),
        unset: r.unset ?? [],
        increment: Object.entries(r.increment ?? {}).map(([f, n]) => [f, typeof n === 'number' ? n : compileExpression(n, `${where}.${type}.increment.${f}`)]),
        append: compileMap(r.append, `${where}.${type}.append`),
      },
    ]),
  );
  return {
    eventTypes: new Set(rules.keys()),
    async project(view, event, key) {
      const rule = rules.get(event.eventType);
      if (!rule) return undefined;
      if (rule.delete) return null;
      const bindings = { view, key };
      // plain field paths are read at once (evaluateFast); only the others wait for JSONata
      const evaluate = (x: Expression): unknown => {
        const v = x.evaluateFast(event);
        return v === SLOW ? x.evaluate(event, bindings) : v;
      };
      const set = await settled(rule.set.map(([f, x]) => [f, evaluate(x)]));
      const increment = await settled(rule.increment.map(([f, n]) => [f, typeof n === 'number' ? n : evaluate(n)]));
      const append = await settled(rule.append.map(([f, x]) => [f, evaluate(x)]));
      const next: View = view ? structuredClone(view) : {};
      // an expression with no value (a missing field) leaves the view field as it is
      for (const [f, v] of set) if (v !== undefined) setPath(next, f, v);
      for (const f of rule.unset) unsetPath(next, f);
      for (const [f, n] of increment) {
        const current = getPath(next, f) ?? 0;
        if (typeof n !== 'number' || typeof current !== 'number') {
          throw new FoldstreamError('HANDLER_FAILED', `${where}.${event.eventType}.increment.${f}: cannot add ${describeValue(n)} to ${describeValue(current)}`, {
            hint: 'increment numeric fields by numbers',
          });
        }
        setPath(next, f, current + n);
      }
      for (const [f, v] of append) {
        if (v === undefined) continue;
        const current = getPath(next, f);
        setPath(next, f, Array.isArray(current) ? [...current, v] : [v]);
      }
      return next;
    },
  };
}
