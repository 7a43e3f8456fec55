// The plan of `foldstream retire` (src/app/retire.ts), the last step of a blue/green rebuild: what it deletes, and what
// it refuses — an old version still in the topology, one no projection replaces, a view topic still declared.
import test from 'ava';
import { planRetire } from '../../src/app/retire.ts';
import { parseTopology } from '../../src/topology/load.ts';

const load = (processors: string, topics = '') =>
  parseTopology(
    `app: a
kafka: { brokers: "127.0.0.1:9092" }
processing: { stateDir: /tmp/s }
topics:
  events: { name: a-events, partitions: 3, config: { retention.ms: "-1" } }
  view: { name: a-view, partitions: 3 }
  view2: { name: a-view-2, partitions: 3 }
${topics}processors:
${processors}`,
    '/x/topology.yaml',
    { checkModules: false },
  );
const v = '  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }\n';
const v2 = '  - { name: v2, type: projection, input: events, output: view2, replaces: v, on: { X: { delete: true } } }\n';

test('once the old version has left the topology: its groups, changelogs, repartition and view topic, and local folders; its dead letters kept', (t) => {
  const r = planRetire(load(v2), 'v', { viewTopic: 'a-v-old' });
  t.is(r.kind, 'plan');
  if (r.kind !== 'plan') return;
  t.deepEqual(r.plan.groups, ['a-v', 'a-v-group']);
  t.deepEqual(r.plan.topics, ['a-v-view-changelog', 'a-v-group-groups-changelog', 'a-v-repartition', 'a-v-old']);
  t.deepEqual(r.plan.kept, ['a-v-dlq', 'a-v-group-dlq']);
  t.deepEqual(r.plan.folders, ['/tmp/s/a/v', '/tmp/s/a/v-group']);
  t.is(r.plan.replacedBy, 'v2');
});

test('refused while the old version is in the topology, when nothing replaces it, and for a view topic still declared', (t) => {
  const still = planRetire(load(v + v2), 'v');
  t.like(still, { kind: 'refused' });
  t.regex(still.kind === 'refused' ? still.reasons.join('\n') : '', /"v" is still a processor of \/x\/topology.yaml/);
  const nobody = planRetire(load(v), 'w');
  t.regex(nobody.kind === 'refused' ? nobody.reasons.join('\n') : '', /no projection of .* has `replaces: w`/);
  const declared = planRetire(load(v2), 'v', { viewTopic: 'a-view-2' });
  t.regex(declared.kind === 'refused' ? declared.reasons.join('\n') : '', /topic a-view-2 is still declared in .* \(as "view2", used by v2\)/);
});
