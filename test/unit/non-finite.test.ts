// Regression (issue 14, defect 8): a number that is not finite (Infinity, NaN) cannot be written as JSON (it becomes
// null). Two increments of 1e308 wrote null into a view while a grouped projection dead-lettered the same event; now
// it is a handler failure everywhere a view, a state or what is sent is finished: the record goes to the dead-letter
// topic (HANDLER_FAILED, with the path), and what was there before stays.
import test from 'ava';
import type { EventEnvelope, Reply } from '../../src/serde/envelope.ts';
import { TopologyTestDriver, type DeadLetter } from '../../src/testing/index.ts';
import type { TopologyInput } from '../../src/topology/schema.ts';
import { FIXTURES } from '../helpers/cli.ts';

const BIG = 1e308;
const base = (topics: TopologyInput['topics'], processors: unknown[]): TopologyInput => ({
  app: 'finite',
  kafka: { brokers: '127.0.0.1:9092' },
  topics,
  processors: processors as TopologyInput['processors'],
});
const events = { name: 'finite-events', partitions: 2 };
const view = { name: 'finite-view', partitions: 2, config: { 'cleanup.policy': 'compact' } };
const codes = (dls: DeadLetter[]) => dls.map((d) => [d.code, d.message]);
const added = (aggregateId: string, n: number) => ({ eventType: 'Added', aggregateType: 'Counter', aggregateId, data: { n } });

test('a projection increment that overflows is a handler failure: dead-lettered, the view keeps its last value', async (t) => {
  const d = await TopologyTestDriver.fromObject(base({ events, view }, [{ name: 'totals', type: 'projection', input: 'events', output: 'view', on: { Added: { increment: { total: 'data.n' } } } }]), FIXTURES);
  await d.pipeEvent(added('c1', BIG));
  await d.pipeEvent(added('c1', BIG));
  t.deepEqual(d.output('view').map((r) => r.value), [{ total: BIG }], 'no null was written into the view');
  t.deepEqual(codes(d.deadLetters('totals')), [['HANDLER_FAILED', 'the view "c1" has Infinity at total, which JSON cannot carry (it would be written as null) (after 1 attempt)']]);
  t.like((await d.store('totals', 'view')).get('c1'), { view: { total: BIG }, version: 1 });
});

test('a grouped projection whose group sum overflows dead-letters the change in its group stage, as its first stage does', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    base({ events, view }, [{ name: 'sums', type: 'projection', input: 'events', output: 'view', on: { Added: { set: { total: 'data.n' } } }, groupBy: { key: "'all'", aggregate: { total: { sum: 'total' } } } }]),
    FIXTURES,
  );
  await d.pipeEvent(added('c1', BIG));
  await d.pipeEvent(added('c2', BIG));
  t.deepEqual(d.output('view').map((r) => r.value), [{ key: 'all', total: BIG }]);
  t.deepEqual(codes(d.deadLetters('sums-group')), [['HANDLER_FAILED', 'the group view "all" has Infinity at total, which JSON cannot carry (it would be written as null) (after 1 attempt)']]);
});

const counters = base({ commands: { name: 'finite-commands', partitions: 2 }, events, replies: { name: 'finite-replies', partitions: 2 } }, [
  {
    name: 'counters',
    type: 'aggregate',
    aggregateType: 'Counter',
    input: 'commands',
    output: { events: 'events', replies: 'replies' },
    initialState: { total: 0 },
    commands: {
      Add: { emit: [{ type: 'Added', data: { n: 'command.data.n', tenfold: 'command.data.n * 10' } }] },
      Bump: { emit: [{ type: 'Added', data: { n: 'command.data.n' } }] },
    },
    evolve: { Added: { total: 'state.total + event.data.n' } },
  },
]);

test('a declarative aggregate whose state or event would hold Infinity is a handler failure: no event, no reply, the state stays', async (t) => {
  const d = await TopologyTestDriver.fromObject(counters, FIXTURES);
  t.like(await d.pipeCommand({ commandType: 'Bump', aggregateId: 'c1', data: { n: BIG } }), { status: 'accepted' });
  t.is(await d.pipeCommand({ commandType: 'Bump', aggregateId: 'c1', data: { n: BIG } }), undefined, 'the state would have total: Infinity');
  t.is(await d.pipeCommand({ commandType: 'Add', aggregateId: 'c2', data: { n: BIG } }), undefined, 'the event would have tenfold: Infinity');
  t.like((await d.store('counters', 'state')).get('c1'), { version: 1, state: { total: BIG } });
  t.false((await d.store('counters', 'state')).has('c2'));
  t.deepEqual(codes(d.deadLetters('counters')), [
    ['HANDLER_FAILED', 'the state of Counter "c1" has Infinity at total, which JSON cannot carry (it would be written as null) (after 1 attempt)'],
    ['HANDLER_FAILED', 'event Added of Counter "c2" has Infinity at tenfold, which JSON cannot carry (it would be written as null) (after 1 attempt)'],
  ]);
  t.is(d.output<EventEnvelope>('events').length, 1);
  t.is(d.output<Reply>('replies').length, 1);
});

test('a saga whose state would hold Infinity is a handler failure, and so is a command it would send with NaN', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    base({ events, commands: { name: 'finite-commands', partitions: 2 } }, [
      { name: 'summing', type: 'saga', input: 'events', output: { commands: 'commands' }, module: './modules/summing-saga.ts' },
      {
        name: 'halving',
        type: 'saga',
        input: 'events',
        output: { commands: 'commands' },
        startOn: 'Added',
        flow: [{ name: 'halve', send: { type: 'Halve', aggregateId: 'sagaId', data: { half: 'start.data.n / 0 - start.data.n / 0' } }, completeOn: 'Halved' }],
      },
    ]),
    FIXTURES,
  );
  await d.pipeEvent(added('s1', BIG), { topic: 'events' });
  await d.pipeEvent(added('s1', BIG), { topic: 'events' });
  t.deepEqual(codes(d.deadLetters('summing')), [['HANDLER_FAILED', 'the state saga "summing" returned has Infinity at sum, which JSON cannot carry (it would be written as null) (after 1 attempt)']]);
  t.like((await d.store('summing', 'sagas')).get('s1'), { state: { sum: BIG } });
  t.deepEqual(d.deadLetters('halving').map((x) => x.code), ['HANDLER_FAILED', 'HANDLER_FAILED'], 'each Added would start it');
  t.deepEqual(d.output('commands'), [], 'no command with null for NaN was sent');
});
