// One LevelDB database per store of a task: data, changelog checkpoint and input position in one atomic batch;
// corrupt databases are reported as such, locked ones are not. Real LevelDB in temp dirs, no broker.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FoldstreamError } from '../../src/errors.ts';
import type { StoreWrite } from '../../src/state/committed-store.ts';
import { compareKeys } from '../../src/state/key-order.ts';
import { LevelDbStore, StoreCorruptError } from '../../src/state/leveldb-store.ts';
import { decodeValue, encodeValue } from '../../src/state/value-codec.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-leveldb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function allEntries(s: LevelDbStore): Promise<[string, unknown][]> {
  const out: [string, unknown][] = [];
  for await (const [k, v] of s.entries({}, false)) out.push([k, decodeValue(v)]);
  return out;
}

const put = (key: string, value: unknown): StoreWrite => ({ key, value: encodeValue(value) });

test('apply() writes data, checkpoint and position together, and they are there after reopening', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const s = await LevelDbStore.open('counts', dir);
  t.is(await s.checkpoint(), undefined, 'a fresh store has no checkpoint');
  t.is(await s.position(), undefined);
  await s.apply([put('a', 1), put('b', 2)], { checkpoint: '17', position: { offsets: { input: '42' }, streamTime: 1000 } });
  await s.apply([put('a', 3), { key: 'b', value: null }], { checkpoint: '20', position: { offsets: { input: '45', other: '3' }, streamTime: 2000 } });
  await s.close();
  const again = await LevelDbStore.open('counts', dir);
  t.teardown(() => again.close());
  t.deepEqual(await allEntries(again), [['a', 3]]);
  t.is(await again.checkpoint(), '20');
  t.deepEqual(await again.position(), { offsets: { input: '45', other: '3' }, streamTime: 2000 });
  // meta is optional per call: a checkpoint-only apply keeps the position
  await again.apply([], { checkpoint: '21' });
  t.is(await again.checkpoint(), '21');
  t.deepEqual(await again.position(), { offsets: { input: '45', other: '3' }, streamTime: 2000 });
});

test('apply() is all or nothing: when the batch fails, neither data nor checkpoint nor position is written', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const s = await LevelDbStore.open('counts', dir);
  await s.apply([put('a', 1)], { checkpoint: '5', position: { offsets: { input: '5' }, streamTime: 5 } });
  // The second write has no value (LevelDB refuses it), so the batch fails after the first one was prepared.
  const bad = { key: 'c', value: undefined as unknown as Buffer };
  await t.throwsAsync(s.apply([put('b', 2), bad, put('a', 9)], { checkpoint: '9', position: { offsets: { input: '9' }, streamTime: 9 } }));
  await s.close();
  const again = await LevelDbStore.open('counts', dir);
  t.teardown(() => again.close());
  t.deepEqual(await allEntries(again), [['a', 1]]);
  t.is(await again.checkpoint(), '5');
  t.deepEqual(await again.position(), { offsets: { input: '5' }, streamTime: 5 });
});

test('wipe() empties the data, the checkpoint and the position, and the store stays usable', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const s = await LevelDbStore.open('counts', dir);
  t.teardown(() => s.close());
  await s.apply([put('a', 1), put('b', 2)], { checkpoint: '17', position: { offsets: { input: '42' }, streamTime: 1 } });
  await s.wipe();
  t.deepEqual(await allEntries(s), []);
  t.is(await s.get('a'), undefined);
  t.is(await s.checkpoint(), undefined);
  t.is(await s.position(), undefined);
  await s.apply([put('c', 3)], { checkpoint: '1' });
  t.deepEqual(await allEntries(s), [['c', 3]]);
  await s.close();
  const again = await LevelDbStore.open('counts', dir);
  t.teardown(() => again.close());
  t.deepEqual(await allEntries(again), [['c', 3]], 'the wipe is on disk');
  t.is(await again.checkpoint(), '1');
});

test('a database whose CURRENT file is garbage does not open: StoreCorruptError with code STORE_CORRUPT', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const s = await LevelDbStore.open('counts', dir);
  await s.apply([put('a', 1)], { checkpoint: '3' });
  await s.close();
  writeFileSync(join(dir, 'CURRENT'), 'garbage without newline');
  const e = await t.throwsAsync(LevelDbStore.open('counts', dir));
  t.true(e instanceof StoreCorruptError, String(e));
  t.is((e as FoldstreamError).code, 'STORE_CORRUPT');
  t.is((e as StoreCorruptError).store, 'counts');
  // after destroy() it opens empty, as the task does before restoring from the changelog
  await LevelDbStore.destroy(dir);
  const fresh = await LevelDbStore.open('counts', dir);
  t.teardown(() => fresh.close());
  t.deepEqual(await allEntries(fresh), []);
  t.is(await fresh.checkpoint(), undefined);
});

test('a database held open by another handle fails with STORE_LOCKED, is not treated as corrupt, and keeps its data', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const holder = await LevelDbStore.open('counts', dir);
  t.teardown(() => holder.close());
  await holder.apply([put('a', 1)], { checkpoint: '3' });
  const e = await t.throwsAsync(LevelDbStore.open('counts', dir));
  t.false(e instanceof StoreCorruptError, String(e));
  t.is((e as FoldstreamError).code, 'STORE_LOCKED');
  t.is(await holder.checkpoint(), '3');
  t.deepEqual(await allEntries(holder), [['a', 1]], 'the holder still reads its data');
});

test('a database held open by another process fails with STORE_LOCKED, not STORE_CORRUPT', async (t) => {
  const dir = join(tempDir(t), 'counts');
  const first = await LevelDbStore.open('counts', dir);
  await first.apply([put('a', 1)], { checkpoint: '3' });
  await first.close();
  const script = `import { Level } from 'level';
const db = new Level(${JSON.stringify(dir)});
await db.open();
process.stdout.write('open\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((ok, fail) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('open') && ok());
    child.once('exit', (code) => fail(new Error(`child exited with ${code} before opening the database`)));
  });
  const e = await t.throwsAsync(LevelDbStore.open('counts', dir));
  t.false(e instanceof StoreCorruptError, String(e));
  t.is((e as FoldstreamError).code, 'STORE_LOCKED');
  child.kill('SIGKILL');
  await exited;
  const after = await LevelDbStore.open('counts', dir);
  t.teardown(() => after.close());
  t.is(await after.checkpoint(), '3', 'nothing was wiped');
  t.deepEqual(await allEntries(after), [['a', 1]]);
});

test('entries() iterates in the byte order of UTF-8 keys, forwards, backwards and within bounds', async (t) => {
  const dir = join(tempDir(t), 'keys');
  const s = await LevelDbStore.open('keys', dir);
  t.teardown(() => s.close());
  // JS (UTF-16) order and UTF-8 byte order disagree on these: 😀 is D83D.. in UTF-16 but F0.. in UTF-8, above U+FFFF's EF..
  const keys = ['b', 'a', 'Z', '~', 'é', 'ü', 'z', '\uffff', '😀', '😀a', 'a😀', '日本', 'ab', 'a'.repeat(3)];
  await s.apply(keys.map((k) => put(k, k)), {});
  const expected = [...keys].sort(compareKeys);
  t.notDeepEqual(expected, [...keys].sort(), 'the keys tell the two orders apart');
  const forward: string[] = [];
  for await (const [k, v] of s.entries({}, false)) {
    forward.push(k);
    t.is(decodeValue(v), k);
  }
  t.deepEqual(forward, expected);
  const backward: string[] = [];
  for await (const [k] of s.entries({}, true)) backward.push(k);
  t.deepEqual(backward, [...expected].reverse());
  const bounded: string[] = [];
  for await (const [k] of s.entries({ gte: 'é', lt: '😀' }, false)) bounded.push(k);
  t.deepEqual(bounded, expected.filter((k) => compareKeys(k, 'é') >= 0 && compareKeys(k, '😀') < 0));
  t.deepEqual(bounded, ['é', 'ü', '日本', '\uffff']);
});
