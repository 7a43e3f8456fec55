/**
 * Declarative `on:` rules: per event type, `set` / `unset` / `increment` / `append` view fields, or `delete` the view.
 * Expressions are JSONata over the event envelope, with `$view` (the view before the event) and `$key` bound; all of
 * a rule's expressions see the same input, then the changes apply in that order.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue } from '../../serde/envelope.ts';
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import { compileExpression, compileMap, type Expression } from '../expressions.ts';
import { getPath, setPath, unsetPath } from '../field-paths.ts';
import type { Projector, View } from './projector.ts';

interface CompiledRule {
  delete: boolean;
  set: [string, Expression][];
  unset: string[];
  increment: [string, number | Expression][];
  append: [string, Expression][];
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
      const evaluate = async (x: Expression) => x.evaluate(event, bindings);
      const set = await Promise.all(rule.set.map(async ([f, x]) => [f, await evaluate(x)] as const));
      const increment = await Promise.all(rule.increment.map(async ([f, n]) => [f, typeof n === 'number' ? n : await evaluate(n)] as const));
      const append = await Promise.all(rule.append.map(async ([f, x]) => [f, await evaluate(x)] as const));
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
