// A custom processor module in plain JavaScript, ESM (.js) and CommonJS (.cjs), run by the runtime on a real broker:
// it is resolved next to the topology file, sees each record's topic, partition, offset, timestamp and headers through
// ctx.record, stream time counting the record, keeps a store, and forwards with headers of its own. The driver's test
// of the same modules (test/unit/topology-test-driver.test.ts) expects the same values.
import test from 'ava';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { changelogState, waitForCaughtUp } from '../helpers/counting-app.ts';
import { BROKERS, createTopics, deleteTopics, kafka, readAll, unique } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';

for (const module of ['record-context.js', 'record-context.cjs']) {
  test(`the runtime runs a ${module} module next to the topology: ctx.record, headers in and out, stream time, a store`, async (t) => {
    const app = unique('ctx');
    const dir = mkdtempSync(join(tmpdir(), `${app}-`));
    // the module sits next to the topology file, in a folder of its own: a relative module path resolves there
    copyFileSync(join(FIXTURES, 'modules', module), join(dir, module));
    const input = `${app}-input`;
    const seen = `${app}-seen`;
    writeFileSync(
      join(dir, 'topology.yaml'),
      `app: ${app}
kafka: { brokers: "${BROKERS.join(',')}" }
processing: { commitIntervalMs: 100, stateDir: ./state }
http: { port: 0 }
topics:
  input: { name: ${input}, partitions: 2 }
  seen: { name: ${seen}, partitions: 2 }
stores:
  last: {}
processors:
  - name: p
    type: custom
    input: input
    module: ./${module}
    stores: [last]
    outputs: [seen]
`,
    );
    await createTopics([{ topic: input, numPartitions: 2 }]);
    const producer = kafka('ctx-producer').producer({ idempotent: true });
    await producer.connect();
    await producer.send({ topic: input, acks: -1, messages: [{ key: 'k', value: JSON.stringify({ a: 1 }), partition: 1, timestamp: '1000', headers: { 'trace-id': 't1' } }] });
    await producer.send({ topic: input, acks: -1, messages: [{ key: 'k', value: JSON.stringify({ a: 2 }), partition: 1, timestamp: '2000' }] });
    await producer.disconnect();
    const a = new App(loadTopology(join(dir, 'topology.yaml')), { log: memoryLogger(), httpPort: 0 });
    await a.start();
    try {
      await waitForCaughtUp(`${app}-p`, input);
    } finally {
      await a.stop();
    }
    const out = await readAll([seen]);
    t.deepEqual(
      out.map((r) => [r.partition, JSON.parse(r.value!.toString()), r.headers]),
      [
        [partitionForKey('k', 2), { topic: input, partition: 1, offset: '0', timestamp: 1_000, headers: { 'trace-id': 't1' }, before: null, streamTime: 1_000 }, { 'seen-by': module }],
        [partitionForKey('k', 2), { topic: input, partition: 1, offset: '1', timestamp: 2_000, headers: {}, before: '0', streamTime: 2_000 }, { 'seen-by': module }],
      ],
    );
    t.deepEqual(Object.fromEntries(await changelogState(`${app}-p-last-changelog`)), { k: '1' });
    rmSync(dir, { recursive: true, force: true });
    await deleteTopics([input, seen, `${app}-p-last-changelog`, `${app}-p-dlq`]);
  });
}
