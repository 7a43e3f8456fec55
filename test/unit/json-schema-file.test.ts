// topology.schema.json (what editors read, see topology.yaml's first line) is the schema the code validates with.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { testFileJsonSchema, topologyJsonSchema } from '../../src/topology/schema.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

test('the committed topology.schema.json equals the schema the code exports (regenerate with npm run schema)', (t) => {
  const committed = JSON.parse(readFileSync(`${ROOT}/topology.schema.json`, 'utf8')) as unknown;
  t.deepEqual(committed, topologyJsonSchema());
});

test('the JSON Schema of *.test.yaml files has topology, and tests with given/when/then', (t) => {
  const s = testFileJsonSchema() as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
  t.truthy(s.properties.topology);
  t.deepEqual(Object.keys(s.properties.tests?.items?.properties ?? {}).filter((k) => ['name', 'given', 'when', 'then'].includes(k)).sort(), ['given', 'name', 'then', 'when']);
});

test("topology.yaml's first line points editors at topology.schema.json, as docs/topology.md shows", (t) => {
  t.is(readFileSync(`${ROOT}/topology.yaml`, 'utf8').split('\n')[0], '# yaml-language-server: $schema=./topology.schema.json');
});

test('foldstream schema prints the JSON Schema topology.schema.json holds, and nothing else', async (t) => {
  const r = await runCli(['schema']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const printed = JSON.parse(r.stdout) as { $schema: string; type: string; properties: Record<string, unknown>; required: string[] };
  t.deepEqual(printed, JSON.parse(readFileSync(`${ROOT}/topology.schema.json`, 'utf8')) as unknown);
  t.is(printed.$schema, 'http://json-schema.org/draft-07/schema#');
  t.is(printed.type, 'object');
  for (const key of ['app', 'kafka', 'topics', 'stores', 'processors', 'upcasters', 'tests']) t.truthy(printed.properties[key], key);
  t.deepEqual(printed.required, ['app', 'kafka', 'topics', 'processors']);
});

test('foldstream schema --test-file prints the JSON Schema of test files, not that of topology.yaml', async (t) => {
  const r = await runCli(['schema', '--test-file']);
  t.is(r.code, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
  t.deepEqual(printed, testFileJsonSchema() as unknown);
  t.truthy(printed.properties.tests);
  t.falsy(printed.properties.app);
});
