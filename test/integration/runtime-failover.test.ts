// Exactly-once across instances as separate OS processes: a hand-over when one leaves, kill -9 inside an open
// transaction, kill -9 between a commit and its LevelDB write, and a zombie (SIGSTOP past its session timeout) that must be fenced.
import test from 'ava';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assertExactlyOnce, countingApp, produceCounting, waitForCaughtUp } from '../helpers/counting-app.ts';
import { openTransactions } from '../helpers/kafka.ts';
import { Instance, waitFor } from '../helpers/processes.ts';

const KILL_AFTER_COMMIT = fileURLToPath(new URL('../fixtures/faults/kill-after-commit.ts', import.meta.url));


function tasksOf(body: Record<string, unknown> | undefined): number[] {
  const processors = (body?.processors ?? {}) as Record<string, { tasks: Record<string, string> }>;
  return Object.keys(processors.counter?.tasks ?? {}).map(Number);
}

test('two instances share the tasks; when one leaves, the other takes them over and nothing is lost or repeated', async (t) => {
  const c = await countingApp({ partitions: 12, sessionTimeoutMs: 10000 });
  const a = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a' });
  const b = new Instance(c.file, { stateDir: c.stateDir('b'), name: 'b' });
  try {
    await a.waitReady();
    await b.waitReady();
    await waitFor(async () => tasksOf((await a.readyz())?.body).length + tasksOf((await b.readyz())?.body).length === 12 && (await a.readyz())?.status === 200, 60_000, 'tasks split');
    const split = [tasksOf((await a.readyz())?.body), tasksOf((await b.readyz())?.body)];
    t.true(split[0]!.length > 0 && split[1]!.length > 0, `both instances have tasks: ${JSON.stringify(split)}`);
    const model = await produceCounting(c.input, 4000, 101);
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    t.is(await b.stop(), 0, 'SIGTERM drains and exits 0');
    await produceCounting(c.input, 4000, 101, model);
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    t.is(tasksOf((await a.readyz())?.body).length, 12, 'the remaining instance owns every task');
    await assertExactlyOnce(t, c, model);
  } finally {
    a.kill();
    b.kill();
  }
  if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('kill -9 while a transaction is open: after a restart every output is there exactly once and the store equals the model', async (t) => {
  // Long transactions: large batches commit every 2 s, so a kill lands inside one.
  const c = await countingApp({ partitions: 6, commitIntervalMs: 2000, maxBufferedRecords: 100000 });
  const stateDir = c.stateDir('s');
  const instances: Instance[] = [];
  try {
    const producing = produceCounting(c.input, 60000, 211);
    let killedInside = 0;
    // Kill until a kill has left a transaction open (the check after a kill can race a commit that just ended).
    for (let attempt = 0; attempt < 5 && killedInside === 0; attempt++) {
      const victim = new Instance(c.file, { stateDir, name: `victim-${attempt}` });
      instances.push(victim);
      await victim.waitReady();
      await waitFor(async () => (await openTransactions(c.output)).length > 0, 120_000, 'an open transaction on the output');
      victim.kill('SIGKILL');
      await victim.waitExit();
      if ((await openTransactions(c.output)).length > 0) killedInside++;
    }
    t.is(killedInside, 1, 'a kill left a transaction open');
    const model = await producing;
    const survivor = new Instance(c.file, { stateDir, name: 'survivor' });
    instances.push(survivor);
    await survivor.waitReady();
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    t.is(await survivor.stop(), 0);
    await assertExactlyOnce(t, c, model);
  } finally {
    for (const i of instances) i.kill();
  }
  if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('kill -9 after a commit and before the LevelDB write: the restart replays the committed writes from the changelog, and nothing is processed twice', async (t) => {
  const c = await countingApp({ partitions: 6, commitIntervalMs: 200 });
  const stateDir = c.stateDir('s');
  const instances: Instance[] = [];
  try {
    const model = await produceCounting(c.input, 20000, 97);
    // The fixture kills the process inside LevelDbStore.apply, after its 10th commit reached Kafka.
    const victim = new Instance(c.file, { stateDir, name: 'victim', preload: [KILL_AFTER_COMMIT], env: { FOLDSTREAM_TEST_KILL_AT_APPLY: '10' } });
    instances.push(victim);
    await waitFor(() => !victim.alive, 120_000, 'the victim to kill itself after a commit');
    t.is(victim.proc.signalCode, 'SIGKILL', `the victim was killed by the fault injector (log: ${victim.logFile})`);
    const survivor = new Instance(c.file, { stateDir, name: 'survivor' });
    instances.push(survivor);
    await survivor.waitReady();
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    t.is(await survivor.stop(), 0);
    // The store that missed its batch is behind its changelog: the restart must have replayed committed records.
    const replayed = survivor.events('store.restored').filter((l) => Number(l.records) > 0);
    t.true(replayed.length >= 1, 'a store was behind its changelog and was restored from its checkpoint');
    await assertExactlyOnce(t, c, model);
  } finally {
    for (const i of instances) i.kill();
  }
  if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});

test('a zombie paused past its session timeout is fenced when it resumes, and no duplicate becomes visible', async (t) => {
  const c = await countingApp({ partitions: 6, commitIntervalMs: 2000, maxBufferedRecords: 100000, sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000 });
  const zombie = new Instance(c.file, { stateDir: c.stateDir('zombie'), name: 'zombie' });
  let successor: Instance | undefined;
  try {
    await zombie.waitReady();
    t.is(tasksOf((await zombie.readyz())?.body).length, 6, 'the zombie-to-be owns every task');
    let model = await produceCounting(c.input, 40000, 173);
    await waitFor(async () => (await openTransactions(c.output)).length > 0, 120_000, 'the zombie inside a transaction');
    zombie.kill('SIGSTOP');
    const s = new Instance(c.file, { stateDir: c.stateDir('successor'), name: 'successor' });
    successor = s;
    // The successor joins; once the zombie's session expires it gets every task. Its tasks wait for the zombie's
    // open transaction (OffsetFetch require_stable), and after 2 × commitIntervalMs + 1 s fence its transactional id,
    // which aborts it (exactly-once v2).
    await s.waitReady();
    await waitFor(async () => tasksOf((await s.readyz())?.body).length === 6, 120_000, 'the successor owning every task');
    model = await produceCounting(c.input, 5000, 173, model);
    zombie.kill('SIGCONT');
    const fenced = () => zombie.events('runner.transaction_aborted').filter((l) => l.code === 'GENERATION_FENCED' || l.code === 'PRODUCER_FENCED');
    await waitFor(() => fenced().length > 0 || zombie.events('group.joined').length > 1, 120_000, 'the zombie noticing');
    await produceCounting(c.input, 5000, 173, model);
    await waitForCaughtUp(`${c.app}-counter`, c.input);
    await waitFor(async () => (await zombie.readyz())?.status === 200 && (await s.readyz())?.status === 200, 60_000, 'both ready');
    t.true(fenced().length > 0, 'the zombie was fenced (its transaction refused: stale generation, or its transactional id fenced)');
    t.log(`the zombie's transactions refused: ${fenced().map((l) => l.code).join(', ')}`);
    t.is(await zombie.stop(), 0);
    t.is(await s.stop(), 0);
    await assertExactlyOnce(t, c, model);
  } finally {
    zombie.kill('SIGCONT');
    zombie.kill();
    successor?.kill();
  }
  if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});
