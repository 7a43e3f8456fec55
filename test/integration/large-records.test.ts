// Large outputs: a partition's share of a transaction above the broker's message.max.bytes is sent in several
// requests; one output above maxRecordBytes dead-letters its input record instead of failing every retry.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { waitForCaughtUp } from '../helpers/counting-app.ts';
import { BROKERS, createTopics, deleteTopics, kafka, readAll, unique } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';

test('outputs that add up to several MiB in one partition commit in one transaction, and an oversize output is dead-lettered', async (t) => {
  const app = unique('large');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    `app: ${app}
kafka: { brokers: "${BROKERS.join(',')}" }
processing: { commitIntervalMs: 60000, maxBufferedRecords: 100000, maxRecordBytes: 400000 }
http: { enabled: false }
modules: { root: ${FIXTURES} }
topics:
  in: { name: ${app}-in, partitions: 1 }
  out: { name: ${app}-out, partitions: 1 }
processors:
  - name: bloat
    type: custom
    input: in
    module: ${join(FIXTURES, 'modules/bloat.ts')}
    outputs: [out]
`,
  );
  await createTopics([{ topic: `${app}-in`, numPartitions: 1 }]);
  const producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // 40 outputs of 200 KB (8 MB in one partition) and, in the middle, one of 500 KB (> maxRecordBytes)
  const inputs = Array.from({ length: 41 }, (_, id) => ({ id, bytes: id === 20 ? 500_000 : 200_000 }));
  await producer.send({ topic: `${app}-in`, messages: inputs.map((v) => ({ key: `k${v.id}`, value: JSON.stringify(v) })) });
  await producer.disconnect();
  const log = memoryLogger();
  const running = new App(loadTopology(file), { log, stateDir: join(dir, 'state') });
  await running.start();
  try {
    await waitForCaughtUp(`${app}-bloat`, `${app}-in`);
  } finally {
    await running.stop();
  }
  const out = (await readAll([`${app}-out`])).map((r) => (JSON.parse(String(r.value)) as { id: number }).id);
  t.deepEqual(out, inputs.filter((v) => v.id !== 20).map((v) => v.id));
  const dlq = await readAll([`${app}-bloat-dlq`]);
  t.is(dlq.length, 1);
  t.is(dlq[0]!.headers['foldstream.error.code'], 'RECORD_TOO_LARGE');
  t.is(dlq[0]!.key, 'k20');
  t.is(log.events('task.transaction_failed').length, 0, 'no transaction failed');
  rmSync(dir, { recursive: true, force: true });
  await deleteTopics([`${app}-in`, `${app}-out`, `${app}-bloat-dlq`]);
});
