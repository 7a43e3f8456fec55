// Which instance id (and group.instance.id) an app takes: FOLDSTREAM_INSTANCE_ID, then
// processing.staticMembership.instanceId, then the id kept in the state directory; an id Kafka would refuse as a
// group.instance.id fails the start with what to do; a static session timeout kafkajs would refuse fails validation.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { instanceIdentity } from '../../src/app/instance-identity.ts';
import { ConfigError } from '../../src/errors.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { ProcessingSchema, type Topology } from '../../src/topology/schema.ts';

function topology(staticMembership: Record<string, unknown>): Topology {
  // instanceIdentity reads the app name and the processing section only
  return { app: 'ids', processing: ProcessingSchema.parse({ staticMembership }) } as Topology;
}

test('the env var wins, then the topology, then the state directory; a static member uses it as its group.instance.id', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ids-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fromDir = instanceIdentity(topology({ enabled: true }), dir, {});
  t.is(fromDir.source, 'stateDir');
  t.is(fromDir.groupInstanceId, fromDir.instanceId);
  t.is(instanceIdentity(topology({ enabled: true }), dir, {}).instanceId, fromDir.instanceId, 'stable across restarts');
  t.deepEqual(instanceIdentity(topology({ enabled: true, instanceId: 'from-yaml' }), dir, {}), { instanceId: 'from-yaml', source: 'topology', groupInstanceId: 'from-yaml' });
  t.deepEqual(instanceIdentity(topology({ enabled: true, instanceId: 'from-yaml' }), dir, { FOLDSTREAM_INSTANCE_ID: 'pod-2' }), { instanceId: 'pod-2', source: 'env', groupInstanceId: 'pod-2' });
  t.is(instanceIdentity(topology({}), dir, { FOLDSTREAM_INSTANCE_ID: 'pod-2' }).groupInstanceId, undefined, 'no group.instance.id unless enabled');
});

test('an id Kafka refuses as a group.instance.id fails fast with a hint', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ids-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const e = t.throws(() => instanceIdentity(topology({ enabled: true }), dir, { FOLDSTREAM_INSTANCE_ID: 'pod/2' }));
  t.regex(e.message, /FOLDSTREAM_INSTANCE_ID "pod\/2" is not a valid group.instance.id/);
  t.is((e as { code?: string }).code, 'CONFIG_INVALID');
  t.throws(() => topology({ enabled: true, instanceId: 'a b' }), undefined, 'the schema refuses it in the topology');
});

test('a static session timeout that is not above the heartbeat interval is a problem at its line (kafkajs would refuse the consumer)', (t) => {
  const yaml = [
    'app: flow',
    'kafka: { brokers: "127.0.0.1:9092" }',
    'processing:',
    '  heartbeatIntervalMs: 3000',
    '  staticMembership: { enabled: true, sessionTimeoutMs: 3000 }',
    'topics:',
    '  events: { name: events, partitions: 6, config: { retention.ms: "-1" } }',
    'processors:',
    '  - { name: c, type: custom, input: events, module: ./noop.ts }',
  ].join('\n');
  const e = t.throws(() => parseTopology(yaml, '/tmp/flow.yaml', { env: {}, checkModules: false }), { instanceOf: ConfigError });
  t.deepEqual(
    e?.problems.map((p) => `${p.line}:${p.col} ${p.path}`),
    ['5:56 processing.staticMembership.sessionTimeoutMs'],
  );
  t.notThrows(() => parseTopology(yaml.replace('sessionTimeoutMs: 3000', 'sessionTimeoutMs: 60000'), '/tmp/flow.yaml', { env: {}, checkModules: false }));
  // without static membership, processing.sessionTimeoutMs is the one that counts
  t.notThrows(() => parseTopology(yaml.replace('enabled: true', 'enabled: false'), '/tmp/flow.yaml', { env: {}, checkModules: false }));
});
