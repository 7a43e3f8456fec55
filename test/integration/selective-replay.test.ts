// `foldstream replay` on the real broker, with the app running: views left wrong by a bug are rebuilt for the named
// aggregates only (every other view byte-identical in the store, nothing else written to the view topic), a second
// replay gives the same result, and the app answers queries throughout.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, runCli } from '../helpers/cli.ts';
import { waitForCaughtUp } from '../helpers/counting-app.ts';
import { createTopics, deleteTopics, kafka, readAll, unique } from '../helpers/kafka.ts';
import { Instance } from '../helpers/processes.ts';

const PARTITIONS = 3;
const ACCOUNTS = 8;
const DEPOSITS = 3;

interface Stored {
  view: { balance: number; deposits: number } | null;
  version: number;
  replay?: unknown;
}

test('replay rebuilds exactly the named views through the running projection, twice to the same result, while it serves queries', async (t) => {
  const app = unique('replay');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  const events = `${app}-events`;
  const balances = `${app}-balances`;
  const fixed = join(dir, 'fixed');
  writeFileSync(
    file,
    [
      `app: ${app}`,
      'kafka: { brokers: "127.0.0.1:9092" }',
      'processing: { commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 }',
      'http: { port: 0 }',
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  events: { name: ${events}, partitions: ${PARTITIONS}, config: { retention.ms: "-1" } }`,
      `  balances: { name: ${balances}, partitions: ${PARTITIONS}, config: { cleanup.policy: compact } }`,
      'processors:',
      '  - name: balance',
      '    type: projection',
      '    input: events',
      '    output: balances',
      `    module: ${join(FIXTURES, 'modules/buggy-balance.ts')}`,
      '',
    ].join('\n'),
  );
  let instance: Instance | undefined;
  t.teardown(async () => {
    instance?.kill();
    if (!process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    await deleteTopics([events, balances, `${app}-balance-view-changelog`, `${app}-balance-dlq`, `${app}-balance-replay`]);
  });
  await createTopics([{ topic: events, numPartitions: PARTITIONS, configEntries: [{ name: 'retention.ms', value: '-1' }] }]);
  instance = new Instance(file, { stateDir: join(dir, 'state'), env: { BUGGY_BALANCE_FIXED: fixed } });
  await instance.waitReady();

  // account a<i> gets deposits of i+1, 10(i+1), 100(i+1); a7's are dated 2020, the others 2026
  const producer = kafka('replay-events').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    for (let v = 1; v <= DEPOSITS; v++) {
      const id = `a${i}`;
      const year = i === 7 ? 2020 : 2026;
      messages.push({
        key: id,
        value: JSON.stringify({
          eventId: `${id}-${v}`,
          eventType: 'Deposited',
          eventVersion: 1,
          aggregateType: 'Account',
          aggregateId: id,
          aggregateVersion: v,
          timestamp: new Date(Date.UTC(year, 0, 1, 0, 0, v)).toISOString(),
          data: { amount: (i + 1) * 10 ** (v - 1) },
        }),
      });
    }
  }
  await producer.send({ topic: events, messages, acks: -1 });
  await producer.disconnect();
  await waitForCaughtUp(`${app}-balance`, events);

  const port = instance.httpPort!;
  const store = async (): Promise<Map<string, Stored>> => {
    const res = await fetch(`http://127.0.0.1:${port}/stores/balance/view?limit=1000`);
    const body = (await res.json()) as { entries: { key: string; value: Stored }[]; unavailable: unknown[] };
    t.deepEqual(body.unavailable, []);
    return new Map(body.entries.map((e) => [e.key, e.value]));
  };
  const expected = (i: number) => (i + 1) * 111;
  const before = await store();
  t.is(before.size, ACCOUNTS);
  for (let i = 0; i < ACCOUNTS; i++) t.deepEqual(before.get(`a${i}`), { view: { balance: 2 * expected(i), deposits: 3 }, version: 3 }, 'the bug counted every deposit twice');
  const viewRecordsBefore = (await readAll([balances])).length;

  writeFileSync(fixed, 'deployed\n');

  // the app keeps answering while the replay runs: a1's view is always there, old or rebuilt, never missing
  let polling = true;
  const answers: { status: number; balance: number | undefined }[] = [];
  const poll = (async () => {
    while (polling) {
      const res = await fetch(`http://127.0.0.1:${port}/stores/balance/view/a1`);
      const body = (await res.json()) as { value?: Stored };
      answers.push({ status: res.status, balance: body.value?.view?.balance });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const first = await runCli(['replay', file, 'balance', '--aggregates', 'a1,a3']);
  polling = false;
  await poll;
  t.is(first.code, 0, first.stdout + first.stderr);
  t.regex(first.stdout, /^rebuild a1 from 3 events \(up to version 3, partition \d\)$/m);
  t.regex(first.stdout, /^rebuilt 2 of 2 views$/m);
  t.true(answers.length > 0);
  t.deepEqual(answers.filter((a) => a.status !== 200), [], 'every query during the replay answered');
  t.deepEqual(
    answers.filter((a) => a.balance !== 2 * expected(1) && a.balance !== expected(1)),
    [],
    'a1 was either the old view or the rebuilt one, never a half-built one',
  );

  const after = await store();
  t.deepEqual(after.get('a1'), { view: { balance: expected(1), deposits: 3 }, version: 3 }, 'a1 rebuilt with the fix');
  t.deepEqual(after.get('a3'), { view: { balance: expected(3), deposits: 3 }, version: 3 }, 'a3 rebuilt with the fix');
  for (const [key, entry] of before) if (key !== 'a1' && key !== 'a3') t.deepEqual(after.get(key), entry, `${key} untouched`);
  const written = (await readAll([balances])).slice(0);
  t.is(written.length, viewRecordsBefore + 2, 'one view record each for a1 and a3, nothing for the others');
  const latest = new Map(written.map((r) => [r.key, JSON.parse(String(r.value)) as { balance: number }]));
  t.is(latest.get('a1')!.balance, expected(1));
  t.is(latest.get('a0')!.balance, 2 * expected(0));

  const second = await runCli(['replay', file, 'balance', '--aggregates', 'a1,a3']);
  t.is(second.code, 0, second.stdout + second.stderr);
  t.deepEqual(await store(), after, 'a second replay gives the same views');

  // by time: only a7 has events dated in 2020
  const byTime = await runCli(['replay', file, 'balance', '--from', '2020-01-01T00:00:00Z', '--to', '2021-01-01T00:00:00Z', '--dry-run']);
  t.is(byTime.code, 0, byTime.stderr);
  t.regex(byTime.stdout, /^would rebuild a7 from 3 events/m);
  t.regex(byTime.stdout, /^1 view to rebuild/m);
  t.deepEqual(await store(), after, 'a dry run changes nothing');
});

test('live events of the aggregate during its replay: a stale rebuild is sent again, and the view ends with every deposit counted once', async (t) => {
  const app = unique('replay-live');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const file = join(dir, 'topology.yaml');
  const events = `${app}-events`;
  const balances = `${app}-balances`;
  const fixed = join(dir, 'fixed');
  writeFileSync(
    file,
    [
      `app: ${app}`,
      'kafka: { brokers: "127.0.0.1:9092" }',
      'processing: { commitIntervalMs: 50, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 }',
      'http: { port: 0 }',
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  events: { name: ${events}, partitions: ${PARTITIONS}, config: { retention.ms: "-1" } }`,
      `  balances: { name: ${balances}, partitions: ${PARTITIONS}, config: { cleanup.policy: compact } }`,
      'processors:',
      '  - { name: balance, type: projection, input: events, output: balances, module: ' + join(FIXTURES, 'modules/buggy-balance.ts') + ' }',
      '',
    ].join('\n'),
  );
  let instance: Instance | undefined;
  t.teardown(async () => {
    instance?.kill();
    if (!process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    await deleteTopics([events, balances, `${app}-balance-view-changelog`, `${app}-balance-dlq`, `${app}-balance-replay`]);
  });
  await createTopics([{ topic: events, numPartitions: PARTITIONS, configEntries: [{ name: 'retention.ms', value: '-1' }] }]);
  instance = new Instance(file, { stateDir: join(dir, 'state'), env: { BUGGY_BALANCE_FIXED: fixed } });
  await instance.waitReady();
  const deposit = (id: string, v: number, amount: number) => ({
    key: id,
    value: JSON.stringify({
      eventId: `${id}-${v}`,
      eventType: 'Deposited',
      eventVersion: 1,
      aggregateType: 'Account',
      aggregateId: id,
      aggregateVersion: v,
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, v)).toISOString(),
      data: { amount },
    }),
  });
  const producer = kafka('replay-live-events').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  await producer.send({ topic: events, acks: -1, messages: [deposit('a0', 1, 1), deposit('a0', 2, 10), deposit('a0', 3, 100), deposit('b0', 1, 5)] });
  await waitForCaughtUp(`${app}-balance`, events);
  writeFileSync(fixed, 'deployed\n');

  // live deposits of a0 for a few seconds from when the command starts (it takes a moment to start): some rebuilds
  // of a0 are likely to miss one and come back stale (how many is logged, not asserted)
  let LIVE = 0;
  const live = (async () => {
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      LIVE++;
      await producer.send({ topic: events, acks: -1, messages: [deposit('a0', 3 + LIVE, 1)] });
      await new Promise((r) => setTimeout(r, 60));
    }
  })();
  const replayed = await runCli(['replay', file, 'balance', '--aggregates', 'a0', '--attempts', '50']);
  await live;
  t.is(replayed.code, 0, replayed.stdout + replayed.stderr);
  t.regex(replayed.stdout, /^rebuilt 1 of 1 views$/m);
  await waitForCaughtUp(`${app}-balance`, events);

  const res = await fetch(`http://127.0.0.1:${instance.httpPort}/stores/balance/view/a0`);
  const body = (await res.json()) as { value: Stored };
  t.deepEqual(body.value, { view: { balance: 111 + LIVE, deposits: 3 + LIVE }, version: 3 + LIVE }, 'the deposits before the fix counted once by the rebuild, the live ones once');
  const other = (await (await fetch(`http://127.0.0.1:${instance.httpPort}/stores/balance/view/b0`)).json()) as { value: Stored };
  t.deepEqual(other.value, { view: { balance: 10, deposits: 1 }, version: 1 }, 'b0 not rebuilt: still as the bug left it');
  const stale = /foldstream_projection_events_total\{[^}]*outcome="replay_stale"[^}]*\} (\d+)/.exec(await instance.metrics());
  t.log(`stale rebuilds sent again: ${stale?.[1] ?? 0}`);
});
