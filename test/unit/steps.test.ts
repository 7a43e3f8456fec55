// Stateless steps in front of processors: filter, map and route, with no broker.
import test from 'ava';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { FIXTURES } from '../helpers/cli.ts';

const topology = `app: steps
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: steps-events, partitions: 3 }
  view: { name: steps-view, partitions: 3, config: { cleanup.policy: compact } }
  audit: { name: steps-audit, partitions: 2 }
  other: { name: steps-other, partitions: 1 }
  signups: { name: steps-signups, partitions: 3 }
processors:
  - name: emails
    type: projection
    input: events
    output: view
    steps:
      - filter: "data.email != 'test@example.com'"
      - map: { data.email: "$lowercase(data.email)", data.domain: "$substringAfter($lowercase(data.email), '@')" }
      - route: { by: eventType, to: { UserCreated: audit }, continue: true }
    on:
      UserCreated: { set: { email: data.email, domain: data.domain } }
      EmailChanged: { set: { email: data.email, domain: data.domain } }
  - name: router
    type: custom
    input: events
    module: ./modules/seen.ts
    outputs: [signups]
    steps:
      - route: { by: "eventType & '/' & $string(eventVersion)", to: { UserCreated/1: signups }, default: other }
`;

let n = 0;
const event = (eventType: string, id: string, v: number, data: Record<string, unknown>): EventEnvelope => ({
  eventId: `e${++n}`,
  eventType,
  eventVersion: 1,
  aggregateType: 'User',
  aggregateId: id,
  aggregateVersion: v,
  timestamp: '2026-01-01T00:00:00.000Z',
  data,
});

test('filter drops records, map rewrites fields from the value as it came in, route with continue forwards and passes on', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology, FIXTURES);
  await d.pipe('events', 'u1', event('UserCreated', 'u1', 1, { email: 'Ann@Example.COM' }), { headers: { trace: 'x' } });
  await d.pipe('events', 'u2', event('UserCreated', 'u2', 1, { email: 'test@example.com' }));
  await d.pipe('events', 'u1', event('EmailChanged', 'u1', 2, { email: 'ANN@other.example' }));
  t.deepEqual(d.output('view').map((r) => [r.key, r.value]), [
    ['u1', { email: 'ann@example.com', domain: 'example.com' }],
    ['u1', { email: 'ann@other.example', domain: 'other.example' }],
  ]);
  // the routed copy is the mapped event, with the input's key and headers
  const audit = d.output<EventEnvelope>('audit');
  t.deepEqual(audit.map((r) => [r.key, r.value.data, r.headers.trace]), [['u1', { email: 'ann@example.com', domain: 'example.com' }, 'x']]);
});

test('route without continue sends each record to the topic of its key or to the default, and the processor sees none', async (t) => {
  const d = await TopologyTestDriver.fromYaml(topology, FIXTURES);
  await d.pipe('events', 'u1', event('UserCreated', 'u1', 1, { email: 'a@x.example' }));
  await d.pipe('events', 'u1', event('EmailChanged', 'u1', 2, { email: 'b@x.example' }));
  t.deepEqual(d.output<EventEnvelope>('signups').map((r) => r.value.eventType), ['UserCreated']);
  t.deepEqual(d.output<EventEnvelope>('other').map((r) => r.value.eventType), ['EmailChanged']);
  t.false(d.output<object>('signups').some((r) => 'seenByProcessor' in r.value), 'the processor saw no record');
});
