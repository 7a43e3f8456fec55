// State folders of tasks an instance no longer owns: deleted after processing.stateCleanupDelayMs, while those of
// tasks it still owns stay; and a task that comes back within the delay continues from its checkpoint.
import test from 'ava';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { assertExactlyOnce, countingApp, produceCounting, waitForCaughtUp, type CountingApp } from '../helpers/counting-app.ts';
import { readAll, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger, type MemoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';

const KEYS = 97;

interface Running {
  app: App;
  log: MemoryLogger;
  stateDir: string;
}

async function start(c: CountingApp, name: string): Promise<Running> {
  const log = memoryLogger();
  const stateDir = c.stateDir(name);
  const app = new App(loadTopology(c.file), { log, stateDir, httpPort: 0 });
  await app.start();
  return { app, log, stateDir };
}

/** Tasks of the counter processor on this instance, and whether the instance is ready. */
function tasksOf(r: Running): number[] {
  const processors = r.app.readiness().detail.processors as Record<string, { tasks: Record<string, string> }>;
  return Object.keys(processors.counter?.tasks ?? {})
    .map(Number)
    .sort((a, b) => a - b);
}

/** Task folders on disk: <stateDir>/<app>/counter/<partition>. */
function taskFolders(c: CountingApp, r: Running): number[] {
  const dir = join(r.stateDir, c.app, 'counter');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .sort((a, b) => a - b);
}

async function waitSplit(a: Running, b: Running, partitions: number): Promise<void> {
  await waitFor(
    () => a.app.ready && b.app.ready && tasksOf(a).length > 0 && tasksOf(b).length > 0 && tasksOf(a).length + tasksOf(b).length === partitions,
    90_000,
    'the tasks split between A and B, all running',
  );
}


test('once the cleanup delay has passed, an instance deletes the state of the tasks it handed over and keeps the state of those it still owns', async (t) => {
  const c = await countingApp({ partitions: 6, stateCleanupDelayMs: 2000 });
  const running: Running[] = [];
  t.teardown(async () => {
    for (const r of running) await r.app.stop().catch(() => undefined);
    if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  });
  const a = await start(c, 'a');
  running.push(a);
  await waitFor(() => a.app.ready && tasksOf(a).length === 6, 90_000, 'A running every task');
  const model = await produceCounting(c.input, 1200, KEYS);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  t.deepEqual(taskFolders(c, a), [0, 1, 2, 3, 4, 5], 'A wrote state for every task');

  const b = await start(c, 'b');
  running.push(b);
  await waitSplit(a, b, 6);
  const kept = tasksOf(a);
  const handedOver = tasksOf(b);
  t.deepEqual([...kept, ...handedOver].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5]);

  await waitFor(() => taskFolders(c, a).length === kept.length, 60_000, `A's folders of ${JSON.stringify(handedOver)} to be deleted`);
  t.deepEqual(taskFolders(c, a), kept, 'A keeps exactly the folders of the tasks it owns');
  t.deepEqual(tasksOf(a), kept, 'no rebalance happened meanwhile');
  for (const p of kept) t.true(existsSync(join(a.stateDir, c.app, 'counter', String(p), 'counts', 'CURRENT')), `the store of task ${p} is intact`);
  const deleted = a.log
    .events('state.task_dir_deleted')
    .map((e) => Number(String(e.dir).split(/[\\/]/).at(-1)))
    .sort((x, y) => x - y);
  t.deepEqual(deleted, handedOver, 'each handed-over folder was deleted once, and nothing else');

  // the tasks still owned go on counting from their state
  await produceCounting(c.input, 600, KEYS, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  for (const r of running.splice(0)) await r.app.stop();
  await assertExactlyOnce(t, c, model);
});

/** Committed changelog records per partition, and how many of them are at or after `from[p]`. */
async function changelogRecords(c: CountingApp): Promise<Map<number, bigint[]>> {
  const byPartition = new Map<number, bigint[]>();
  for (const r of await readAll([c.changelog])) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), BigInt(r.offset)]);
  return byPartition;
}

test('a task that comes back within the cleanup delay continues from its checkpoint: only what the other owner wrote meanwhile is restored', async (t) => {
  // The default delay (10 minutes) cannot pass during the test, so the folders are there when the tasks come back.
  const c = await countingApp({ partitions: 6 });
  const running: Running[] = [];
  t.teardown(async () => {
    for (const r of running) await r.app.stop().catch(() => undefined);
    if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  });
  const a = await start(c, 'a');
  running.push(a);
  await waitFor(() => a.app.ready && tasksOf(a).length === 6, 90_000, 'A running every task');
  const model = await produceCounting(c.input, 3000, KEYS);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const endBeforeB = await withAdmin(async (adm) => new Map((await adm.fetchTopicOffsets(c.changelog)).map((p) => [p.partition, BigInt(p.high)])));

  const b = await start(c, 'b');
  running.push(b);
  await waitSplit(a, b, 6);
  const away = tasksOf(b);
  await produceCounting(c.input, 1200, KEYS, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  await b.app.stop(); // B leaves: its tasks come back to A
  running.splice(running.indexOf(b), 1);
  const runningBefore = new Map(away.map((p) => [p, a.log.events('task.running').filter((e) => e.partition === p).length]));
  await waitFor(
    () => a.app.ready && tasksOf(a).length === 6 && away.every((p) => a.log.events('task.running').filter((e) => e.partition === p).length > runningBefore.get(p)!),
    90_000,
    'A running every task again',
  );
  t.deepEqual(taskFolders(c, a), [0, 1, 2, 3, 4, 5], 'A kept the folders of the tasks that were away');

  const records = await changelogRecords(c);
  for (const p of away) {
    const all = records.get(p) ?? [];
    const writtenByB = all.filter((o) => o >= endBeforeB.get(p)!).length;
    const back = a.log.events('task.running').filter((e) => e.partition === p).at(-1)!;
    t.true(writtenByB > 0 && writtenByB < all.length, `partition ${p}: B wrote ${writtenByB} of ${all.length} changelog records`);
    t.is(Number(back.restoredRecords), writtenByB, `partition ${p}: restored only B's ${writtenByB} records, not all ${all.length}`);
  }
  t.deepEqual(a.log.events('store.wiped'), [], 'no store was wiped');

  await produceCounting(c.input, 600, KEYS, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  for (const r of running.splice(0)) await r.app.stop();
  await assertExactlyOnce(t, c, model);
});
