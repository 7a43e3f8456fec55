/**
 * The store processors write to: an in-memory write buffer over the committed store (LevelDB or memory), with a
 * bounded LRU read cache. Writes are encoded at once (so later mutation of the object cannot leak in) and kept
 * per key, so each commit writes one changelog record per key. Nothing reaches the committed store before the
 * transaction commits (DESIGN §4 step 4). A savepoint lets one record's writes be undone when its handler throws.
 */
import { FoldstreamError } from '../errors.ts';
import type { KeyValueStore, RangeOptions } from '../processors/types.ts';
import type { CommittedStore, StoreWrite } from './committed-store.ts';
import { compareKeys, inBounds, rangeBounds } from './key-order.ts';
import { ReadCache, type StoreCache } from './lru-cache.ts';
import { decodeValue, encodeValue } from './value-codec.ts';

/** Keys starting with NUL are foldstream's own (the changelog position marker). */
export const RESERVED_KEY_PREFIX = '\u0000';

export class BufferedStore<V = unknown> implements KeyValueStore<V> {
  private readonly pending = new Map<string, Buffer | null>();
  private undo: Map<string, Buffer | null | undefined> | undefined;
  private readonly cache: StoreCache;

  /**
   * `cacheSize`: entries this store's read cache keeps at most (0: none); `shared`: the instance's read cache, whose
   * budget in bytes bounds every store's together (without one, the store's cache is bounded by entries only).
   */
  constructor(
    readonly name: string,
    readonly committed: CommittedStore,
    cacheSize: number,
    shared: ReadCache = new ReadCache(Number.POSITIVE_INFINITY),
  ) {
    this.cache = shared.store(cacheSize);
  }

  /** Number of keys written since the last commit. */
  get dirtyKeys(): number {
    return this.pending.size;
  }

  async get(key: string): Promise<V | undefined> {
    const p = this.pending.get(key);
    if (p !== undefined) return p === null ? undefined : decodeValue<V>(p);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached === null ? undefined : decodeValue<V>(cached);
    const stored = await this.committed.get(key);
    this.cache.set(key, stored ?? null);
    return stored === undefined ? undefined : decodeValue<V>(stored);
  }

  put(key: string, value: V): void {
    this.checkKey(key);
    if (value === undefined) throw new TypeError(`store "${this.name}": put(${JSON.stringify(key)}, undefined); use delete() to remove a key`);
    this.write(key, encodeValue(value));
  }

  delete(key: string): void {
    this.checkKey(key);
    this.write(key, null);
  }

  async *range(options: RangeOptions = {}): AsyncIterable<[string, V]> {
    const bounds = rangeBounds(options);
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    if (limit <= 0) return;
    const local = [...this.pending.keys()].filter((k) => inBounds(k, bounds)).sort(compareKeys);
    if (reverse) local.reverse();
    const before = (a: string, b: string) => (reverse ? compareKeys(a, b) > 0 : compareKeys(a, b) < 0);
    let i = 0;
    let yielded = 0;
    const emitLocal = function* (this: BufferedStore<V>, key: string): Generator<[string, V]> {
      const v = this.pending.get(key);
      if (v) yield [key, decodeValue<V>(v)];
    }.bind(this);
    for await (const [key, value] of this.committed.entries(bounds, reverse)) {
      while (i < local.length && before(local[i]!, key)) {
        for (const e of emitLocal(local[i++]!)) {
          yield e;
          if (++yielded >= limit) return;
        }
      }
      if (i < local.length && local[i] === key) {
        i++;
        for (const e of emitLocal(key)) {
          yield e;
          if (++yielded >= limit) return;
        }
        continue;
      }
      yield [key, decodeValue<V>(value)];
      if (++yielded >= limit) return;
    }
    while (i < local.length) {
      for (const e of emitLocal(local[i++]!)) {
        yield e;
        if (++yielded >= limit) return;
      }
    }
  }

  /** Starts recording how to undo the writes of one record. */
  savepoint(): void {
    this.undo = new Map();
  }

  /** Undoes every write since savepoint(). */
  rollback(): void {
    if (!this.undo) return;
    for (const [key, prev] of this.undo) {
      if (prev === undefined) this.pending.delete(key);
      else this.pending.set(key, prev);
    }
    this.undo = undefined;
  }

  release(): void {
    this.undo = undefined;
  }

  /** The writes of this transaction, one per key. */
  writes(): StoreWrite[] {
    return [...this.pending].map(([key, value]) => ({ key, value }));
  }

  /**
   * After the commit reached the committed store: cached keys take their new values. Keys not cached stay out: a
   * write-mostly store (commands, history) would otherwise push every key it writes through the cache, and what is
   * read is cached by the read.
   */
  committedWrites(): void {
    for (const [key, value] of this.pending) this.cache.refresh(key, value);
    this.pending.clear();
    this.undo = undefined;
  }

  /** The transaction failed: forget its writes. */
  discard(): void {
    this.pending.clear();
    this.undo = undefined;
  }

  /** The committed store changed underneath (restore, wipe). */
  invalidateCache(): void {
    this.cache.clear();
  }

  private write(key: string, value: Buffer | null): void {
    if (this.undo && !this.undo.has(key)) this.undo.set(key, this.pending.get(key));
    this.pending.set(key, value);
  }

  private checkKey(key: string): void {
    if (typeof key !== 'string') throw new TypeError(`store "${this.name}": keys are strings, got ${typeof key}`);
    if (key.startsWith(RESERVED_KEY_PREFIX)) {
      throw new FoldstreamError('HANDLER_FAILED', `store "${this.name}": keys starting with NUL are reserved`, {
        hint: 'choose keys that do not start with \\u0000',
      });
    }
  }
}
