// `foldstream dlq list|show|replay` on the real broker: records dead-lettered by a bug are sent back after the fix and
// processed once; a redrive killed with kill -9 mid-way and run again sends every dead letter exactly once.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDRIVE_HEADER } from '../../src/app/dead-letters.ts';
import { DLQ_HEADERS } from '../../src/runtime/record-handler.ts';
import { FIXTURES, ROOT, runCli } from '../helpers/cli.ts';
import { checkCounts, sortedObject, waitForCaughtUp } from '../helpers/counting-app.ts';
import { createTopics, deleteTopics, kafka, openTransactions, readAll, unique } from '../helpers/kafka.ts';
import { Instance, waitFor } from '../helpers/processes.ts';

const PARTITIONS = 3;

function buggyApp() {
  const app = unique('redrive');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  const input = `${app}-input`;
  const output = `${app}-counts`;
  writeFileSync(
    file,
    [
      `app: ${app}`,
      'kafka: { brokers: "127.0.0.1:9092" }',
      'processing: { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 }',
      'http: { port: 0 }',
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  input: { name: ${input}, partitions: ${PARTITIONS} }`,
      `  counts: { name: ${output}, partitions: ${PARTITIONS} }`,
      'stores:',
      '  counts: {}',
      'processors:',
      '  - name: counter',
      '    type: custom',
      '    input: input',
      `    module: ${join(FIXTURES, 'modules/buggy-counter.ts')}`,
      '    stores: [counts]',
      '    outputs: [counts]',
      '    onError: { policy: dlq, retry: { attempts: 0 } }',
      '',
    ].join('\n'),
  );
  const topics = [input, output, `${app}-counter-counts-changelog`, `${app}-counter-dlq`, `${app}-counter-dlq-redriven`];
  return { app, dir, file, input, output, dlq: `${app}-counter-dlq`, markers: `${app}-counter-dlq-redriven`, fixed: join(dir, 'fixed'), topics };
}

test('records dead-lettered by a bug are listed, shown, and after the fix sent back and processed once; a second redrive sends nothing', async (t) => {
  const a = buggyApp();
  let instance: Instance | undefined;
  t.teardown(async () => {
    instance?.kill();
    if (!process.env.KEEP_TEST_DIRS) rmSync(a.dir, { recursive: true, force: true });
    await deleteTopics(a.topics);
  });
  await createTopics([{ topic: a.input, numPartitions: PARTITIONS }]);
  instance = new Instance(a.file, { stateDir: join(a.dir, 'state'), env: { BUGGY_COUNTER_FIXED: a.fixed } });
  await instance.waitReady();

  // 30 records over 10 keys, every fifth one poison: 6 dead letters
  const model = new Map<string, number>();
  const producer = kafka('redrive-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < 30; i++) {
    const key = `key-${i % 10}`;
    model.set(key, (model.get(key) ?? 0) + 1);
    messages.push({ key, value: JSON.stringify({ i, poison: i % 5 === 0 }) });
  }
  await producer.send({ topic: a.input, messages, acks: -1 });
  await producer.disconnect();
  await waitForCaughtUp(`${a.app}-counter`, a.input);
  t.is((await readAll([a.dlq])).length, 6, 'the bug dead-lettered the six poison records');

  const listed = await runCli(['dlq', 'list', a.file, 'counter']);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /^6 dead letters, 0 already sent back$/m);
  t.regex(listed.stdout, /^ {2}HANDLER_FAILED: 6$/m);
  t.regex(listed.stdout, /counter bug: poison record/);

  const ofKey5 = await runCli(['dlq', 'list', a.file, 'counter', '--key', 'key-5', '--json']);
  const lines = ofKey5.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; key: string; value: string });
  t.deepEqual(lines.map((l) => [l.key, (JSON.parse(l.value) as { i: number }).i]).sort(), [['key-5', 15], ['key-5', 25], ['key-5', 5]], 'poison records of key-5');
  const id = lines[0]!.id.slice(a.dlq.length + 1);
  const shown = await runCli(['dlq', 'show', a.file, 'counter', id]);
  t.is(shown.code, 0, shown.stderr);
  const one = JSON.parse(shown.stdout) as { id: string; code: string; key: string; headers: Record<string, string>; source: { topic: string; partition: number; offset: string } };
  t.is(one.id, lines[0]!.id);
  t.is(one.code, 'HANDLER_FAILED');
  t.is(one.key, 'key-5');
  t.is(one.source.topic, a.input);
  t.is(one.headers[DLQ_HEADERS.offset], one.source.offset);
  const none = await runCli(['dlq', 'show', a.file, 'counter', '--key', 'key-1']);
  t.is(none.code, 1, 'no dead letter of key-1');

  const unfiltered = await runCli(['dlq', 'replay', a.file, 'counter']);
  t.not(unfiltered.code, 0, 'a redrive needs a filter or --all');
  t.regex(unfiltered.stderr, /--all/);

  const dry = await runCli(['dlq', 'replay', a.file, 'counter', '--all', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^6 to send back, 0 of the 6 chosen already sent back/m);
  t.is(dry.stdout.match(/^would send /gm)?.length, 6);
  t.is((await readAll([a.input])).length, 30, 'a dry run sends nothing');

  writeFileSync(a.fixed, 'the fix is deployed\n');
  const sent = await runCli(['dlq', 'replay', a.file, 'counter', '--code', 'HANDLER_FAILED', '--batch-size', '4']);
  t.is(sent.code, 0, sent.stderr);
  t.regex(sent.stdout, /^sent back 6 dead letters$/m);

  await waitForCaughtUp(`${a.app}-counter`, a.input);
  const check = checkCounts(await readAll([a.output]));
  t.deepEqual(check.duplicates, []);
  t.deepEqual(check.gaps, []);
  t.deepEqual(sortedObject(check.counts), sortedObject(model), 'every record counted once: 24 at first, the 6 poison ones after the redrive');
  t.is((await readAll([a.dlq])).length, 6, 'nothing dead-lettered again');

  const again = await runCli(['dlq', 'replay', a.file, 'counter', '--all']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^0 to send back, 6 of the 6 chosen already sent back/m);
  t.regex(again.stdout, /^sent back 0 dead letters; 6 had been sent back by an earlier redrive/m);
  t.is((await readAll([a.input])).filter((r) => r.headers[REDRIVE_HEADER]).length, 6, 'each dead letter sent back once');
  const relisted = await runCli(['dlq', 'list', a.file, 'counter']);
  t.regex(relisted.stdout, /^6 dead letters, 6 already sent back$/m);
});

/** Dead letters as the record handler writes them, straight onto the DLQ (no app needed to redrive them). */
async function writeDeadLetters(dlq: string, source: string, count: number): Promise<void> {
  const producer = kafka('dlq-writer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const byPartition = new Map<number, number>();
    const messages = [];
    for (let i = 0; i < count; i++) {
      const partition = i % PARTITIONS;
      const offset = byPartition.get(partition) ?? 0;
      byPartition.set(partition, offset + 1);
      messages.push({
        partition,
        key: `key-${i}`,
        value: JSON.stringify({ i }),
        headers: {
          [DLQ_HEADERS.code]: 'HANDLER_FAILED',
          [DLQ_HEADERS.message]: 'counter bug (after 1 attempt)',
          [DLQ_HEADERS.topic]: source,
          [DLQ_HEADERS.partition]: String(partition),
          [DLQ_HEADERS.offset]: String(offset),
          [DLQ_HEADERS.timestamp]: String(Date.now()),
          [DLQ_HEADERS.processor]: 'counter',
        },
      });
    }
    await producer.send({ topic: dlq, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

test('a redrive killed with kill -9 mid-way and run again sends every dead letter exactly once', async (t) => {
  const a = buggyApp();
  t.teardown(async () => {
    if (!process.env.KEEP_TEST_DIRS) rmSync(a.dir, { recursive: true, force: true });
    await deleteTopics(a.topics);
  });
  const COUNT = 300;
  await createTopics([
    { topic: a.input, numPartitions: PARTITIONS },
    { topic: a.dlq, numPartitions: PARTITIONS },
  ]);
  await writeDeadLetters(a.dlq, a.input, COUNT);

  // small transactions with a pause between them, so that the kill lands in the middle
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'dlq', 'replay', a.file, 'counter', '--all', '--batch-size', '5', '--pause-ms', '40'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  await waitFor(() => [...stderr.matchAll(/sent back:? (\d+)\/\d+/g)].some((m) => Number(m[1]) > 0) || child.exitCode !== null, 120_000, 'the redrive to send some');
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL', `the redrive was killed, not finished: ${stderr}`);

  const redriven = async () => (await readAll([a.input])).filter((r) => r.headers[REDRIVE_HEADER]);
  const before = (await redriven()).length;
  t.true(before > 0 && before < COUNT, `killed mid-way: ${before} of ${COUNT} sent before the kill`);

  const rerun = await runCli(['dlq', 'replay', a.file, 'counter', '--all', '--batch-size', '50']);
  t.is(rerun.code, 0, rerun.stderr);

  const sent = await redriven();
  const times = new Map<string, number>();
  for (const r of sent) times.set(r.headers[REDRIVE_HEADER]!, (times.get(r.headers[REDRIVE_HEADER]!) ?? 0) + 1);
  t.deepEqual(
    [...times].filter(([, n]) => n > 1),
    [],
    'no dead letter sent twice',
  );
  t.is(times.size, COUNT, 'every dead letter sent');
  t.is(sent.length, COUNT);
  // each went back to its source partition with its key and value, without the dead-letter headers
  const first = sent.find((r) => r.key === 'key-4')!;
  t.is(first.partition, 4 % PARTITIONS);
  t.deepEqual(JSON.parse(String(first.value)), { i: 4 });
  t.is(first.headers[DLQ_HEADERS.code], undefined);
  t.deepEqual(await openTransactions(a.input), [], 'no transaction left open on the source topic');
  t.regex(rerun.stdout, new RegExp(`^sent back ${COUNT - before} dead letters; ${before} had been sent back by an earlier redrive`, 'm'));

  // one more, from a topic that is not an input of the processor: refused before anything is sent
  const producer = kafka('dlq-writer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: a.dlq,
    acks: -1,
    messages: [
      { partition: 0, key: 'key-x', value: '{}', headers: { [DLQ_HEADERS.code]: 'HANDLER_FAILED', [DLQ_HEADERS.topic]: a.output, [DLQ_HEADERS.partition]: '0', [DLQ_HEADERS.offset]: '0' } },
      { partition: 1, key: 'key-y', value: '{}', headers: { [DLQ_HEADERS.code]: 'HANDLER_FAILED', [DLQ_HEADERS.topic]: a.input, [DLQ_HEADERS.partition]: '1', [DLQ_HEADERS.offset]: '99' } },
    ],
  });
  await producer.disconnect();
  const refused = await runCli(['dlq', 'replay', a.file, 'counter', '--all']);
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /^DLQ_REDRIVE_REFUSED: dead letter .* cannot be sent back: its source topics\.counts is no longer an input of counter/m);
  t.is((await redriven()).length, COUNT, 'nothing sent when one of the chosen is refused');
});
