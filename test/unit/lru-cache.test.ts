// The read caches of the stores: one budget in bytes for the whole instance (processing.cacheMaxBytes), least
// recently used out first across every store, each store also bounded by its own entries (cacheSize); a store's
// reads beyond the cache go to the committed store (LevelDB) again.
import test from 'ava';
import { BufferedStore } from '../../src/state/buffered-store.ts';
import { MemoryCommittedStore } from '../../src/state/committed-store.ts';
import { ReadCache } from '../../src/state/lru-cache.ts';
import { encodeValue } from '../../src/state/value-codec.ts';

const unbounded = () => new ReadCache<number>(Number.POSITIVE_INFINITY, () => 0);

test("a store's cache never holds more than its entries and evicts its least recently used entry", (t) => {
  const c = unbounded().store(3);
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

test('a capacity of 0 caches nothing, and neither does a budget of 0 bytes', (t) => {
  const c = unbounded().store(0);
  c.set('a', 1);
  t.is(c.size, 0);
  t.is(c.get('a'), undefined);
  const none = new ReadCache(0).store(10);
  none.set('a', Buffer.from('x'));
  t.is(none.get('a'), undefined);
});

test('the byte budget is shared by every store: the least recently used entry of any store goes first, and the total never exceeds it', (t) => {
  const value = Buffer.alloc(880); // 1 char key: 2 + 880 + 118... counted as 1000 bytes with the entry overhead
  const shared = new ReadCache(3000 + 10);
  const bytesOf = shared.bytes;
  t.is(bytesOf, 0);
  const a = shared.store(100);
  const b = shared.store(100);
  a.set('1', value);
  const one = shared.bytes;
  t.true(one > 880 && one < 1010, `an entry counts its key, value and overhead: ${one}`);
  a.set('2', value);
  b.set('3', value);
  t.is(shared.size, 3);
  a.get('1'); // a:1 is now more recent than a:2 and b:3
  b.set('4', value); // over budget: the least recently used of all, a:2, goes
  t.true(shared.bytes <= shared.maxBytes);
  t.deepEqual([a.has('1'), a.has('2'), b.has('3'), b.has('4')], [true, false, true, true]);
  b.set('5', value); // next: b:3
  t.deepEqual([a.has('1'), b.has('3'), b.has('4'), b.has('5')], [true, false, true, true]);
  // an entry larger than the whole budget is not cached, and evicts nothing
  a.set('big', Buffer.alloc(5000));
  t.false(a.has('big'));
  t.is(shared.size, 3);
  // clearing a store gives its bytes back
  b.clear();
  t.is(shared.size, 1);
  t.is(shared.bytes, one);
  a.delete('1');
  t.is(shared.bytes, 0);
});

test('memory stays within the budget however many stores and keys: many tasks of many aggregates', (t) => {
  const shared = new ReadCache(64 * 1024);
  const stores = Array.from({ length: 48 }, () => shared.store(10_000));
  for (let i = 0; i < 50_000; i++) {
    stores[i % stores.length]!.set(`aggregate-${i}`, Buffer.alloc(100 + (i % 200)));
    if (i % 1000 === 0) t.true(shared.bytes <= shared.maxBytes);
  }
  t.true(shared.bytes <= shared.maxBytes);
  t.true(shared.size > 100 && shared.size < 500, `${shared.size} entries`);
  t.is(stores.reduce((n, s) => n + s.size, 0), shared.size);
});

class Counting extends MemoryCommittedStore {
  reads: string[] = [];
  override get(key: string) {
    this.reads.push(key);
    return super.get(key);
  }
}

test("a store's reads hit its committed store only for keys that fell out of the cache", async (t) => {
  const committed = new Counting('s');
  await committed.apply(['k1', 'k2', 'k3', 'k4'].map((key, i) => ({ key, value: encodeValue(i) })), {});
  const s = new BufferedStore<number>('s', committed, 2);
  for (const k of ['k1', 'k2', 'k1', 'k3', 'k1', 'k2', 'missing', 'missing']) await s.get(k);
  // k1 k2 miss; k1 hit; k3 miss (k2 out); k1 hit; k2 miss (k3 out); missing miss, then cached as absent
  t.deepEqual(committed.reads, ['k1', 'k2', 'k3', 'k2', 'missing']);
});

test("stores sharing a byte budget evict each other's entries, and a read of an evicted key goes to its committed store", async (t) => {
  const value = (i: number) => encodeValue({ n: i, pad: 'x'.repeat(200) });
  const shared = new ReadCache(3 * (value(0).length + 2 * 2 + 120));
  const c1 = new Counting('a');
  const c2 = new Counting('b');
  await c1.apply(['a1', 'a2'].map((key, i) => ({ key, value: value(i) })), {});
  await c2.apply(['b1', 'b2'].map((key, i) => ({ key, value: value(i) })), {});
  const s1 = new BufferedStore('a', c1, 100, shared);
  const s2 = new BufferedStore('b', c2, 100, shared);
  for (const k of ['a1', 'a2']) await s1.get(k);
  await s2.get('b1'); // three entries: the budget is full
  await s1.get('a1'); // hit
  await s2.get('b2'); // a2, the least recently used of both stores, goes
  await s1.get('a2'); // miss again; b1 goes
  await s2.get('b1'); // miss again
  t.deepEqual(c1.reads, ['a1', 'a2', 'a2']);
  t.deepEqual(c2.reads, ['b1', 'b2', 'b1']);
});

test("a committed write updates a cached key but does not bring an uncached one in (write-mostly stores do not churn the cache)", async (t) => {
  const committed = new Counting('s');
  const s = new BufferedStore<number>('s', committed, 10);
  t.is(await s.get('read'), undefined); // cached as absent
  s.put('read', 1);
  s.put('written', 2);
  await committed.apply(s.writes(), {});
  s.committedWrites();
  committed.reads = [];
  t.is(await s.get('read'), 1); // from the cache, with its new value
  t.is(await s.get('written'), 2); // from the committed store
  t.deepEqual(committed.reads, ['written']);
});

test("an aggregate's write-mostly stores cache nothing; its state and a projection's view keep processing.cacheSize", async (t) => {
  const { loadTopology } = await import('../../src/topology/load.ts');
  const { buildProcessorSpecs } = await import('../../src/processors/build.ts');
  const specs = await buildProcessorSpecs(loadTopology(`${import.meta.dirname}/../../topology.yaml`));
  const sizes = Object.fromEntries(specs.flatMap((s) => s.stores.map((x) => [`${s.name}/${x.name}`, x.cacheSize])));
  t.like(sizes, { 'users/state': 10000, 'users/commands': 0, 'users/command-expiry': 0, 'users/history': 0, 'user-view/view': 10000 });
});
