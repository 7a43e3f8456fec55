// Exactly-once v2 (one transaction per processor runner, KIP-447 generation fencing) against the real broker, with
// real zombies: a `foldstream run` process stopped with SIGSTOP by the pause-in-commit fault at a chosen point of its
// commit (after its produce and before its TxnOffsetCommit, or after that and before its EndTxn), while a second
// instance takes its tasks over; then resumed (SIGCONT) or killed. docs/exactly-once.md lists which case each proves.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertExactlyOnce, countingApp, produceCounting, waitForCaughtUp } from '../helpers/counting-app.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { BROKERS, createTopics, deleteTopics, kafka, openTransactions, readAll, unique } from '../helpers/kafka.ts';
import { Instance, waitFor, type LogLine } from '../helpers/processes.ts';

const PAUSE = fileURLToPath(new URL('../fixtures/faults/pause-in-commit.ts', import.meta.url));

function tasksOf(body: Record<string, unknown> | undefined, processor: string): number[] {
  const processors = (body?.processors ?? {}) as Record<string, { tasks: Record<string, string> }>;
  return Object.keys(processors[processor]?.tasks ?? {}).map(Number);
}

interface EchoApp {
  app: string;
  dir: string;
  file: string;
  input: string;
  output: string;
  group: string;
  stateDir(name: string): string;
  cleanup(): Promise<void>;
}

/**
 * A stateless processor: the echo module copies each input record to `copies`. No store, so no changelog: nothing
 * but the consumer group's offsets and generation stands between a zombie and a duplicate.
 */
async function echoApp(o: { partitions: number; commitIntervalMs: number; punctuateMs?: number; fenceDeadWriters?: boolean }): Promise<EchoApp> {
  const app = unique('echo');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const input = `${app}-input`;
  const output = `${app}-copies`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    [
      `app: ${app}`,
      `kafka: { brokers: "${BROKERS.join(',')}" }`,
      'processing:',
      '  guarantee: exactly_once',
      `  commitIntervalMs: ${o.commitIntervalMs}`,
      '  maxBufferedRecords: 100000',
      '  sessionTimeoutMs: 6000',
      '  heartbeatIntervalMs: 1000',
      '  transactionTimeoutMs: 60000',
      // off where a test proves the guards behind it (generation, require_stable, the wait's fencing by id)
      `  fenceDeadWriters: ${o.fenceDeadWriters ?? true}`,
      'http: { port: 0 }',
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  input: { name: ${input}, partitions: ${o.partitions} }`,
      `  copies: { name: ${output}, partitions: ${o.partitions} }`,
      'processors:',
      '  - name: echo',
      '    type: custom',
      '    input: input',
      `    module: ${join(FIXTURES, 'modules/echo.ts')}`,
      '    outputs: [copies]',
      ...(o.punctuateMs ? [`    punctuate: { intervalMs: ${o.punctuateMs}, type: wall-clock }`] : []),
      '',
    ].join('\n'),
  );
  await createTopics([{ topic: input, numPartitions: o.partitions }]);
  return {
    app,
    dir,
    file,
    input,
    output,
    group: `${app}-echo`,
    stateDir: (name) => join(dir, name),
    cleanup: () => deleteTopics([input, output, `${app}-echo-dlq`]),
  };
}

/** Produces numbered records ({ i }) in small batches until stopped; returns how many. */
function produceSteadily(topic: string, keys = 50): { stop(): Promise<number> } {
  let running = true;
  let i = 0;
  const done = (async () => {
    const producer = kafka('steady-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      while (running) {
        const messages = [];
        for (let n = 0; n < 50; n++, i++) messages.push({ key: `key-${i % keys}`, value: JSON.stringify({ i }) });
        await producer.send({ topic, messages, acks: -1 });
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await producer.disconnect();
    }
    return i;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

/** Every input number in the committed copies exactly once. */
async function assertEachCopiedOnce(t: ExecutionContext, c: EchoApp, produced: number): Promise<void> {
  await waitForCaughtUp(c.group, c.input, 120_000);
  const seen = new Map<number, number>();
  for (const r of await readAll([c.output])) {
    const v = JSON.parse(String(r.value)) as { i?: number };
    if (typeof v.i === 'number') seen.set(v.i, (seen.get(v.i) ?? 0) + 1);
  }
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
  const missing: number[] = [];
  for (let i = 0; i < produced; i++) if (!seen.has(i)) missing.push(i);
  t.log(`${produced} inputs, ${seen.size} copied, ${duplicates.length} duplicated, ${missing.length} missing`);
  t.deepEqual(duplicates.slice(0, 20), [], 'no input copied twice');
  t.deepEqual(missing.slice(0, 20), [], 'no input lost');
}

/** Whether every partition of the input has an offset committed by the group. */
async function committedEverywhere(c: EchoApp): Promise<boolean> {
  const admin = kafka('committed-probe').admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: c.group, topics: [c.input] });
    return (t?.partitions ?? []).length > 0 && t!.partitions.every((p) => Number(p.offset) >= 0);
  } finally {
    await admin.disconnect();
  }
}

function cleanup(t: ExecutionContext, c: { dir: string; cleanup(): Promise<void> }, instances: Instance[]): void {
  t.teardown(async () => {
    for (const i of instances) {
      i.kill('SIGCONT');
      i.kill();
    }
    if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup().catch(() => undefined);
  });
}

test('(a, e) a stateless zombie paused after producing and before its offset commit is refused by its stale generation when it resumes: 0 duplicates', async (t) => {
  const c = await echoApp({ partitions: 4, commitIntervalMs: 1000, fenceDeadWriters: false });
  const instances: Instance[] = [];
  cleanup(t, c, instances);
  const arm = join(c.dir, 'arm');
  const zombie = new Instance(c.file, { stateDir: c.stateDir('zombie'), name: 'zombie', preload: [PAUSE], env: { FOLDSTREAM_TEST_PAUSE_ARM: arm, FOLDSTREAM_TEST_PAUSE_AT: 'offsets' } });
  instances.push(zombie);
  await zombie.waitReady();
  const producing = produceSteadily(c.input);
  await waitFor(async () => (await openTransactions(c.output)).length > 0, 60_000, 'the zombie-to-be inside a transaction');
  writeFileSync(arm, '');
  const paused = await zombie.waitLine((l) => l.event === 'fault.paused', 60_000, 'the zombie paused before its TxnOffsetCommit');
  t.log(`paused before its offsets: partitions ${String(paused.partitions)}`);
  // Its transaction's records are produced and open; its offsets are not: the group's committed offsets are stable, so
  // the successor starts at once from them and copies those inputs again.
  const successor = new Instance(c.file, { stateDir: c.stateDir('successor'), name: 'successor' });
  instances.push(successor);
  await waitFor(async () => tasksOf((await successor.readyz())?.body, 'echo').length === 4 && (await successor.readyz())?.status === 200, 120_000, 'the successor running every task');
  await new Promise((r) => setTimeout(r, 2000));
  zombie.kill('SIGCONT');
  // it ends its transaction (refused, or — were it not fenced — committed) and rejoins the group
  await waitFor(() => zombie.events('runner.transaction_aborted').length > 0 || zombie.events('group.joined').length > 1, 60_000, 'the resumed zombie to end its transaction');
  const produced = await producing.stop();
  await assertEachCopiedOnce(t, c, produced);
  const aborted = zombie.events('runner.transaction_aborted')[0];
  t.log(`the resumed zombie: ${aborted ? `${String(aborted.code)}: ${String(aborted.error).slice(0, 200)}` : 'its transaction was not refused'}`);
  t.is(aborted?.code, 'GENERATION_FENCED', 'the group coordinator refused the offsets of a member of an old generation');
  t.is(await successor.stop(), 0);
  t.is(await zombie.stop(), 0);
});

/** (b): the zombie paused between its TxnOffsetCommit and its EndTxn; `then` resumes or kills it. */
const pausedBeforeEndTxn = test.macro(async (t, then: 'resume' | 'kill') => {
  const c = await echoApp({ partitions: 4, commitIntervalMs: 3000, fenceDeadWriters: false });
  const instances: Instance[] = [];
  cleanup(t, c, instances);
  const arm = join(c.dir, 'arm');
  const zombie = new Instance(c.file, { stateDir: c.stateDir('zombie'), name: 'zombie', preload: [PAUSE], env: { FOLDSTREAM_TEST_PAUSE_ARM: arm, FOLDSTREAM_TEST_PAUSE_AT: 'end' } });
  instances.push(zombie);
  await zombie.waitReady();
  const producing = produceSteadily(c.input);
  // a transaction committed before: its offsets' metadata names the writer (the zombie's transactional id)
  await waitFor(() => committedEverywhere(c), 60_000, 'offsets committed on every partition');
  await waitFor(async () => (await openTransactions(c.output)).length > 0, 60_000, 'the zombie-to-be inside a transaction');
  writeFileSync(arm, '');
  await zombie.waitLine((l) => l.event === 'fault.paused', 60_000, 'the zombie paused before its EndTxn');
  const pausedAt = Date.now();
  const successor = new Instance(c.file, { stateDir: c.stateDir('successor'), name: 'successor' });
  instances.push(successor);
  // Its offsets are in the open transaction: OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT, and the
  // successor's tasks wait instead of starting from the offsets committed before (which would copy again what the
  // zombie's transaction holds, and that commits when the zombie resumes).
  await waitFor(() => successor.events('task.waiting_for_previous_transaction').length > 0 || successor.events('task.running').length >= 4, 120_000, 'the successor owning the tasks');
  await new Promise((r) => setTimeout(r, 1000));
  if (then === 'resume') zombie.kill('SIGCONT');
  else zombie.kill('SIGKILL');
  await waitFor(async () => (await successor.readyz())?.status === 200 && tasksOf((await successor.readyz())?.body, 'echo').length > 0, 120_000, 'the successor running');
  const produced = await producing.stop();
  await assertEachCopiedOnce(t, c, produced);
  const ended = successor.events('task.previous_transaction_ended');
  const fenced = successor.events('task.fencing_previous_writer');
  t.log(`after ${then}: the successor ran ${Math.round((Date.now() - pausedAt) / 1000)} s after the pause; waited ${ended.map((l) => l.waitedMs).join(', ')} ms; fenced ${[...new Set(fenced.map((l) => l.transactionalId))].join(', ') || 'nothing'}`);
  t.true(successor.events('task.waiting_for_previous_transaction').length > 0 && ended.length > 0, 'the successor waited for the previous transaction to end');
  if (then === 'kill') {
    // the dead zombie's transaction ended by fencing its transactional id, not after transactionTimeoutMs (60 s)
    t.true(fenced.length > 0, 'the successor fenced the dead writer\'s transactional id');
    t.true(ended.every((l) => Number(l.waitedMs) < 45_000), 'well before the transaction timeout of 60 s');
  }
  t.is(await successor.stop(), 0);
  if (then === 'resume') t.is(await zombie.stop(), 0);
});

test('(b) a zombie paused between its offset commit and its EndTxn, then resumed: the new owner waits for its transaction, 0 duplicates', pausedBeforeEndTxn, 'resume');
test('(b, d) a zombie paused between its offset commit and its EndTxn, then killed: the new owner fences its transactional id at once, 0 duplicates', pausedBeforeEndTxn, 'kill');

test('(c) a rebalance while the runner has a transaction open over several tasks: it ends before the rejoin, nothing lost or repeated', async (t) => {
  const c = await countingApp({ partitions: 6, commitIntervalMs: 3000, maxBufferedRecords: 100_000, sessionTimeoutMs: 10_000 });
  const instances: Instance[] = [];
  cleanup(t, c, instances);
  const a = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a' });
  instances.push(a);
  await a.waitReady();
  let model = await produceCounting(c.input, 20_000, 97);
  await waitFor(async () => (await openTransactions(c.output)).length > 1, 60_000, 'a transaction open on several partitions');
  const b = new Instance(c.file, { stateDir: c.stateDir('b'), name: 'b' });
  instances.push(b);
  await b.waitReady();
  model = await produceCounting(c.input, 5_000, 97, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const ended = a.lines.filter((l: LogLine) => l.event === 'runner.transaction_aborted' || l.event === 'group.rebalancing');
  t.log(`a: ${ended.map((l) => `${l.event}${l.code ? ` ${String(l.code)}` : ''}`).join(', ')}`);
  t.true(a.events('group.joined').length >= 2, 'a rejoined');
  // the open transaction ended by a commit under its own generation before the rejoin, not by an abort later
  t.deepEqual(a.events('runner.transaction_aborted').map((l) => l.code), [], 'no transaction of a was aborted across the rebalance');
  t.is(await a.stop(), 0);
  t.is(await b.stop(), 0);
  await assertExactlyOnce(t, c, model);
});

test('(d) kill -9 without restart: the survivor takes the tasks over within the session timeout plus a little, not the transaction timeout', async (t) => {
  const c = await echoApp({ partitions: 4, commitIntervalMs: 1000 });
  const instances: Instance[] = [];
  cleanup(t, c, instances);
  const a = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a' });
  const b = new Instance(c.file, { stateDir: c.stateDir('b'), name: 'b' });
  instances.push(a, b);
  await a.waitReady();
  await b.waitReady();
  const producing = produceSteadily(c.input);
  await waitFor(async () => tasksOf((await a.readyz())?.body, 'echo').length > 0 && tasksOf((await b.readyz())?.body, 'echo').length > 0, 60_000, 'both owning tasks');
  await waitFor(async () => (await openTransactions(c.output)).length > 0, 60_000, 'a transaction open');
  const killedAt = Date.now();
  a.kill('SIGKILL');
  await waitFor(async () => tasksOf((await b.readyz())?.body, 'echo').length === 4 && (await b.readyz())?.status === 200, 120_000, 'the survivor running every task');
  const failoverMs = Date.now() - killedAt;
  t.log(`failover in ${failoverMs} ms (session timeout 6 s, transaction timeout 60 s); fenced: ${b.events('task.fencing_previous_writer').length}`);
  t.true(failoverMs < 40_000, 'well before the transaction timeout of 60 s');
  // a's transaction may hold outputs only (no offsets yet, no changelog): nothing the wait sees, so b fences a's
  // transactional id because a left the group; without it, read_committed readers of the copies would wait 60 s
  t.true(b.events('task.fencing_dead_writer').length > 0, "b fenced the dead instance's transactional id");
  const produced = await producing.stop();
  await assertEachCopiedOnce(t, c, produced);
  t.is(await b.stop(), 0);
});

test('(f) a zombie whose open transaction holds only punctuations: its offsets are committed again with it, so the new owner waits for it', async (t) => {
  const c = await echoApp({ partitions: 1, commitIntervalMs: 3000, punctuateMs: 200, fenceDeadWriters: false });
  const instances: Instance[] = [];
  cleanup(t, c, instances);
  const arm = join(c.dir, 'arm');
  const zombie = new Instance(c.file, {
    stateDir: c.stateDir('zombie'),
    name: 'zombie',
    preload: [PAUSE],
    env: { FOLDSTREAM_TEST_PAUSE_ARM: arm, FOLDSTREAM_TEST_PAUSE_AT: 'end', FOLDSTREAM_TEST_PAUSE_ONLY_PUNCTUATION: '1' },
  });
  instances.push(zombie);
  await zombie.waitReady();
  // one input record, so the task has a committed offset to commit again
  const producing = produceSteadily(c.input);
  await new Promise((r) => setTimeout(r, 300));
  const produced = await producing.stop();
  await waitForCaughtUp(c.group, c.input, 60_000);
  writeFileSync(arm, '');
  await zombie.waitLine((l) => l.event === 'fault.paused', 60_000, 'the zombie paused before the EndTxn of a punctuation-only transaction');
  const successor = new Instance(c.file, { stateDir: c.stateDir('successor'), name: 'successor' });
  instances.push(successor);
  await successor.waitLine((l) => l.event === 'task.waiting_for_previous_transaction', 120_000, 'the successor waiting for the zombie\'s punctuation-only transaction');
  t.pass('the punctuation-only transaction held the task\'s offsets: the new owner waits for it');
  zombie.kill('SIGCONT');
  await successor.waitReady(120_000);
  await assertEachCopiedOnce(t, c, produced);
  t.is(await successor.stop(), 0);
  t.is(await zombie.stop(), 0);
});
