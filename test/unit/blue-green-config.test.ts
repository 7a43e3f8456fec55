// `replaces:` (blue/green rebuild of a projection, docs/projections.md#blue-green-rebuild): a new version is a
// projection of its own with a view topic of its own, replacing one projection; each mistake is refused at its node.
import test from 'ava';
import { ConfigError } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';

const problems = (yaml: string) => {
  try {
    parseTopology(yaml, 'inline.yaml', { checkModules: false });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}`);
    throw e;
  }
  return [];
};

// lines 1-9; processors from line 10
const head = `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: a-commands, partitions: 3 }
  events: { name: a-events, partitions: 3, config: { retention.ms: "-1" } }
  view: { name: a-view, partitions: 3 }
  view2: { name: a-view-2, partitions: 3 }
  view3: { name: a-view-3, partitions: 3 }
processors:
  - { name: users, type: aggregate, aggregateType: User, input: commands, output: { events: events }, module: ./user.ts }
`;
const rules = 'on: { X: { delete: true } }';

test('a new version beside the old one, and alone after the old one has left the topology, is valid', (t) => {
  t.deepEqual(problems(`${head}  - { name: v, type: projection, input: events, output: view, ${rules} }\n  - { name: v2, type: projection, input: events, output: view2, replaces: v, ${rules} }\n`), []);
  t.deepEqual(problems(`${head}  - { name: v2, type: projection, input: events, output: view2, replaces: v, ${rules} }\n`), []);
});

test('refused: the same view topic, itself, a non-projection, and two new versions of one projection', (t) => {
  t.deepEqual(problems(`${head}  - { name: v, type: projection, input: events, output: view, ${rules} }\n  - { name: v2, type: projection, input: events, output: view, replaces: v, ${rules} }\n`).filter((p) => p.includes('same view topic')), [
    '12:58 processors[2].output projection "v2" replaces "v" but writes the same view topic "view"',
  ]);
  t.regex(problems(`${head}  - { name: v, type: projection, input: events, output: view, replaces: v, ${rules} }\n`).join('\n'), /11:\d+ processors\[1\]\.replaces projection "v" cannot replace itself/);
  t.regex(problems(`${head}  - { name: v2, type: projection, input: events, output: view2, replaces: users, ${rules} }\n`).join('\n'), /11:\d+ processors\[1\]\.replaces "users" is not a projection \(it is the aggregate processor of that name\)/);
  t.regex(
    problems(`${head}  - { name: v, type: projection, input: events, output: view, ${rules} }\n  - { name: v2, type: projection, input: events, output: view2, replaces: v, ${rules} }\n  - { name: v3, type: projection, input: events, output: view3, replaces: v, ${rules} }\n`).join('\n'),
    /projections "v2" and "v3" both replace "v"/,
  );
});
