/**
 * Every JSONata expression a topology holds, with its path in the document, so `validate` reports a syntax error at
 * the YAML node it is in (file:line:col) instead of the first record that evaluates it.
 */
import jsonata from 'jsonata';
import type { PathSegment } from './load.ts';
import type { ProcessorDecl, SagaEventMatchDecl, SagaStepDecl, UpcasterDecl } from './schema.ts';
import { assertNever } from './assert-never.ts';

export interface LocatedExpression {
  /** path inside the processor (or upcaster) declaration */
  path: PathSegment[];
  source: string;
}

/** The parser's message, or undefined when the expression parses. */
export function syntaxError(source: string): string | undefined {
  try {
    jsonata(source);
    return undefined;
  } catch (e) {
    const err = e as { message?: string; position?: number };
    return err.position === undefined ? String(err.message) : `${err.message} (at character ${err.position})`;
  }
}

function entries(path: PathSegment[], map: Record<string, string | number> | undefined): LocatedExpression[] {
  return Object.entries(map ?? {}).flatMap(([k, v]) => (typeof v === 'string' ? [{ path: [...path, k], source: v }] : []));
}

export function expressionsOf(p: ProcessorDecl): LocatedExpression[] {
  const out: LocatedExpression[] = [];
  p.steps.forEach((step, i) => {
    if ('filter' in step) out.push({ path: ['steps', i, 'filter'], source: step.filter });
    else if ('map' in step) out.push(...entries(['steps', i, 'map'], step.map));
    else out.push({ path: ['steps', i, 'route', 'by'], source: step.route.by });
  });
  switch (p.type) {
    case 'aggregate':
      for (const [type, rule] of Object.entries(p.commands ?? {})) {
        rule.reject.forEach((r, i) => out.push({ path: ['commands', type, 'reject', i, 'if'], source: r.if }));
        rule.emit.forEach((e, i) => {
          if (e.when) out.push({ path: ['commands', type, 'emit', i, 'when'], source: e.when });
          out.push(...entries(['commands', type, 'emit', i, 'data'], e.data));
        });
      }
      for (const [type, fields] of Object.entries(p.evolve ?? {})) out.push(...entries(['evolve', type], fields));
      break;
    case 'projection':
      for (const [type, rule] of Object.entries(p.on ?? {})) {
        out.push(...entries(['on', type, 'set'], rule.set));
        out.push(...entries(['on', type, 'increment'], rule.increment));
        out.push(...entries(['on', type, 'append'], rule.append));
      }
      if (typeof p.groupBy === 'string') out.push({ path: ['groupBy'], source: p.groupBy });
      else if (p.groupBy) {
        out.push({ path: ['groupBy', 'key'], source: p.groupBy.key });
        for (const [field, agg] of Object.entries(p.groupBy.aggregate)) {
          if (typeof agg === 'object') out.push({ path: ['groupBy', 'aggregate', field, 'sum'], source: agg.sum });
        }
      }
      break;
    case 'saga': {
      if (p.correlate !== undefined) out.push({ path: ['correlate'], source: p.correlate });
      const commands = (path: PathSegment[], c: SagaStepDecl['send']) =>
        (Array.isArray(c) ? c.map((x, i) => [[...path, i], x] as const) : [[path, c] as const]).forEach(([at, x]) => {
          out.push({ path: [...at, 'aggregateId'], source: x.aggregateId });
          if (x.tenantId !== undefined) out.push({ path: [...at, 'tenantId'], source: x.tenantId });
          out.push(...entries([...at, 'data'], x.data));
        });
      p.flow?.forEach((step, i) => {
        commands(['flow', i, 'send'], step.send);
        if (step.compensate) commands(['flow', i, 'compensate'], step.compensate);
        for (const which of ['completeOn', 'failOn'] as const) {
          for (const m of sagaEventMatches(step[which])) if (m.when !== undefined) out.push({ path: ['flow', i, which, ...m.path, 'when'], source: m.when });
        }
      });
      if (p.onFailure) commands(['onFailure'], p.onFailure);
      break;
    }
    case 'custom':
      break;
    case 'join':
      if (p.key !== undefined) out.push({ path: ['key'], source: p.key });
      if (p.foreignKey !== undefined) out.push({ path: ['foreignKey'], source: p.foreignKey });
      for (const [field, source] of Object.entries(p.select ?? {})) out.push({ path: ['select', field], source });
      break;
    case 'window':
      if (p.key !== undefined) out.push({ path: ['key'], source: p.key });
      for (const [field, agg] of Object.entries(p.aggregate ?? {})) {
        if (typeof agg === 'object') for (const [op, source] of Object.entries(agg)) out.push({ path: ['aggregate', field, op], source });
      }
      break;
    default:
      assertNever(p, 'processor type');
  }
  return out;
}

/**
 * The entries of a flow step's `completeOn` or `failOn`, each with its event type, its condition, its path below that
 * key (none for a single entry, its index in a list) and the path of its type, so messages point at the entry.
 */
export function sagaEventMatches(
  decl: SagaEventMatchDecl | SagaEventMatchDecl[] | undefined,
): { type: string; when: string | undefined; path: PathSegment[]; typePath: PathSegment[] }[] {
  const entries = decl === undefined ? [] : Array.isArray(decl) ? decl.map((m, i) => [m, [i]] as const) : [[decl, []] as const];
  return entries.map(([m, path]) =>
    typeof m === 'string' ? { type: m, when: undefined, path: [...path], typePath: [...path] } : { type: m.type, when: m.when, path: [...path], typePath: [...path, 'type'] },
  );
}

export function upcasterExpressions(u: UpcasterDecl): LocatedExpression[] {
  return [...entries(['defaults'], u.defaults), ...entries(['set'], u.set)];
}
