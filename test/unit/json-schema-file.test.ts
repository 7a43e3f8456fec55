// topology.schema.json (what editors read, see topology.yaml's first line) is the schema the code validates with.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { topologyJsonSchema } from '../../src/topology/schema.ts';
import { ROOT } from '../helpers/cli.ts';

test('the committed topology.schema.json equals the schema the code exports (regenerate with npm run schema)', (t) => {
  const committed = JSON.parse(readFileSync(`${ROOT}/topology.schema.json`, 'utf8')) as unknown;
  t.deepEqual(committed, topologyJsonSchema());
});

test('foldstream schema --test-file prints the JSON Schema of *.test.yaml files: topology and tests with given/when/then', async (t) => {
  const { testFileJsonSchema } = await import('../../src/topology/schema.ts');
  const s = testFileJsonSchema() as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
  t.truthy(s.properties.topology);
  t.deepEqual(Object.keys(s.properties.tests?.items?.properties ?? {}).filter((k) => ['name', 'given', 'when', 'then'].includes(k)).sort(), ['given', 'name', 'then', 'when']);
});

test("topology.yaml's first line points editors at topology.schema.json, as docs/topology.md shows", (t) => {
  t.is(readFileSync(`${ROOT}/topology.yaml`, 'utf8').split('\n')[0], '# yaml-language-server: $schema=./topology.schema.json');
});
