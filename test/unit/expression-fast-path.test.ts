// A plain field path is read without JSONata (evaluateFast): on every input it answers, its value must be exactly
// JSONata's, and it must leave to JSONata what it cannot answer exactly (arrays are sequences there). Random
// envelopes with nulls, arrays, missing fields, unicode keys, numbers and nested objects, from a fixed seed.
import test from 'ava';
import jsonata from 'jsonata';
import { SLOW, compileExpression, plain, plainPath } from '../../src/processors/expressions.ts';
import { prng } from '../helpers/prng.ts';

const KEYS = ['a', 'b', 'data', 'email', 'x1', '_y', 'ü', '名前', 'a b', '$x', 'and', 'true', 'length', 'constructor', 'toString'];
const PATH_KEYS = ['a', 'b', 'data', 'email', 'x1', '_y', 'length', 'constructor', 'toString', 'and', 'true', 'null'];
const STRINGS = ['', 'x', 'ünïcødé', '名前', '😀', 'a.b', '"q"', '\n'];

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 6 : 9));
  switch (k) {
    case 0:
      return null;
    case 1:
      return Math.floor(r() * 2000) - 1000;
    case 2:
      return (r() - 0.5) * 1e6;
    case 3:
      return STRINGS[Math.floor(r() * STRINGS.length)];
    case 4:
      return r() < 0.5;
    case 5:
      return 0;
    case 6:
    case 7:
      return object(r, depth + 1);
    default:
      return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
  }
}

function object(r: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = value(r, depth);
  return o;
}

function path(r: () => number): string {
  const n = 1 + Math.floor(r() * 3);
  return Array.from({ length: n }, () => PATH_KEYS[Math.floor(r() * PATH_KEYS.length)]!).join('.');
}

const jsonataParses = (s: string) => {
  try {
    jsonata(s);
    return true;
  } catch {
    return false;
  }
};

const reference = async (source: string, input: unknown) => plain(await jsonata(source).evaluate(input));

test('on random envelopes, a plain path gives exactly what JSONata gives, or leaves it to JSONata', async (t) => {
  const r = prng(20261207);
  let fast = 0;
  let slow = 0;
  for (let i = 0; i < 2000; i++) {
    const input = { eventType: 'E', aggregateId: `id-${i}`, timestamp: '2026-12-07T00:00:00Z', data: object(r, 0), ...object(r, 1) };
    for (let j = 0; j < 4; j++) {
      const source = path(r);
      let e;
      try {
        e = compileExpression(source, 'test');
      } catch {
        continue; // `b.true` does not parse: not an expression a topology can hold
      }
      const expected = await reference(source, input);
      const v = e.evaluateFast(input);
      if (v === SLOW) slow++;
      else {
        fast++;
        t.deepEqual(v, expected, `${source} on ${JSON.stringify(input)}`);
      }
      // evaluate() takes the fast path when it can: the same answer either way
      t.deepEqual(await e.evaluate(input), expected, `${source} on ${JSON.stringify(input)}`);
    }
  }
  // both paths were exercised
  t.true(fast > 3000, `fast ${fast}`);
  t.true(slow > 100, `slow ${slow}`);
});

test('only plain dotted names are plain paths; operators, literals, functions, indexes and quoted names go to JSONata', (t) => {
  t.deepEqual(plainPath('data.email'), ['data', 'email']);
  t.deepEqual(plainPath(' timestamp '), ['timestamp']);
  for (const s of ['true', 'null', 'a and b', 'data.and', '$view.x', '$count(a)', 'a[0]', 'a.b[0]', '`名前`', 'a.`b c`', "'x'", '1', 'a + 1', 'a.b.', '.a', 'a..b', 'a * b', 'a.*', '**.a']) {
    t.is(plainPath(s), undefined, s);
    if (jsonataParses(s)) t.is(compileExpression(s, 'test').evaluateFast({ a: { b: 1 } }), SLOW, s);
  }
});

test('arrays, non-plain objects and null in the middle of a path are left to JSONata', (t) => {
  const e = compileExpression('a.b', 'test');
  t.is(e.evaluateFast({ a: [{ b: 1 }, { b: 2 }] }), SLOW);
  t.is(e.evaluateFast({ a: { b: [1] } }), SLOW);
  t.is(e.evaluateFast({ a: Buffer.from('x') }), SLOW);
  t.is(e.evaluateFast({ a: null }), SLOW);
  t.is(e.evaluateFast({ a: { b: null } }), null);
  t.is(e.evaluateFast({ a: 'text' }), undefined);
  t.is(e.evaluateFast({}), undefined);
  t.deepEqual(e.evaluateFast({ a: { b: { c: 1, d: undefined } } }), { c: 1 });
});
