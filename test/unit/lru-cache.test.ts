// The read cache of every store (processing.cacheSize / stores.<name>.cacheSize): bounded, least recently used
// first out, and a store's reads beyond it go to the committed store (LevelDB) again.
import test from 'ava';
import { BufferedStore } from '../../src/state/buffered-store.ts';
import { MemoryCommittedStore } from '../../src/state/committed-store.ts';
import { LruCache } from '../../src/state/lru-cache.ts';
import { encodeValue } from '../../src/state/value-codec.ts';

test('the cache never holds more than its capacity and evicts the least recently used entry', (t) => {
  const c = new LruCache<string, number>(3);
  for (const [i, k] of ['a', 'b', 'c', 'd', 'e'].entries()) {
    c.set(k, i);
    t.true(c.size <= 3);
  }
  t.deepEqual(['a', 'b', 'c', 'd', 'e'].filter((k) => c.has(k)), ['c', 'd', 'e']);
  t.is(c.get('c'), 2); // c is now the most recently used
  c.set('f', 5);
  t.deepEqual(['c', 'd', 'e', 'f'].filter((k) => c.has(k)), ['c', 'e', 'f']);
  c.set('e', 9); // overwriting refreshes, and does not grow
  c.set('g', 6);
  t.deepEqual(['c', 'e', 'f', 'g'].filter((k) => c.has(k)), ['e', 'f', 'g']);
  t.is(c.get('e'), 9);
});

test('a capacity of 0 caches nothing', (t) => {
  const c = new LruCache<string, number>(0);
  c.set('a', 1);
  t.is(c.size, 0);
  t.is(c.get('a'), undefined);
});

test("a store's reads hit its committed store only for keys that fell out of the cache", async (t) => {
  class Counting extends MemoryCommittedStore {
    reads: string[] = [];
    override get(key: string) {
      this.reads.push(key);
      return super.get(key);
    }
  }
  const committed = new Counting('s');
  await committed.apply(['k1', 'k2', 'k3', 'k4'].map((key, i) => ({ key, value: encodeValue(i) })), {});
  const s = new BufferedStore<number>('s', committed, 2);
  for (const k of ['k1', 'k2', 'k1', 'k3', 'k1', 'k2', 'missing', 'missing']) await s.get(k);
  // k1 k2 miss; k1 hit; k3 miss (k2 out); k1 hit; k2 miss (k3 out); missing miss, then cached as absent
  t.deepEqual(committed.reads, ['k1', 'k2', 'k3', 'k2', 'missing']);
});
