/**
 * JSONata expressions of a topology (steps, declarative aggregates and projections, upcasters), compiled once at
 * build time. Results are turned into plain data before they reach a store or a topic: JSONata marks sequences with
 * extra properties and may return functions, neither of which belongs in msgpack or JSON. A plain field path
 * (`data.email`, most of them) is read without JSONata when the data allows (evaluateFast): JSONata's evaluation is
 * asynchronous and costs ~20 µs per expression, a property read well under one.
 */
import jsonata from 'jsonata';
import { FoldstreamError, errorMessage } from '../errors.ts';
import { setOwn } from '../serde/own-keys.ts';

export interface Expression {
  readonly source: string;
  evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown>;
  /**
   * The value without JSONata, synchronously, when the expression is a plain field path (`data.email`) and the input
   * lets a property read give exactly what JSONata gives; SLOW otherwise (then call evaluate()).
   */
  evaluateFast(input: unknown): unknown;
}

/** evaluateFast's answer when only JSONata can say. */
export const SLOW: unique symbol = Symbol('slow');

/** JSONata's operators and literals: names that are not field names. */
const NOT_FIELDS = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);
const PLAIN_PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The field names of a plain path (`data.email` → ['data', 'email']); undefined for anything else. */
export function plainPath(source: string): string[] | undefined {
  const s = source.trim();
  if (!PLAIN_PATH.test(s)) return undefined;
  const parts = s.split('.');
  return parts.some((p) => NOT_FIELDS.has(p)) ? undefined : parts;
}

const isPlainRecord = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * A plain path over plain data, read as JSONata's lookup does (an own property of an object, nothing from anything
 * else). Arrays are JSONata's sequences (mapping, flattening, singleton unwrapping) and anything that is not a plain
 * object (a Buffer, a Date) is left to JSONata: SLOW.
 */
function readPath(input: unknown, path: string[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === undefined) return undefined;
    if (Array.isArray(v)) return SLOW;
    if (typeof v !== 'object' || v === null) return v === null ? SLOW : undefined;
    if (!isPlainRecord(v)) return SLOW;
    v = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
  }
  if (Array.isArray(v) || typeof v === 'function') return SLOW;
  if (typeof v === 'object' && v !== null) return isPlainRecord(v) ? plain(v) : SLOW;
  return v;
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
  const path = plainPath(source);
  const evaluateFast = path ? (input: unknown) => readPath(input, path) : () => SLOW;
  return {
    source,
    evaluateFast,
    async evaluate(input, bindings) {
      const fast = evaluateFast(input);
      if (fast !== SLOW) return fast;
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

export function plain(v: unknown): unknown {
  if (typeof v === 'function') return undefined;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = plain(x);
      if (p !== undefined) setOwn(out, k, p); // JSONata's objects have no prototype: "__proto__" is a key there too
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
