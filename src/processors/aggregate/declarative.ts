/**
 * A decider from YAML: per command type, rejection rules (`reject: [{ if, reason, code }]`) and events to emit
 * (`emit: [{ type, when, data, eventVersion }]`); per event type, state fields to set (`evolve:`). Expressions are
 * JSONata over `{ command, state, version }` (commands) and `{ state, event }` (evolve).
 */
import { DomainError } from '../../errors.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { compileExpression, compileMap, isTrue } from '../expressions.ts';
import { setPath, unsetPath } from '../field-paths.ts';
import type { Decider, EventDraft } from './decider.ts';

export function declarativeDecider(decl: AggregateProcessorDecl): Decider {
  const where = `processor "${decl.name}"`;
  const commands = new Map(
    Object.entries(decl.commands ?? {}).map(([type, rule]) => [
      type,
      {
        reject: rule.reject.map((r, i) => ({ ...r, if: compileExpression(r.if, `${where} commands.${type}.reject[${i}].if`) })),
        emit: rule.emit.map((e, i) => ({
          type: e.type,
          eventVersion: e.eventVersion,
          when: e.when ? compileExpression(e.when, `${where} commands.${type}.emit[${i}].when`) : undefined,
          data: compileMap(e.data, `${where} commands.${type}.emit[${i}].data`),
        })),
      },
    ]),
  );
  const evolve = new Map(Object.entries(decl.evolve ?? {}).map(([type, fields]) => [type, compileMap(fields, `${where} evolve.${type}`)]));
  const initial = decl.initialState ?? {};

  return {
    initialState: () => structuredClone(initial),
    async decide(command, state, { version }) {
      const rule = commands.get(command.commandType);
      if (!rule) throw new DomainError(`unknown command type "${command.commandType}"`, 'COMMAND_UNKNOWN');
      const input = { command, state, version };
      for (const r of rule.reject) if (isTrue(await r.if.evaluate(input))) throw new DomainError(r.reason, r.code);
      const drafts: EventDraft[] = [];
      for (const e of rule.emit) {
        if (e.when && !isTrue(await e.when.evaluate(input))) continue;
        const data: Record<string, unknown> = {};
        for (const [field, x] of e.data) {
          const v = await x.evaluate(input);
          if (v !== undefined) setPath(data, field, v);
        }
        drafts.push({ type: e.type, data, eventVersion: e.eventVersion });
      }
      return drafts;
    },
    async evolve(state, event) {
      const fields = evolve.get(event.eventType);
      if (!fields) return state;
      const input = { state, event };
      const values = await Promise.all(fields.map(async ([f, x]) => [f, await x.evaluate(input)] as const));
      const next = structuredClone(typeof state === 'object' && state !== null ? state : {}) as Record<string, unknown>;
      for (const [f, v] of values) {
        if (v === undefined) unsetPath(next, f);
        else setPath(next, f, v);
      }
      return next;
    },
  };
}
