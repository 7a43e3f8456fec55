// Static membership (KIP-345, processing.staticMembership) on the real broker, instances as OS processes: kill -9 and
// a restart within the session timeout gives the instance its tasks back with no rebalance (the generation is the
// same, the other instance never rejoins), exactly once; a second live instance with the same id fences the first
// with a typed error instead of the two taking the member's place from each other forever.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { runCli } from '../helpers/cli.ts';
import { memoryLogger } from '../helpers/log.ts';
import { assertExactlyOnce, cleanUpAfter, countingApp, produceCounting, waitForCaughtUp } from '../helpers/counting-app.ts';
import { endOffsets } from '../helpers/kafka.ts';
import { Instance, waitFor } from '../helpers/processes.ts';

function tasksOf(body: Record<string, unknown> | undefined): number[] {
  const processors = (body?.processors ?? {}) as Record<string, { tasks: Record<string, string> }>;
  return Object.keys(processors.counter?.tasks ?? {})
    .map(Number)
    .sort((x, y) => x - y);
}

const STATIC = ['  staticMembership: { enabled: true, sessionTimeoutMs: 30000 }'];

test('kill -9 and a restart within the session timeout: the instance gets its tasks back with no rebalance, exactly once', async (t) => {
  const c = await countingApp({ partitions: 6, sessionTimeoutMs: 10000, processingYaml: STATIC });
  const instances = cleanUpAfter(t, c);
  const a = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a' });
  instances.push(a);
  await a.waitReady();
  const b = new Instance(c.file, { stateDir: c.stateDir('b'), name: 'b' });
  instances.push(b);
  await b.waitReady();
  await waitFor(async () => tasksOf((await a.readyz())?.body).length === 3 && tasksOf((await b.readyz())?.body).length === 3, 60_000, 'tasks split 3/3');
  let model = await produceCounting(c.input, 3000, 101);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const aTasks = tasksOf((await a.readyz())?.body);
  const bTasks = tasksOf((await b.readyz())?.body);
  const generation = a.events('group.static_joined').at(-1)?.generation;
  const bJoins = b.events('group.joined').length;
  const bRebalances = b.events('group.rebalancing').length;
  const before = await endOffsets(c.output, 'read_committed');

  a.kill('SIGKILL');
  const killedAt = Date.now();
  await a.waitExit();
  const restarted = new Instance(c.file, { stateDir: c.stateDir('a'), name: 'a-restarted' });
  instances.push(restarted);
  model = await produceCounting(c.input, 3000, 101, model);
  // first new committed output of a task of the killed instance (the last stable offset of its output partition moves)
  await waitFor(
    async () => {
      const now = await endOffsets(c.output, 'read_committed');
      return aTasks.some((p) => (now.get(p) ?? 0n) > (before.get(p) ?? 0n));
    },
    120_000,
    "new committed output on the killed instance's partitions",
    50,
  );
  const firstOutputMs = Date.now() - killedAt;
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const caughtUpMs = Date.now() - killedAt;
  // where the time goes: most of it is starting the process (Node, tsx, loading the modules) on a loaded machine
  const at = (event: string) => Date.parse(String(restarted.events(event)[0]?.time)) - killedAt;
  t.log(
    `kill -9 → first new committed output ${firstOutputMs} ms, caught up ${caughtUpMs} ms (session timeout 30000 ms); ` +
      `restarted process: app.starting ${at('app.starting')} ms, joined ${at('group.joined')} ms, tasks running ${Math.max(...restarted.events('task.running').map((l) => Date.parse(String(l.time)))) - killedAt} ms`,
  );

  t.is(b.events('group.rebalancing').length, bRebalances, 'the other instance saw no rebalance');
  t.is(b.events('group.joined').length, bJoins, 'the other instance never rejoined');
  t.deepEqual(tasksOf((await b.readyz())?.body), bTasks, "the other instance's tasks did not move");
  t.deepEqual(tasksOf((await restarted.readyz())?.body), aTasks, 'the restarted instance runs the tasks it had');
  const rejoin = restarted.events('group.static_joined')[0];
  t.true(typeof generation === 'number', 'the static member logged the generation it joined');
  t.is(rejoin?.generation, generation, 'the restarted instance took its member place back in the same generation');
  t.is(await restarted.stop(), 0);
  t.true(restarted.events('group.leave_skipped').length > 0, 'SIGTERM keeps the static member in the group (no LeaveGroup)');
  t.is(await b.stop(), 0);
  await assertExactlyOnce(t, c, model);
});

test('a second live instance with the same group.instance.id fences the first with GROUP_INSTANCE_FENCED, and the first stops consuming', async (t) => {
  const c = await countingApp({ partitions: 2, sessionTimeoutMs: 10000, processingYaml: STATIC });
  const instances = cleanUpAfter(t, c);
  const env = { FOLDSTREAM_INSTANCE_ID: 'twin-instance' };
  const first = new Instance(c.file, { stateDir: c.stateDir('first'), name: 'first', env });
  instances.push(first);
  await first.waitReady();
  const second = new Instance(c.file, { stateDir: c.stateDir('second'), name: 'second', env });
  instances.push(second);
  await second.waitReady();
  const fenced = await first.waitLine((l) => l.event === 'consumer.fenced_instance', 60_000, 'the first instance fenced');
  t.is(fenced.code, 'GROUP_INSTANCE_FENCED');
  t.regex(String(fenced.error), /twin-instance/, 'the error names the doubled id');
  t.regex(String(fenced.error), /FOLDSTREAM_INSTANCE_ID/, 'and says what to do');
  await waitFor(async () => (await first.readyz())?.status === 503, 30_000, 'the fenced instance not ready');
  // it does not take the place back: the second keeps every task
  const model = await produceCounting(c.input, 500, 11);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  t.deepEqual(tasksOf((await second.readyz())?.body), [0, 1], 'the second instance runs every task');
  t.is(first.events('consumer.fenced_instance').length, 1, 'the fenced consumer stayed stopped');
  t.is(await second.stop(), 0);
  t.is(await first.stop(), 0);
  await assertExactlyOnce(t, c, model);
});

test('a scale-down: App.stop({ leaveGroup: true }) sends the LeaveGroup, so the other instance takes the tasks at once instead of after the session timeout', async (t) => {
  // a session timeout of ten minutes: without the LeaveGroup the other instance would not get the tasks within the test
  const c = await countingApp({ partitions: 4, sessionTimeoutMs: 10000, processingYaml: ['  staticMembership: { enabled: true, sessionTimeoutMs: 600000 }'] });
  cleanUpAfter(t, c);
  const loaded = loadTopology(c.file);
  const logs = { a: memoryLogger(), b: memoryLogger() };
  const a = new App(loaded, { log: logs.a, stateDir: c.stateDir('a'), httpPort: 0 });
  const b = new App(loaded, { log: logs.b, stateDir: c.stateDir('b'), httpPort: 0 });
  t.teardown(async () => {
    await a.stop().catch(() => undefined);
    await b.stop().catch(() => undefined);
  });
  const tasks = (app: App) => Object.keys((app.readiness().detail.processors as Record<string, { tasks: Record<string, string> }>).counter?.tasks ?? {}).length;
  await a.start();
  await b.start();
  await waitFor(() => a.ready && b.ready && tasks(a) === 2 && tasks(b) === 2, 60_000, 'tasks split 2/2');
  const model = await produceCounting(c.input, 400, 17);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  await a.stop({ leaveGroup: true });
  t.is(logs.a.events('group.leaving').length, 1, 'the static member left its group');
  t.is(logs.a.events('group.leave_skipped').length, 0);
  await waitFor(() => b.ready && tasks(b) === 4, 120_000, 'the other instance running every task');
  await produceCounting(c.input, 400, 17, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  await b.stop();
  await assertExactlyOnce(t, c, model);
});

test('a scale-down from outside: `foldstream leave-group` removes a stopped static member, and the other instance takes its tasks at once', async (t) => {
  const c = await countingApp({ partitions: 4, sessionTimeoutMs: 10000, processingYaml: ['  staticMembership: { enabled: true, sessionTimeoutMs: 600000 }'] });
  cleanUpAfter(t, c);
  const loaded = loadTopology(c.file);
  const logs = { a: memoryLogger(), b: memoryLogger() };
  const a = new App(loaded, { log: logs.a, stateDir: c.stateDir('a'), httpPort: 0 });
  const b = new App(loaded, { log: logs.b, stateDir: c.stateDir('b'), httpPort: 0 });
  t.teardown(async () => {
    await a.stop().catch(() => undefined);
    await b.stop().catch(() => undefined);
  });
  const tasks = (app: App) => Object.keys((app.readiness().detail.processors as Record<string, { tasks: Record<string, string> }>).counter?.tasks ?? {}).length;
  await a.start();
  await b.start();
  await waitFor(() => a.ready && b.ready && tasks(a) === 2 && tasks(b) === 2, 60_000, 'tasks split 2/2');
  const model = await produceCounting(c.input, 400, 19);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const id = a.instanceId!;
  await a.stop(); // a restart-style stop: the member keeps its place (and its two tasks) for ten minutes
  t.is(logs.a.events('group.leave_skipped').length, 1);
  const r = await runCli(['leave-group', c.file, '--instance-id', id]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`removed ${id} from consumer group ${c.app}-counter`));
  await waitFor(() => b.ready && tasks(b) === 4, 120_000, 'the other instance running every task');
  await produceCounting(c.input, 400, 19, model);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const again = await runCli(['leave-group', c.file, '--instance-id', id]);
  t.regex(again.stdout, /is not a member of consumer group/, 'a second removal finds nothing to remove');
  await b.stop();
  await assertExactlyOnce(t, c, model);
});
