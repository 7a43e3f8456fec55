// JSONata expressions are bounded in depth, time and sequence length: an expression that does not terminate fails
// its record (HANDLER_FAILED, dead-lettered with the reason) instead of holding its task or exhausting memory.
import test from 'ava';
import { FoldstreamError } from '../../src/errors.ts';
import { compileExpression } from '../../src/processors/expressions.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES } from '../helpers/cli.ts';

// a recursive function without a base case
const RUNAWAY = '($f := function($n) { 1 + $f($n + 1) }; $f(0))';

test('a recursion that does not terminate fails with HANDLER_FAILED when it is too deep', async (t) => {
  const e = await t.throwsAsync(compileExpression(RUNAWAY, 'test').evaluate({}), { instanceOf: FoldstreamError });
  t.is(e?.code, 'HANDLER_FAILED');
  t.regex(e?.message ?? '', /test: JSONata expression .* failed: Stack overflow/);
});

test('an evaluation that runs longer than its time bound, or builds a longer sequence than allowed, fails with HANDLER_FAILED', async (t) => {
  const slow = compileExpression('$sum([1..100000].($sum([1..1000])))', 'slow', { timeout: 1, stack: 1_000, sequence: 1_000_000_000 });
  const e = await t.throwsAsync(slow.evaluate({}), { instanceOf: FoldstreamError });
  t.regex(e?.message ?? '', /slow: JSONata expression .* failed: Evaluation timeout after 1 milliseconds/);
  const long = compileExpression('$map([1..1000], function($x) { $x })', 'long', { timeout: 10_000, stack: 1_000, sequence: 100 });
  const f = await t.throwsAsync(long.evaluate({}), { instanceOf: FoldstreamError });
  t.is(f?.code, 'HANDLER_FAILED');
});

test('a projection rule that recurses without end dead-letters its record, and the next record is projected', async (t) => {
  const d = await TopologyTestDriver.fromYaml(
    `app: bounds
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: bounds-events, partitions: 1 }
  view: { name: bounds-view, partitions: 1 }
processors:
  - name: v
    type: projection
    input: events
    output: view
    on:
      Runaway: { set: { n: "${RUNAWAY}" } }
      Named: { set: { name: data.name } }
`,
    FIXTURES,
  );
  const event = (eventType: string, version: number, data: Record<string, unknown>) => ({
    eventId: `e${version}`,
    eventType,
    eventVersion: 1,
    aggregateType: 'User',
    aggregateId: 'u1',
    aggregateVersion: version,
    timestamp: '2026-01-01T00:00:00.000Z',
    data,
  });
  await d.pipe('events', 'u1', event('Runaway', 1, {}));
  await d.pipe('events', 'u1', event('Named', 2, { name: 'ann' }));
  t.deepEqual(
    d.deadLetters('v').map((r) => [r.headers['foldstream.error.code'], /Stack overflow/.test(r.headers['foldstream.error.message'] ?? '')]),
    [['HANDLER_FAILED', true]],
  );
  t.like(d.output('view').at(-1)?.value, { name: 'ann' });
  await d.close();
});
