/**
 * What a window holds and how a record changes it: the declarative aggregations (count, and sum / min / max of a
 * JSONata expression over the event) or a reducer module (initialState, add(aggregate, event), and merge(a, b) for
 * session windows). A record's contribution is computed once; sliding windows keep it as a point to fold the window
 * a later record opens.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue } from '../../serde/envelope.ts';
import type { WindowProcessorDecl } from '../../topology/schema.ts';
import { compileExpression, type Expression } from '../expressions.ts';
import { loadModule, optionalFunction, requireFunction, requireInitialState } from '../module-loader.ts';

export interface Reducer {
  initial(): unknown;
  /** what a record adds to a window; kept as is (msgpack) for sliding windows */
  contribution(event: unknown): Promise<unknown>;
  add(aggregate: unknown, contribution: unknown): Promise<unknown>;
  /** two sessions joined by a record between them: the older first */
  merge(older: unknown, newer: unknown): Promise<unknown>;
  /** the fields a window result carries besides key, start and end */
  result(aggregate: unknown): Record<string, unknown>;
}

/** The module contract of `type: window` with `module:`. */
export interface WindowReducerModule {
  initialState: unknown;
  add(aggregate: unknown, event: unknown): unknown;
  merge?(older: unknown, newer: unknown): unknown;
}

/** Field names every window result has; aggregations may not use them (a module's aggregate is `value`). */
export const RESULT_FIELDS = ['key', 'start', 'end'] as const;

type Op = 'count' | 'sum' | 'min' | 'max';
type Declared = { field: string; op: Op; expr: Expression | undefined };

export function declarativeReducer(p: WindowProcessorDecl): Reducer {
  const where = `processor "${p.name}" aggregate`;
  const fields: Declared[] = Object.entries(p.aggregate ?? {}).map(([field, a]) => {
    if (a === 'count') return { field, op: 'count', expr: undefined };
    const [op, source] = Object.entries(a)[0] as [Op, string];
    return { field, op, expr: compileExpression(source, `${where}.${field}.${op}`) };
  });
  const combine = (op: Op, a: number | null, b: number | null): number | null => {
    if (a === null) return b;
    if (b === null) return a;
    if (op === 'min') return Math.min(a, b);
    if (op === 'max') return Math.max(a, b);
    return a + b;
  };
  return {
    initial: () => Object.fromEntries(fields.map((f) => [f.field, f.op === 'count' || f.op === 'sum' ? 0 : null])),
    async contribution(event) {
      const c: Record<string, number | null> = {};
      for (const f of fields) {
        if (f.op === 'count') {
          c[f.field] = 1;
          continue;
        }
        const v = await f.expr!.evaluate(event);
        if (v === undefined || v === null) c[f.field] = null;
        else if (typeof v === 'number' && Number.isFinite(v)) c[f.field] = v;
        else {
          throw new FoldstreamError('HANDLER_FAILED', `${where}.${f.field}.${f.op}: expected a number, got ${describeValue(v)}`, {
            hint: `make the ${f.op} expression give a number (or nothing, which leaves the record out of it)`,
          });
        }
      }
      return c;
    },
    async add(aggregate, contribution) {
      const a = aggregate as Record<string, number | null>;
      const c = contribution as Record<string, number | null>;
      const next: Record<string, number | null> = {};
      for (const f of fields) next[f.field] = combine(f.op, a[f.field] ?? null, c[f.field] ?? null);
      return next;
    },
    async merge(older, newer) {
      return this.add(older, newer);
    },
    result: (aggregate) => ({ ...(aggregate as Record<string, unknown>) }),
  };
}

export async function moduleReducer(baseDir: string, p: WindowProcessorDecl): Promise<Reducer> {
  const what = `processor "${p.name}"`;
  const path = p.module!;
  const mod = await loadModule(baseDir, path, what);
  const initial = requireInitialState(mod, what, path, 'an empty window');
  const add = requireFunction<WindowReducerModule['add']>(mod, 'add', what, path);
  const merge = optionalFunction<NonNullable<WindowReducerModule['merge']>>(mod, 'merge');
  if (p.window.kind === 'session' && !merge) {
    throw new FoldstreamError('MODULE_INVALID', `${what}: session windows need merge(older, newer) from module "${path}"`, {
      hint: 'export function merge(older, newer): the aggregate of two sessions a record joins into one',
    });
  }
  const checked = (v: unknown, fn: string) => {
    if (v === undefined) {
      throw new FoldstreamError('HANDLER_FAILED', `${what}: ${fn}() of "${path}" returned nothing`, { hint: 'return the new aggregate' });
    }
    return v;
  };
  return {
    initial,
    contribution: async (event) => event,
    add: async (aggregate, event) => checked(await add(aggregate, event), 'add'),
    merge: async (older, newer) => checked(await merge!(older, newer), 'merge'),
    result: (aggregate) => ({ value: aggregate }),
  };
}
