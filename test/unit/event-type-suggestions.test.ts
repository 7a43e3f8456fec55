// Regression (issue 14, defect 9): `validate` accepted misspelt event types in a saga's startOn/completeOn/failOn, a
// projection's `on:` keys and maxEventVersion even when every writer of the input is a declarative aggregate whose
// event types are known — the saga then timed out and compensated every instance. Now each is reported at its
// file:line:col with "did you mean"; where the types are not known (a decider module writes the topic) nothing is said.
import test from 'ava';
import { ConfigError, type ConfigProblem } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';

const topology = (writer: string) => `app: typo
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: t-commands, partitions: 1 }
  events: { name: t-events, partitions: 1 }
  view: { name: t-view, partitions: 1, config: { cleanup.policy: compact } }
processors:
  - name: stock
    type: aggregate
    aggregateType: Stock
    input: commands
    output: { events: events }
${writer}
  - name: v
    type: projection
    input: events
    output: view
    maxEventVersion: { StockReserverd: 1 }
    on:
      StockReserve: { set: { x: "1" } }
      LegacyImported: { set: { x: "2" } }
  - name: s
    type: saga
    input: events
    output: { commands: commands }
    startOn: [StockReserved, StockUnavailble]
    flow:
      - name: a
        send: { type: Reserve, aggregateId: sagaId }
        completeOn: StockReservd
        failOn: [{ type: StockUnavailabe, when: "event.aggregateId = sagaId" }]
`;

const declarative = `    commands:
      Reserve:
        emit: [{ type: StockReserved }, { type: StockUnavailable, when: "false" }]
    evolve: {}`;

function problems(yaml: string): ConfigProblem[] {
  try {
    parseTopology(yaml, 'typo.yaml', { checkModules: false });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

test('misspelt event types of a topic only declarative aggregates write get "did you mean" at file:line:col', (t) => {
  const found = problems(topology(declarative));
  const emits = 'is never written to topic "events": aggregate "stock" emits StockReserved, StockUnavailable';
  t.deepEqual(
    found.map((p) => [`${p.line}:${p.col}`, p.path, p.message, p.suggestion]),
    [
      ['21:24', 'processors[1].maxEventVersion.StockReserverd', `event type "StockReserverd" ${emits}`, 'did you mean "StockReserved"?'],
      ['23:7', 'processors[1].on.StockReserve', `event type "StockReserve" ${emits}`, 'did you mean "StockReserved"?'],
      ['29:30', 'processors[2].startOn[1]', `event type "StockUnavailble" ${emits}`, 'did you mean "StockUnavailable"?'],
      ['33:21', 'processors[2].flow[0].completeOn', `event type "StockReservd" ${emits}`, 'did you mean "StockReserved"?'],
      ['34:26', 'processors[2].flow[0].failOn[0].type', `event type "StockUnavailabe" ${emits}`, 'did you mean "StockUnavailable"?'],
    ],
    'a type close to none of the known ones (LegacyImported) may come from an outside producer: not reported',
  );
});

test('where a decider module writes the topic, its event types are not known and nothing new is said', (t) => {
  t.deepEqual(problems(topology('    module: ./stock.ts')), []);
});

test('the correctly spelt topology is valid', (t) => {
  const fixed = topology(declarative)
    .replace('StockReserverd: 1', 'StockReserved: 1')
    .replace('StockReserve:', 'StockReserved:')
    .replace('StockUnavailble', 'StockUnavailable')
    .replace('completeOn: StockReservd', 'completeOn: StockReserved')
    .replace('StockUnavailabe', 'StockUnavailable');
  t.deepEqual(problems(fixed), []);
});
