// The store processors write to: a write buffer over the committed store (memory, and a real LevelDB in a temp
// dir), with an LRU read cache. Nothing here needs a broker.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoldstreamError } from '../../src/errors.ts';
import type { RangeOptions } from '../../src/processors/types.ts';
import { BufferedStore } from '../../src/state/buffered-store.ts';
import { MemoryCommittedStore, type CommittedStore } from '../../src/state/committed-store.ts';
import { compareKeys } from '../../src/state/key-order.ts';
import { LevelDbStore } from '../../src/state/leveldb-store.ts';
import { decodeValue, encodeValue } from '../../src/state/value-codec.ts';

type Backend = { name: string; open(): Promise<{ committed: CommittedStore; done(): Promise<void> }> };

const backends: Backend[] = [
  {
    name: 'memory',
    open: async () => ({ committed: new MemoryCommittedStore('s'), done: async () => undefined }),
  },
  {
    name: 'leveldb',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'foldstream-buffered-'));
      const committed = await LevelDbStore.open('s', join(dir, 's'));
      return {
        committed,
        done: async () => {
          await committed.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** Runs the same test over each committed store. */
function bothStores(title: string, fn: (t: ExecutionContext, committed: CommittedStore) => Promise<void>): void {
  for (const b of backends) {
    test(`${title} (${b.name})`, async (t) => {
      const { committed, done } = await b.open();
      try {
        await fn(t, committed);
      } finally {
        await done();
      }
    });
  }
}

/** What the runtime does after a transaction commits: the buffer goes to the committed store, then becomes cache. */
async function commit(store: BufferedStore<unknown>): Promise<void> {
  await store.committed.apply(store.writes(), {});
  store.committedWrites();
}

async function collect<V>(it: AsyncIterable<[string, V]>): Promise<[string, V][]> {
  const out: [string, V][] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function committedValue(committed: CommittedStore, key: string): Promise<unknown> {
  const v = await committed.get(key);
  return v === undefined ? undefined : decodeValue(v);
}

bothStores('reads see uncommitted writes before the committed value, and nothing reaches the committed store before the commit', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('a', 1);
  await commit(s);
  t.is(await s.get('a'), 1);
  s.put('a', 2);
  s.put('b', 3);
  t.is(await s.get('a'), 2);
  t.is(await s.get('b'), 3);
  t.is(await committedValue(committed, 'a'), 1, 'the committed store still has the old value');
  t.is(await committedValue(committed, 'b'), undefined);
  await commit(s);
  t.is(await committedValue(committed, 'a'), 2);
  t.is(await committedValue(committed, 'b'), 3);
});

bothStores('delete hides a committed key from get and range until it commits, then removes it', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('a', 1);
  s.put('b', 2);
  await commit(s);
  s.delete('a');
  t.is(await s.get('a'), undefined);
  t.deepEqual(await collect(s.range()), [['b', 2]]);
  t.is(await committedValue(committed, 'a'), 1);
  await commit(s);
  t.is(await committedValue(committed, 'a'), undefined);
  t.is(await s.get('a'), undefined);
});

bothStores('range merges the buffer over committed entries in key order, with prefix, bounds, reverse, limit and deletions', async (t, committed) => {
  const s = new BufferedStore<string>('s', committed, 10);
  for (const k of ['a/1', 'a/3', 'a/5', 'b/1', 'é', '😀']) s.put(k, `old ${k}`);
  await commit(s);
  s.put('a/2', 'new a/2');
  s.put('a/3', 'new a/3');
  s.delete('a/5');
  s.put('a/6', 'new a/6');
  s.put('\uffff', 'new \uffff');
  const keys = async (o: RangeOptions) => (await collect(s.range(o))).map(([k]) => k);
  t.deepEqual(await collect(s.range({ prefix: 'a/' })), [
    ['a/1', 'old a/1'],
    ['a/2', 'new a/2'],
    ['a/3', 'new a/3'],
    ['a/6', 'new a/6'],
  ]);
  // UTF-8 byte order, as LevelDB orders keys: é (C3 A9) < U+FFFF (EF BF BF) < 😀 (F0 9F 98 80)
  t.deepEqual(await keys({}), ['a/1', 'a/2', 'a/3', 'a/6', 'b/1', 'é', '\uffff', '😀']);
  t.deepEqual(await keys({ reverse: true }), ['😀', '\uffff', 'é', 'b/1', 'a/6', 'a/3', 'a/2', 'a/1']);
  t.deepEqual(await keys({ gt: 'a/2', lt: 'b/1' }), ['a/3', 'a/6']);
  t.deepEqual(await keys({ gte: 'a/2', lte: 'b/1' }), ['a/2', 'a/3', 'a/6', 'b/1']);
  t.deepEqual(await keys({ prefix: 'a/', limit: 2 }), ['a/1', 'a/2']);
  t.deepEqual(await keys({ prefix: 'a/', reverse: true, limit: 2 }), ['a/6', 'a/3']);
  t.deepEqual(await keys({ gt: 'b/1' }), ['é', '\uffff', '😀']);
  t.deepEqual(await keys({ limit: 0 }), []);
});

bothStores('range combines a prefix with gt and lt bounds (for example deadlines under a prefix, up to now)', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  for (const k of ['deadline/1', 'deadline/2', 'deadline/3', 'deadline/4', 'other']) s.put(k, 1);
  await commit(s);
  const keys = async (o: RangeOptions) => (await collect(s.range(o))).map(([k]) => k);
  t.deepEqual(await keys({ prefix: 'deadline/', lt: 'deadline/3' }), ['deadline/1', 'deadline/2'], 'prefix and lt');
  t.deepEqual(await keys({ prefix: 'deadline/', gt: 'deadline/2' }), ['deadline/3', 'deadline/4'], 'prefix and gt');
  t.deepEqual(await keys({ gt: 'deadline/1', gte: 'deadline/0' }), ['deadline/2', 'deadline/3', 'deadline/4', 'other'], 'gt and gte: both hold');
  t.deepEqual(await keys({ lt: 'deadline/3', lte: 'deadline/4' }), ['deadline/1', 'deadline/2'], 'lt and lte: both hold');
});

const KEYS = ['a', 'ab', 'abc', 'ac', 'b', 'ba', 'A', 'Z', '~', 'é', 'éa', 'z', '\uffff', '😀', '😀a', 'a😀'];

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

function modelRange(model: Map<string, unknown>, o: RangeOptions): [string, unknown][] {
  let keys = [...model.keys()].filter(
    (k) =>
      (o.prefix === undefined || k.startsWith(o.prefix)) &&
      (o.gt === undefined || compareKeys(k, o.gt) > 0) &&
      (o.gte === undefined || compareKeys(k, o.gte) >= 0) &&
      (o.lt === undefined || compareKeys(k, o.lt) < 0) &&
      (o.lte === undefined || compareKeys(k, o.lte) <= 0),
  );
  keys.sort(compareKeys);
  if (o.reverse) keys.reverse();
  if (o.limit !== undefined) keys = keys.slice(0, Math.max(0, o.limit));
  return keys.map((k) => [k, model.get(k)]);
}

for (const cacheSize of [0, 3]) {
  bothStores(`random puts, deletes, commits and discards: get and range always match a model (cache ${cacheSize})`, async (t, committed) => {
    const rand = rng(7 + cacheSize);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const s = new BufferedStore<unknown>('s', committed, cacheSize);
    let durable = new Map<string, unknown>();
    let visible = new Map<string, unknown>();
    for (let step = 0; step < 1500; step++) {
      const r = rand();
      if (r < 0.35) {
        const k = pick(KEYS);
        const v = { step, tag: pick(['x', 'y', 'z']) };
        s.put(k, v);
        visible.set(k, v);
      } else if (r < 0.5) {
        const k = pick(KEYS);
        s.delete(k);
        visible.delete(k);
      } else if (r < 0.56) {
        await commit(s);
        durable = new Map(visible);
      } else if (r < 0.6) {
        s.discard();
        visible = new Map(durable);
      } else if (r < 0.75) {
        const k = pick(KEYS);
        t.deepEqual(await s.get(k), visible.get(k), `step ${step}: get(${JSON.stringify(k)})`);
      } else {
        const o: RangeOptions = {};
        if (rand() < 0.3) o.prefix = pick(['a', 'é', '😀', 'b', 'q']);
        if (rand() < 0.3) o[pick(['gt', 'gte'] as const)] = pick(KEYS);
        if (rand() < 0.3) o[pick(['lt', 'lte'] as const)] = pick(KEYS);
        if (rand() < 0.4) o.reverse = true;
        if (rand() < 0.3) o.limit = Math.floor(rand() * 5);
        t.deepEqual(await collect(s.range(o)), modelRange(visible, o), `step ${step}: range(${JSON.stringify(o)})`);
      }
    }
    await commit(s);
    t.deepEqual(await collect(committed.entries({}, false)).then((es) => es.map(([k, v]) => [k, decodeValue(v)])), modelRange(visible, {}));
  });
}

bothStores("rollback undoes exactly the writes since the savepoint: one record's, not the transaction's", async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('kept', 1);
  s.put('deleted', 1);
  await commit(s);
  // record 1 of the transaction
  s.savepoint();
  s.put('r1', 1);
  s.put('kept', 2);
  s.release();
  // record 2: its handler throws
  s.savepoint();
  s.put('r1', 99);
  s.put('r2', 2);
  s.put('r2', 3);
  s.delete('deleted');
  s.put('kept', 3);
  s.rollback();
  t.is(await s.get('r1'), 1, "record 1's write survives");
  t.is(await s.get('kept'), 2, "record 1's overwrite survives");
  t.is(await s.get('r2'), undefined, "record 2's new key is gone");
  t.is(await s.get('deleted'), 1, "record 2's delete is undone");
  t.deepEqual(s.writes().map((w) => w.key).sort(), ['kept', 'r1'], 'only record 1 is left to commit');
  // a rollback after release undoes nothing
  s.savepoint();
  s.put('r3', 3);
  s.release();
  s.rollback();
  t.is(await s.get('r3'), 3);
});

bothStores('writes() has one entry per key with its last value, so a commit writes one changelog record per key', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('a', 1);
  s.put('b', 1);
  s.put('a', 2);
  s.delete('b');
  s.put('a', 3);
  s.delete('c');
  s.put('c', 4);
  s.delete('d');
  const writes = s.writes();
  t.is(s.dirtyKeys, 4);
  t.deepEqual(
    writes.map((w) => [w.key, w.value === null ? null : decodeValue(w.value)]).sort(([a], [b]) => compareKeys(a as string, b as string)),
    [
      ['a', 3],
      ['b', null],
      ['c', 4],
      ['d', null],
    ],
  );
  await commit(s);
  t.deepEqual(s.writes(), [], 'the buffer is empty after the commit');
  t.is(s.dirtyKeys, 0);
});

bothStores('after discard() the read cache never serves a value newer than the committed one', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('a', 1);
  await commit(s);
  t.is(await s.get('a'), 1); // cached
  t.is(await s.get('missing'), undefined); // cached as absent
  s.put('a', 2);
  s.put('missing', 5);
  t.is(await s.get('a'), 2);
  t.is(await s.get('missing'), 5);
  s.discard(); // the transaction failed
  t.is(await s.get('a'), 1);
  t.is(await s.get('missing'), undefined);
  // and after a commit, the cache serves the committed value
  s.put('a', 3);
  await commit(s);
  t.is(await s.get('a'), 3);
});

bothStores('invalidateCache() makes reads see what a restore wrote to the committed store', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  s.put('a', 1);
  await commit(s);
  t.is(await s.get('a'), 1);
  await committed.apply([{ key: 'a', value: encodeValue(7) }], {});
  s.invalidateCache();
  t.is(await s.get('a'), 7);
});

bothStores('keys starting with NUL are reserved: put and delete refuse them and nothing is buffered', async (t, committed) => {
  const s = new BufferedStore<number>('s', committed, 10);
  const put = t.throws(() => s.put('\u0000position', 1));
  t.true(put instanceof FoldstreamError);
  const del = t.throws(() => s.delete('\u0000x'));
  t.true(del instanceof FoldstreamError);
  t.is(s.dirtyKeys, 0);
  t.deepEqual(s.writes(), []);
  s.put('a\u0000', 1); // NUL elsewhere is an ordinary character
  t.is(await s.get('a\u0000'), 1);
});

bothStores('values are encoded at put: changing the object afterwards changes neither the buffer nor what is committed', async (t, committed) => {
  const s = new BufferedStore<{ n: number; tags: string[] }>('s', committed, 10);
  const v = { n: 1, tags: ['x'] };
  s.put('a', v);
  v.n = 2;
  v.tags.push('y');
  t.deepEqual(await s.get('a'), { n: 1, tags: ['x'] });
  const got = (await s.get('a'))!;
  got.n = 3; // nor does changing what get() returned
  t.deepEqual(await s.get('a'), { n: 1, tags: ['x'] });
  await commit(s);
  t.deepEqual(await committedValue(committed, 'a'), { n: 1, tags: ['x'] });
  const cached = (await s.get('a'))!;
  cached.tags.push('z');
  t.deepEqual(await s.get('a'), { n: 1, tags: ['x'] }, 'the cache hands out copies too');
});
