/**
 * The read caches of the stores: one budget in bytes for the whole instance (processing.cacheMaxBytes), shared by
 * every task and store, least recently used out first across all of them; so memory follows the budget, not the
 * number of tasks, stores or aggregates. Each store also keeps at most its own number of entries (cacheSize; 0: it
 * caches nothing).
 *
 * Every entry sits in its store's Map (lookup) and in one list of the whole instance (recency): a hit moves it to the
 * front, and while the budget is exceeded the entry at the back goes, whichever store it belongs to.
 */

/** Bytes an entry is counted for: key (UTF-16) and value, plus the Map slot, list links and Buffer headers. */
const ENTRY_OVERHEAD = 120;

interface Entry<V> {
  key: string;
  value: V;
  bytes: number;
  owner: StoreCache<V>;
  prev: Entry<V> | undefined;
  next: Entry<V> | undefined;
}

export class ReadCache<V = Buffer | null> {
  private head: Entry<V> | undefined;
  private tail: Entry<V> | undefined;
  private used = 0;
  private count = 0;

  /** `sizeOf` counts a value's bytes (Buffers: their length; null: 0). */
  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (v: V) => number = (v) => (Buffer.isBuffer(v) ? v.length : 0),
  ) {}

  /** Bytes the entries are counted for now; never above maxBytes once a set() returns. */
  get bytes(): number {
    return this.used;
  }

  /** Entries of every store. */
  get size(): number {
    return this.count;
  }

  /** A store's part of the cache, holding at most `maxEntries` entries. */
  store(maxEntries: number): StoreCache<V> {
    return new StoreCache(this, maxEntries);
  }

  /** @internal */
  touch(e: Entry<V>): void {
    if (this.head === e) return;
    this.unlink(e);
    this.pushFront(e);
  }

  /** @internal */
  add(owner: StoreCache<V>, key: string, value: V): Entry<V> | undefined {
    const bytes = key.length * 2 + this.sizeOf(value) + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes) return undefined;
    const e: Entry<V> = { key, value, bytes, owner, prev: undefined, next: undefined };
    this.pushFront(e);
    this.used += bytes;
    this.count++;
    this.evict();
    return e;
  }

  /** @internal */
  update(e: Entry<V>, value: V): void {
    const bytes = e.key.length * 2 + this.sizeOf(value) + ENTRY_OVERHEAD;
    this.used += bytes - e.bytes;
    e.bytes = bytes;
    e.value = value;
    this.touch(e);
    this.evict();
  }

  /** @internal */
  remove(e: Entry<V>): void {
    this.unlink(e);
    this.used -= e.bytes;
    this.count--;
  }

  private evict(): void {
    while (this.used > this.maxBytes && this.tail) {
      const e = this.tail;
      e.owner.forget(e);
      this.remove(e);
    }
  }

  private pushFront(e: Entry<V>): void {
    e.prev = undefined;
    e.next = this.head;
    if (this.head) this.head.prev = e;
    this.head = e;
    if (!this.tail) this.tail = e;
  }

  private unlink(e: Entry<V>): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = undefined;
    e.next = undefined;
  }
}

/** One store's entries in the instance's cache. */
export class StoreCache<V = Buffer | null> {
  private readonly map = new Map<string, Entry<V>>();

  constructor(
    private readonly shared: ReadCache<V>,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.shared.touch(e);
    // re-inserted, so the Map's order is this store's recency too
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** Caches a value (an entry larger than the whole budget is not cached). */
  set(key: string, value: V): void {
    if (this.maxEntries <= 0) return;
    const e = this.map.get(key);
    if (e) {
      this.shared.update(e, value);
      this.map.delete(key);
      this.map.set(key, e);
      return;
    }
    // this store's own bound first: its least recently used entry is the first in the Map's order
    if (this.map.size >= this.maxEntries) this.evictOwnOldest();
    const added = this.shared.add(this, key, value);
    if (added) this.map.set(key, added);
  }

  /** Updates a key only if it is cached (a write must not leave an older value there). */
  refresh(key: string, value: V): void {
    const e = this.map.get(key);
    if (e) this.shared.update(e, value);
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.map.delete(key);
    this.shared.remove(e);
  }

  clear(): void {
    for (const e of this.map.values()) this.shared.remove(e);
    this.map.clear();
  }

  /** @internal the shared cache evicted it */
  forget(e: Entry<V>): void {
    this.map.delete(e.key);
  }

  /** The store's own bound: its least recently used entry is the first in the Map's order. */
  private evictOwnOldest(): void {
    const oldest = this.map.values().next().value;
    if (oldest) {
      this.map.delete(oldest.key);
      this.shared.remove(oldest);
    }
  }
}
