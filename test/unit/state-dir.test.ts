// The state directory: a stable instance id, one live process per directory, and the janitor that deletes state
// of tasks this instance no longer owns only after a delay. Real files and real processes, no broker.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoldstreamError } from '../../src/errors.ts';
import { instanceId, lockStateDir, StateDirJanitor } from '../../src/state/state-dir.ts';
import { memoryLogger } from '../helpers/log.ts';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-statedir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the instance id is stable across calls and restarts, and differs between state directories', (t) => {
  const dir = tempDir(t);
  const id = instanceId(dir, 'app');
  t.regex(id, /^[0-9a-f-]{36}$/);
  t.is(instanceId(dir, 'app'), id);
  t.is(readFileSync(join(dir, 'app', 'instance.id'), 'utf8').trim(), id, 'kept on disk for the next start');
  t.not(instanceId(tempDir(t), 'app'), id, 'another state directory is another instance');
  writeFileSync(join(dir, 'app', 'instance.id'), '');
  const fresh = instanceId(dir, 'app');
  t.regex(fresh, /^[0-9a-f-]{36}$/, 'an empty id file gets a new id');
  t.is(instanceId(dir, 'app'), fresh);
});

/** A process that holds the lock the way lockStateDir writes it (exclusive create, its pid inside). */
async function lockHolder(lockFile: string): Promise<{ pid: number; kill(): Promise<void> }> {
  const script = `const fs = require('node:fs');
const fd = fs.openSync(${JSON.stringify(lockFile)}, 'wx');
fs.writeSync(fd, String(process.pid));
fs.closeSync(fd);
process.stdout.write('locked\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((ok, fail) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('locked') && ok());
    child.once('exit', (code) => fail(new Error(`lock holder exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

test('a second process cannot lock a state directory another live process holds; once that process dies, the lock is taken over', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'app'), { recursive: true });
  const lockFile = join(dir, 'app', '.lock');
  const holder = await lockHolder(lockFile);
  t.teardown(() => holder.kill());
  const e = t.throws(() => lockStateDir(dir, 'app'));
  t.true(e instanceof FoldstreamError);
  t.is((e as FoldstreamError).code, 'CONFIG_INVALID');
  t.true(e!.message.includes(String(holder.pid)), e!.message);
  t.is(readFileSync(lockFile, 'utf8'), String(holder.pid), "the holder's lock is untouched");
  // kill -9 leaves the lock file behind: a dead pid's lock is taken over
  await holder.kill();
  t.true(existsSync(lockFile));
  const release = lockStateDir(dir, 'app');
  t.is(readFileSync(lockFile, 'utf8'), String(process.pid));
  release();
  t.false(existsSync(lockFile), 'release removes the lock');
});

test('a lock this process holds is refused to another process', async (t) => {
  const dir = tempDir(t);
  const release = lockStateDir(dir, 'app');
  t.teardown(release);
  const script = `import { lockStateDir } from ${JSON.stringify(new URL('../../src/state/state-dir.ts', import.meta.url).href)};
try { lockStateDir(${JSON.stringify(dir)}, 'app'); process.stdout.write('locked'); } catch (e) { process.stdout.write(String(e.code)); }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((r) => child.once('exit', r));
  t.is(out, 'CONFIG_INVALID');
  t.is(readFileSync(join(dir, 'app', '.lock'), 'utf8'), String(process.pid));
});

test('a lock left by a process that no longer exists is taken over', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', '.lock'), String(child.pid));
  const release = lockStateDir(dir, 'app');
  t.is(readFileSync(join(dir, 'app', '.lock'), 'utf8'), String(process.pid));
  release();
});

/** A processor folder with task folders (each with a store folder inside, as the runtime lays them out). */
function processorDir(t: import('ava').ExecutionContext, tasks: number[]): string {
  const dir = join(tempDir(t), 'app', 'counter');
  for (const p of tasks) mkdirSync(join(dir, String(p), 'counts'), { recursive: true });
  return dir;
}

const taskDirs = (dir: string) =>
  readdirSync(dir)
    .map(Number)
    .sort((a, b) => a - b);

test('the janitor deletes the folder of a task this instance released only once the delay has passed', (t) => {
  const dir = processorDir(t, [0, 1, 2, 3]);
  let now = 1_000_000;
  let owned = new Set([0, 1, 2, 3]);
  const log = memoryLogger();
  const janitor = new StateDirJanitor(dir, 10_000, () => owned, log, () => now);
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1, 2, 3]);
  owned = new Set([0, 1]);
  janitor.released(2);
  janitor.released(3);
  now += 9_999;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1, 2, 3], 'kept within the delay');
  now += 1;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1], 'deleted after the delay; owned tasks kept');
  t.deepEqual(log.events('state.task_dir_deleted').map((e) => e.dir).sort(), [join(dir, '2'), join(dir, '3')]);
  now += 100_000;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1], 'owned tasks are never deleted');
});

test('a task claimed again within the delay keeps its folder, and a later release starts the delay again', (t) => {
  const dir = processorDir(t, [0, 1]);
  let now = 0;
  let owned = new Set([0]);
  const janitor = new StateDirJanitor(dir, 10_000, () => owned, memoryLogger(), () => now);
  janitor.released(1);
  now = 5_000;
  janitor.claimed(1);
  owned = new Set([0, 1]);
  now = 20_000;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1], 'owned again: kept');
  // released again at 20 s: the delay counts from now, not from the first release
  owned = new Set([0]);
  janitor.released(1);
  now = 29_999;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1]);
  now = 30_000;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0]);
});

test('a task claimed again but not yet in the owned set (its task is being created) is not deleted', (t) => {
  const dir = processorDir(t, [0, 1]);
  let now = 0;
  const janitor = new StateDirJanitor(dir, 10_000, () => new Set([0]), memoryLogger(), () => now);
  janitor.released(1);
  now = 5_000;
  janitor.claimed(1);
  now = 10_000;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1], 'a claim cancels the pending deletion');
  // The claim only cancels that release: if it is still not owned at the next sweep, the delay starts over.
  now = 19_999;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1]);
});

test('folders found when the janitor starts count as released at start: deleted after the delay unless claimed', (t) => {
  const dir = processorDir(t, [0, 1, 2, 5]);
  let now = 50_000;
  let owned = new Set<number>();
  const janitor = new StateDirJanitor(dir, 10_000, () => owned, memoryLogger(), () => now);
  janitor.start(60_000);
  t.teardown(() => janitor.stop());
  t.deepEqual(taskDirs(dir), [0, 1, 2, 5], 'nothing is deleted at start');
  // the group assigns 0 and 1 to this instance a moment later
  now = 52_000;
  janitor.claimed(0);
  janitor.claimed(1);
  owned = new Set([0, 1]);
  now = 59_999;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1, 2, 5]);
  now = 60_000;
  janitor.sweep();
  t.deepEqual(taskDirs(dir), [0, 1], 'left-over folders go once the delay since the start has passed');
});

test('with no delay, a released task folder is deleted at once; files and foreign folders are left alone', (t) => {
  const dir = processorDir(t, [0, 1]);
  writeFileSync(join(dir, 'notes.txt'), 'not a task');
  mkdirSync(join(dir, 'backup'));
  const janitor = new StateDirJanitor(dir, 0, () => new Set([0]), memoryLogger(), () => 0);
  janitor.released(1);
  t.deepEqual(readdirSync(dir).sort(), ['0', 'backup', 'notes.txt']);
});
