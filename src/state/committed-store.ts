/**
 * The committed state of one store of one task: what LevelDB (runtime) or memory (test driver) holds after the last
 * successful commit, with the store's changelog checkpoint and the task's input position, written together.
 */
import type { KeyBounds } from './key-order.ts';
import { compareKeys, inBounds } from './key-order.ts';

/** Where a task is in its inputs: next offset per input topic, and its stream time. */
export interface TaskPosition {
  offsets: Record<string, string>;
  streamTime: number;
  /** the transactional id that wrote it (exactly-once v2): a new owner fences it if its transaction hangs */
  writer?: string;
}

export interface StoreWrite {
  key: string;
  /** encoded value; null deletes */
  value: Buffer | null;
}

export interface CommittedStore {
  readonly name: string;
  get(key: string): Promise<Buffer | undefined>;
  entries(bounds: KeyBounds, reverse: boolean): AsyncIterable<[string, Buffer]>;
  /** next changelog offset this store has applied, or undefined when it has never been checkpointed */
  checkpoint(): Promise<string | undefined>;
  position(): Promise<TaskPosition | undefined>;
  /** One atomic write: the data, the changelog checkpoint and the task position. */
  apply(writes: StoreWrite[], meta: { checkpoint?: string; position?: TaskPosition }): Promise<void>;
  /** Drops every entry and the checkpoint. */
  wipe(): Promise<void>;
  /** Approximate number of entries (for metrics). */
  approximateSize(): Promise<number>;
  close(): Promise<void>;
}

/** The test driver's store: a sorted map in memory. */
export class MemoryCommittedStore implements CommittedStore {
  private data = new Map<string, Buffer>();
  private meta: { checkpoint?: string; position?: TaskPosition } = {};
  constructor(readonly name: string) {}

  async get(key: string): Promise<Buffer | undefined> {
    return this.data.get(key);
  }

  async *entries(bounds: KeyBounds, reverse: boolean): AsyncIterable<[string, Buffer]> {
    const keys = [...this.data.keys()].filter((k) => inBounds(k, bounds)).sort(compareKeys);
    if (reverse) keys.reverse();
    for (const k of keys) {
      const v = this.data.get(k);
      if (v !== undefined) yield [k, v];
    }
  }

  async checkpoint(): Promise<string | undefined> {
    return this.meta.checkpoint;
  }

  async position(): Promise<TaskPosition | undefined> {
    return this.meta.position;
  }

  async apply(writes: StoreWrite[], meta: { checkpoint?: string; position?: TaskPosition }): Promise<void> {
    for (const w of writes) {
      if (w.value === null) this.data.delete(w.key);
      else this.data.set(w.key, w.value);
    }
    if (meta.checkpoint !== undefined) this.meta.checkpoint = meta.checkpoint;
    if (meta.position !== undefined) this.meta.position = meta.position;
  }

  async wipe(): Promise<void> {
    this.data = new Map();
    this.meta = {};
  }

  async approximateSize(): Promise<number> {
    return this.data.size;
  }

  async close(): Promise<void> {}
}
