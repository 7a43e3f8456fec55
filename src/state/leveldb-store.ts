/**
 * One LevelDB database per store of a task (DESIGN §5). Data and metadata live in two sublevels of the same
 * database so that the data, the changelog checkpoint and the input position are written in one atomic batch.
 */
import { mkdir, rm } from 'node:fs/promises';
import { Level } from 'level';
import { FoldstreamError } from '../errors.ts';
import type { CommittedStore, StoreWrite, TaskPosition } from './committed-store.ts';
import { inBounds, type KeyBounds } from './key-order.ts';
import { decodeValue, encodeValue } from './value-codec.ts';

const CHECKPOINT = 'checkpoint';
const POSITION = 'position';
const FORMAT = 'format';
const FORMAT_VERSION = '1';

type Db = Level<string, Buffer>;

export interface LevelDbOptions {
  /** LevelDB write buffer per database, bytes (many small databases: keep it small) */
  writeBufferSize?: number;
  /** LevelDB block cache per database, bytes */
  blockCacheSize?: number;
}

/** A store that could not be opened or read is corrupt: the task wipes it and restores it from its changelog. */
export class StoreCorruptError extends FoldstreamError {
  constructor(
    readonly store: string,
    readonly dir: string,
    cause: unknown,
  ) {
    super('STORE_CORRUPT', `state store "${store}" at ${dir} could not be opened or read`, {
      hint: 'foldstream wipes it and restores it from its changelog; if this repeats, check the disk',
      cause,
      canRetry: true,
    });
  }
}

function storeCorrupt(name: string, dir: string, cause: unknown): StoreCorruptError {
  return new StoreCorruptError(name, dir, cause);
}

export class LevelDbStore implements CommittedStore {
  private db: Db;
  private data;
  private meta;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly opts: LevelDbOptions,
  ) {
    this.db = LevelDbStore.create(dir, opts);
    this.data = this.db.sublevel<string, Buffer>('d', { valueEncoding: 'buffer' });
    this.meta = this.db.sublevel<string, Buffer>('m', { valueEncoding: 'buffer' });
  }

  private static create(dir: string, opts: LevelDbOptions): Db {
    return new Level<string, Buffer>(dir, {
      valueEncoding: 'buffer',
      createIfMissing: true,
      writeBufferSize: opts.writeBufferSize ?? 1 << 20,
      cacheSize: opts.blockCacheSize ?? 2 << 20,
    } as never);
  }

  /**
   * Opens the store; throws STORE_CORRUPT when LevelDB cannot open it or its metadata cannot be read.
   * Returns whether the database existed before (a fresh one has no checkpoint).
   */
  static async open(name: string, dir: string, opts: LevelDbOptions = {}): Promise<LevelDbStore> {
    await mkdir(dir, { recursive: true });
    const s = new LevelDbStore(name, dir, opts);
    try {
      await s.db.open();
      const format = await s.meta.get(FORMAT);
      if (format === undefined) await s.meta.put(FORMAT, Buffer.from(FORMAT_VERSION));
      else if (format.toString() !== FORMAT_VERSION) throw new Error(`unknown store format ${format.toString()}`);
      await s.meta.get(CHECKPOINT);
      await s.meta.get(POSITION);
    } catch (e) {
      await s.db.close().catch(() => undefined);
      // Held by another handle (a task still closing, or another process): not corruption, never wipe for it.
      if ((e as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') {
        throw new FoldstreamError('STORE_LOCKED', `state store "${name}" at ${dir} is locked by another handle`, {
          hint: 'another process may use the same processing.stateDir; give each instance its own',
          cause: e,
          canRetry: true,
        });
      }
      throw storeCorrupt(name, dir, e);
    }
    return s;
  }

  /** Deletes the database files of a store (it is closed or was never opened). */
  static async destroy(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw storeCorrupt(this.name, this.dir, e);
    }
  }

  /**
   * A point read, synchronous inside (classic-level's getSync): an async get hands every read to the libuv pool and
   * back, which cost the aggregate ~40 % of its CPU (a new commandId is always a miss). A read is one LevelDB lookup
   * in the block cache or one small disk read, as RocksDB's reads in Kafka Streams. Errors are STORE_CORRUPT as before.
   */
  get(key: string): Promise<Buffer | undefined> {
    try {
      return Promise.resolve(this.data.getSync(key));
    } catch (e) {
      return Promise.reject(storeCorrupt(this.name, this.dir, e));
    }
  }

  async *entries(bounds: KeyBounds, reverse: boolean): AsyncIterable<[string, Buffer]> {
    const it = this.data.iterator({ ...bounds, reverse });
    try {
      for (;;) {
        const next = await this.guard(() => it.next());
        if (next === undefined) return;
        // LevelDB already bounds the scan; checking again costs little and keeps it exact whatever bounds it got
        if (inBounds(next[0], bounds)) yield next as [string, Buffer];
      }
    } finally {
      await it.close();
    }
  }

  async checkpoint(): Promise<string | undefined> {
    const v = await this.guard(() => this.meta.get(CHECKPOINT));
    return v?.toString();
  }

  async position(): Promise<TaskPosition | undefined> {
    const v = await this.guard(() => this.meta.get(POSITION));
    return v ? decodeValue<TaskPosition>(v) : undefined;
  }

  async apply(writes: StoreWrite[], meta: { checkpoint?: string; position?: TaskPosition }): Promise<void> {
    // Operations span the data and meta sublevels of one database, so abstract-level writes them atomically.
    const ops: never[] = [];
    for (const w of writes) {
      if (w.value === null) ops.push({ type: 'del', key: w.key, sublevel: this.data } as never);
      else ops.push({ type: 'put', key: w.key, value: w.value, sublevel: this.data } as never);
    }
    if (meta.checkpoint !== undefined) ops.push({ type: 'put', key: CHECKPOINT, value: Buffer.from(meta.checkpoint), sublevel: this.meta } as never);
    if (meta.position !== undefined) ops.push({ type: 'put', key: POSITION, value: encodeValue(meta.position), sublevel: this.meta } as never);
    if (ops.length) await this.guard(() => this.db.batch(ops as never));
  }

  async wipe(): Promise<void> {
    await this.db.close();
    await LevelDbStore.destroy(this.dir);
    await mkdir(this.dir, { recursive: true });
    this.db = LevelDbStore.create(this.dir, this.opts);
    this.data = this.db.sublevel<string, Buffer>('d', { valueEncoding: 'buffer' });
    this.meta = this.db.sublevel<string, Buffer>('m', { valueEncoding: 'buffer' });
    await this.db.open();
    await this.meta.put(FORMAT, Buffer.from(FORMAT_VERSION));
  }

  async approximateSize(): Promise<number> {
    let n = 0;
    for await (const _ of this.data.keys({ limit: 1_000_000 })) n++;
    return n;
  }

  async close(): Promise<void> {
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }
}
