/**
 * JSONata expressions of a topology (steps, declarative aggregates and projections, upcasters), compiled once at
 * build time. Results are turned into plain data before they reach a store or a topic: JSONata marks sequences with
 * extra properties and may return functions, neither of which belongs in msgpack or JSON.
 */
import jsonata from 'jsonata';
import { FoldstreamError, errorMessage } from '../errors.ts';

export interface Expression {
  readonly source: string;
  evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown>;
}

/**
 * Bounds on one evaluation, so an expression that does not terminate (a recursive function without a base case) or
 * builds huge sequences fails its record (HANDLER_FAILED: dead-lettered) instead of holding its task forever or
 * exhausting memory. jsonata checks them at every evaluation step: `stack` is the nesting depth of evaluation steps
 * (a recursion about a hundred calls deep stays well inside), `timeout` the milliseconds one evaluation may take,
 * generous because the event loop is shared with the other tasks, `sequence` the longest sequence it may build.
 */
export const EXPRESSION_BOUNDS = { timeout: 10_000, stack: 1_000, sequence: 1_000_000 } as const;

/** `where` names the expression's place in the topology, for messages (e.g. `processor "user-view" on.UserCreated.set.email`). */
export function compileExpression(source: string, where: string, bounds: { timeout: number; stack: number; sequence: number } = EXPRESSION_BOUNDS): Expression {
  let compiled: jsonata.Expression;
  try {
    compiled = jsonata(source, bounds);
  } catch (e) {
    throw new FoldstreamError('CONFIG_INVALID', `${where}: JSONata expression ${JSON.stringify(source)} does not parse: ${errorMessage(e)}`, {
      hint: 'fix the expression; `foldstream validate` shows where it is',
    });
  }
  return {
    source,
    async evaluate(input, bindings) {
      try {
        return plain(await compiled.evaluate(input, bindings));
      } catch (e) {
        // the same input fails the same way every time: not worth retrying
        throw new FoldstreamError('HANDLER_FAILED', `${where}: JSONata expression ${JSON.stringify(source)} failed: ${jsonataMessage(e)}`, {
          hint: 'fix the expression or the record it failed on (it is in the dead-letter topic)',
          cause: e,
        });
      }
    },
  };
}

/** jsonata throws plain objects (code, message, position), not Errors. */
function jsonataMessage(e: unknown): string {
  const m = (e as { message?: unknown } | null)?.message;
  return e instanceof Error || typeof m !== 'string' ? errorMessage(e) : m;
}

function plain(v: unknown): unknown {
  if (typeof v === 'function') return undefined;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = plain(x);
      if (p !== undefined) out[k] = p;
    }
    return out;
  }
  return v;
}

/** JSONata's idea of true for conditions: an empty sequence or missing value is false. */
export function isTrue(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0 && v.some(isTrue);
  return Boolean(v);
}

/** Compiles every value of a map of expressions. */
export function compileMap(map: Record<string, string> | undefined, where: string): [string, Expression][] {
  return Object.entries(map ?? {}).map(([k, source]) => [k, compileExpression(source, `${where}.${k}`)]);
}
