/**
 * Comparing what a test expected with what happened, and showing the difference as a line diff of YAML, which reads
 * like the test files themselves. Used by the given/when/then helpers and by `foldstream test`.
 */
import { AssertionError } from 'node:assert';
import { isDeepStrictEqual } from 'node:util';
import { stringify } from 'yaml';
import { getOwn } from '../serde/own-keys.ts';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Map);

/** Exact equality of plain data (as decoded from JSON, msgpack or YAML). */
export function equal(actual: unknown, expected: unknown): boolean {
  return isDeepStrictEqual(actual, expected);
}

/**
 * Whether `actual` has what `expected` lists: an object matches when each field listed matches (others may be
 * present), an array when it has the same length and each element matches, null when the value is null or absent,
 * anything else when equal.
 */
export function matches(actual: unknown, expected: unknown): boolean {
  if (expected === null) return actual === null || actual === undefined;
  if (isObject(expected)) return isObject(actual) && Object.entries(expected).every(([k, v]) => matches(getOwn(actual, k), v));
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((v, i) => matches(actual[i], v));
  return isDeepStrictEqual(actual, expected);
}

/** `actual` cut down to the fields `expected` lists, so that a diff shows only what the expectation is about. */
export function projectOnto(actual: unknown, expected: unknown): unknown {
  if (isObject(expected) && isObject(actual)) return Object.fromEntries(Object.keys(expected).map((k) => [k, projectOnto(getOwn(actual, k), expected[k])]));
  if (Array.isArray(expected) && Array.isArray(actual) && actual.length === expected.length) return actual.map((v, i) => projectOnto(v, expected[i]));
  return actual;
}

/** How many leaves of `expected` `actual` gets wrong: to pick the closest candidate when none matches. */
export function mismatches(actual: unknown, expected: unknown): number {
  if (isObject(expected)) return isObject(actual) ? Object.entries(expected).reduce((n, [k, v]) => n + mismatches(getOwn(actual, k), v), 0) : 1 + Object.keys(expected).length;
  if (Array.isArray(expected) && Array.isArray(actual)) {
    return Math.abs(actual.length - expected.length) + expected.reduce<number>((n, v, i) => n + mismatches(actual[i], v), 0);
  }
  return matches(actual, expected) ? 0 : 1;
}

const ABSENT = '(absent)';

/** Plain data YAML can print: absent fields shown, bytes as text or hex, maps as objects. */
function printable(v: unknown): unknown {
  if (v === undefined) return ABSENT;
  if (Buffer.isBuffer(v)) {
    const text = v.toString('utf8');
    return Buffer.from(text, 'utf8').equals(v) ? `(bytes) ${text}` : `(bytes) 0x${v.toString('hex')}`;
  }
  if (v instanceof Map) return printable(Object.fromEntries(v));
  if (Array.isArray(v)) return v.map(printable);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, printable(x)]));
  return v;
}

/** A value as YAML lines. */
export function render(v: unknown): string[] {
  return stringify(printable(v), { lineWidth: 0 }).trimEnd().split('\n');
}

/** A line diff of expected against actual: "- " lines only expected, "+ " lines only actual, 3 lines of context. */
export function diff(expected: unknown, actual: unknown): string {
  const a = render(expected);
  const b = render(actual);
  // longest common subsequence over lines; test values are small
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const lines: [' ' | '-' | '+', string][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push([' ', a[i++]!]);
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) lines.push(['-', a[i++]!]);
    else lines.push(['+', b[j++]!]);
  }
  const near = lines.map((_, k) => lines.slice(Math.max(0, k - 3), k + 4).some(([m]) => m !== ' '));
  const out = ['- expected', '+ actual'];
  for (const [k, [mark, text]] of lines.entries()) {
    if (near[k]) out.push(`${mark} ${text}`);
    else if (near[k - 1] || k === 0) out.push('  ...');
  }
  return out.join('\n');
}

/** Thrown by the given/when/then helpers: a node AssertionError (any test runner shows it), with a YAML diff. */
export class SpecAssertionError extends AssertionError {
  constructor(title: string, expected: unknown, actual: unknown, detail?: string) {
    // operator 'fail': node adds no diff of its own to the message
    super({ message: `${title}\n${detail ?? diff(expected, actual)}`, expected, actual, operator: 'fail' });
  }
}
