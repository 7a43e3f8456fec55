// Window processor declarations: mistakes fail fast at their file:line:col with what to do.
import test from 'ava';
import { FoldstreamError, type ConfigProblem } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';

const head = `app: shop
kafka: { brokers: localhost:9092 }
topics:
  events: { name: events, partitions: 3 }
  out: { name: out, partitions: 3 }
processors:
`;

function problems(processors: string): string[] {
  try {
    parseTopology(head + processors, '/tmp/windows.yaml', { env: {}, checkModules: false });
    return [];
  } catch (e) {
    if (!(e instanceof FoldstreamError)) throw e;
    return ((e as FoldstreamError & { problems?: ConfigProblem[] }).problems ?? []).map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`).sort();
  }
}

test('a valid window processor loads, with its defaults', (t) => {
  const { topology } = parseTopology(
    `${head}  - name: hourly
    type: window
    input: events
    window: { kind: tumbling, sizeMs: 3600000 }
    aggregate: { orders: count }
`,
    '/tmp/windows.yaml',
    { env: {}, checkModules: false },
  );
  const p = topology.processors[0]!;
  t.is(p.type, 'window');
  if (p.type !== 'window') return;
  t.deepEqual([p.emit, p.late, p.time, p.window.graceMs, p.window.retentionMs], ['update', 'drop', 'event', 0, undefined]);
});

test('window mistakes: retention below grace, a hop above the size, a reserved field, module and aggregate, an unknown output, a kind without its size', (t) => {
  t.deepEqual(
    problems(`  - name: a
    type: window
    input: events
    output: outs
    window: { kind: hopping, sizeMs: 600000, advanceMs: 900000, graceMs: 60000, retentionMs: 1000 }
    aggregate: { start: count }
    module: ./reducer.ts
  - name: b
    type: window
    input: events
    window: { kind: session, sizeMs: 600000 }
    aggregate: { n: count }
`),
    [
      '10:13 processors[0].output: topic "outs" is not declared under topics:',
      '11:57 processors[0].window.advanceMs: advanceMs (900000) is above sizeMs (600000): records between windows would count nowhere',
      '11:94 processors[0].window.retentionMs: retentionMs (1000) is below graceMs (60000): a window would be deleted while it still takes late records',
      '12:16 processors[0].aggregate: give either `aggregate:` or `module:`, not both',
      '12:25 processors[0].aggregate.start: `start` is a field of every window result (key, start, end, removed, value)',
      '17:13 processors[1].window.gapMs: missing required key "gapMs" (expected number)',
      '17:30 processors[1].window.sizeMs: unknown key "sizeMs"',
    ],
  );
});
