// Regression (issue 14, defect 4): keys of state are data. A client-chosen id such as "__proto__" becomes a key of a
// state, a view or saga state, and must round-trip exactly through every encoding (msgpack stores and changelogs,
// msgpack and JSON topics) and every declarative rule — it was renamed to "__proto_" by msgpackr and dropped by
// `obj[key] = value`, so in the orders example a declined order "__proto__" kept its reservation (stock 8, not 10).
import test from 'ava';
import { join } from 'node:path';
import { getPath, setPath, unsetPath } from '../../src/processors/field-paths.ts';
import { decode, encode } from '../../src/serde/codecs.ts';
import { decodeValue, encodeValue } from '../../src/state/value-codec.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES, ROOT } from '../helpers/cli.ts';

/** Plain data with the awkward keys, nested and in arrays, built the way JSON.parse builds it (own properties). */
const awkward = () => JSON.parse('{"__proto__": {"a": 1}, "constructor": 2, "prototype": 3, "__proto_": 4, "hasOwnProperty": 5, "list": [{"__proto__": 6}], "n": {"toString": 7}}');

test('store values, changelogs and msgpack and JSON topics give back every key exactly, "__proto__" too', (t) => {
  const v = awkward();
  for (const [what, back] of [
    ['store value', decodeValue(encodeValue(v))],
    ['msgpack topic', decode('msgpack', encode('msgpack', v))],
    ['json topic', decode('json', encode('json', v))],
  ] as const) {
    t.deepEqual(Object.keys(back as object), Object.keys(v), what);
    t.is(JSON.stringify(back), JSON.stringify(v), what);
    t.is(Object.getPrototypeOf(back), Object.prototype, `${what}: no prototype was set from data`);
  }
  t.deepEqual(decodeValue(encodeValue({ plain: [1, 'x', null, true] })), { plain: [1, 'x', null, true] });
});

test('field paths read and write own fields only: "__proto__" is set as a field, "constructor" is not found on Object.prototype', (t) => {
  const o: Record<string, unknown> = {};
  t.is(getPath(o, 'constructor'), undefined);
  t.is(getPath(o, '__proto__'), undefined);
  setPath(o, '__proto__.x', 1);
  setPath(o, 'constructor', 2);
  t.is(JSON.stringify(o), '{"__proto__":{"x":1},"constructor":2}');
  t.is(Object.getPrototypeOf(o), Object.prototype);
  t.is(getPath(o, '__proto__.x'), 1);
  unsetPath(o, '__proto__.x');
  t.is(JSON.stringify(o), '{"__proto__":{},"constructor":2}');
});

test('orders example: a declined order "__proto__" gives its reserved stock back (declarative aggregate, saga, $merge)', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'examples/orders/topology.yaml'));
  await d.pipeCommand({ commandType: 'AddStock', aggregateId: 'sku-x', data: { quantity: 10 } }, { topic: 'inventory-commands' });
  await d.pipeCommand({ commandType: 'PlaceOrder', aggregateId: '__proto__', data: { customerId: 'c1', sku: 'sku-x', quantity: 2, amount: 5000 } }, { topic: 'order-commands' });
  t.deepEqual(
    d.output<{ eventType: string; data: unknown }>('inventory-events').map((r) => [r.value.eventType, r.value.data]),
    [
      ['StockAdded', { quantity: 10 }],
      ['StockReserved', { orderId: '__proto__', quantity: 2 }],
      ['StockReleased', { orderId: '__proto__', quantity: 2 }],
    ],
  );
  t.deepEqual((await d.store('inventory', 'state')).get('sku-x'), { version: 3, state: { available: 10, reserved: {} } });
  t.like((await d.store('orders', 'state')).get('__proto__'), { state: { status: 'CANCELLED' } });
});

test('a reservation under "__proto__" is kept in the stock state as a key of its own', async (t) => {
  const d = await TopologyTestDriver.fromFile(join(ROOT, 'examples/orders/topology.yaml'));
  await d.pipeCommand({ commandType: 'AddStock', aggregateId: 'sku-x', data: { quantity: 10 } }, { topic: 'inventory-commands' });
  await d.pipeCommand({ commandType: 'ReserveStock', aggregateId: 'sku-x', data: { orderId: '__proto__', quantity: 3 } }, { topic: 'inventory-commands' });
  await d.pipeCommand({ commandType: 'ReserveStock', aggregateId: 'sku-x', data: { orderId: '__proto_', quantity: 4 } }, { topic: 'inventory-commands' });
  const stored = (await d.store<{ state: { reserved: object } }>('inventory', 'state')).get('sku-x')!;
  t.is(JSON.stringify(stored.state.reserved), '{"__proto__":3,"__proto_":4}');
});

test('a module aggregate keeps "__proto__" and "constructor" as state keys, count by count', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'tally',
      kafka: { brokers: '127.0.0.1:9092' },
      topics: { commands: { name: 'tally-commands', partitions: 2 }, events: { name: 'tally-events', partitions: 2 } },
      processors: [{ name: 'tally', type: 'aggregate', aggregateType: 'Tally', input: 'commands', output: { events: 'events' }, module: './modules/tally.ts' }],
    },
    FIXTURES,
  );
  for (const [name, n] of [['__proto__', 1], ['constructor', 10], ['__proto__', 2], ['constructor', 20]] as const) {
    await d.pipeCommand({ commandType: 'Tally', aggregateId: 't1', data: { name, n } });
  }
  const stored = (await d.store<{ state: object }>('tally', 'state')).get('t1')!;
  t.is(JSON.stringify(stored.state), '{"__proto__":3,"constructor":30}');
});

test('a projection and a saga keep "__proto__" keys of their views and state across events', async (t) => {
  const d = await TopologyTestDriver.fromObject(
    {
      app: 'keys',
      kafka: { brokers: '127.0.0.1:9092' },
      topics: {
        events: { name: 'keys-events', partitions: 2 },
        view: { name: 'keys-view', partitions: 2, config: { 'cleanup.policy': 'compact' } },
        commands: { name: 'keys-commands', partitions: 2 },
      },
      processors: [
        { name: 'counts', type: 'projection', input: 'events', output: 'view', on: { Counted: { set: { counts: '$merge([{}, $view.counts, { data.name: $sum([$lookup($view.counts, data.name), data.n]) }])' } } } },
        {
          name: 'relay',
          type: 'saga',
          input: 'events',
          output: { commands: 'commands' },
          startOn: 'Begun',
          flow: [
            { name: 'wait', send: { type: 'Wait', aggregateId: 'sagaId' }, completeOn: 'Counted' },
            { name: 'echo', send: { type: 'Echo', aggregateId: 'sagaId', data: { items: 'start.data.items' } }, completeOn: 'Echoed' },
          ],
        },
      ],
    },
    FIXTURES,
  );
  await d.pipeEvent({ eventType: 'Begun', aggregateType: 'A', aggregateId: 'a1', data: { items: JSON.parse('{"__proto__": 5, "constructor": 6}') } });
  await d.pipeEvent({ eventType: 'Counted', aggregateType: 'A', aggregateId: 'a1', data: { name: '__proto__', n: 1 } });
  await d.pipeEvent({ eventType: 'Counted', aggregateType: 'A', aggregateId: 'a1', data: { name: '__proto__', n: 2 } });
  t.is(JSON.stringify(d.output('view').at(-1)!.value), '{"counts":{"__proto__":3}}');
  const echo = d.output<{ commandType: string; data: object }>('commands').map((r) => r.value).filter((c) => c.commandType === 'Echo');
  t.is(echo.length, 1);
  t.is(JSON.stringify(echo[0]!.data), '{"items":{"__proto__":5,"constructor":6}}');
});
