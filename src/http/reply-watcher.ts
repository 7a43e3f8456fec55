/**
 * Finds the reply to a command on an aggregate's replies topic, read_committed, for the command gateway's `?wait=`.
 * The gateway knows the reply's partition (the reply is keyed like the command) and notes that partition's last stable
 * offset before it sends the command, so the reply can only be at or after it: a waiter reads from there and misses
 * nothing, with no consumer group (no join, no rebalance, no "latest" race). One poll loop per partition runs while
 * someone waits on it; replies it reads are kept a minute, so a waiter that registers late still finds its reply.
 */
import { decode } from '../serde/codecs.ts';
import { replyProblem, type Reply } from '../serde/envelope.ts';
import type { FetchedRecord, PartitionReader } from '../kafka/types.ts';
import type { Logger } from '../processors/types.ts';
import type { Codec } from '../topology/schema.ts';

const KEEP_SEEN_MS = 60_000;

/** A commandId is one aggregate's: a reply is the one awaited when its record key (the aggregate's key) matches too. */
const replyId = (key: string, commandId: string) => JSON.stringify([key, commandId]);
const IDLE_PAUSE_MS = 50;
const ERROR_PAUSE_MS = 500;

interface PartitionWatch {
  /** next offset to read */
  next: bigint;
  waiters: Map<string, Set<(r: Reply | undefined) => void>>;
  seen: Map<string, { reply: Reply; at: number }>;
  running: boolean;
}

export class ReplyWatcher {
  private readonly watches = new Map<number, PartitionWatch>();
  private closed = false;

  constructor(
    private readonly reader: PartitionReader,
    readonly topic: string,
    private readonly codec: Codec,
    private readonly log: Logger,
  ) {}

  /** The reply to `commandId` of the aggregate keyed `key` on `partition` at or after offset `from`, or undefined after `timeoutMs`. */
  wait(key: string, commandId: string, partition: number, from: bigint, timeoutMs: number): Promise<Reply | undefined> {
    const id = replyId(key, commandId);
    if (this.closed) return Promise.resolve(undefined);
    let w = this.watches.get(partition);
    if (!w) {
      w = { next: from, waiters: new Map(), seen: new Map(), running: false };
      this.watches.set(partition, w);
    }
    const known = w.seen.get(id);
    if (known) return Promise.resolve(known.reply);
    if (from < w.next) w.next = from;
    const watch = w;
    return new Promise((resolve) => {
      const set = watch.waiters.get(id) ?? new Set();
      const done = (r: Reply | undefined) => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) watch.waiters.delete(id);
        resolve(r);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      set.add(done);
      watch.waiters.set(id, set);
      if (!watch.running) void this.poll(partition, watch);
    });
  }

  private async poll(partition: number, w: PartitionWatch): Promise<void> {
    w.running = true;
    try {
      while (w.waiters.size > 0 && !this.closed) {
        const start = w.next;
        try {
          const end = await this.reader.read(this.topic, partition, start, async (records) => {
            for (const r of records) this.found(w, r);
          });
          // a waiter that came meanwhile may have moved `next` back to before `start`: it stays there
          if (w.next >= start) w.next = end > start ? end : start;
          this.forget(w);
          if (end <= start) await sleep(IDLE_PAUSE_MS);
        } catch (e) {
          if (this.closed) return;
          this.log.warn({ event: 'gateway.replies_read_failed', topic: this.topic, partition, error: (e as Error).message });
          await sleep(ERROR_PAUSE_MS);
        }
      }
    } finally {
      w.running = false;
    }
  }

  /** A record that is not a reply (another producer's mistake) is logged and passed over: no waiter gets it. */
  private found(w: PartitionWatch, r: FetchedRecord): void {
    let value: unknown;
    let problem: string | undefined;
    try {
      value = decode(this.codec, r.value);
      problem = replyProblem(value);
    } catch (e) {
      problem = (e as Error).message;
    }
    if (problem !== undefined) {
      this.log.warn({ event: 'gateway.reply_invalid', topic: this.topic, partition: r.partition, offset: r.offset, error: problem });
      return;
    }
    const reply = value as Reply;
    const id = replyId(r.key?.toString('utf8') ?? '', reply.commandId);
    w.seen.delete(id); // re-inserted at the end: the map stays in time order
    w.seen.set(id, { reply, at: Date.now() });
    for (const done of [...(w.waiters.get(id) ?? [])]) done(reply);
  }

  private forget(w: PartitionWatch): void {
    const before = Date.now() - KEEP_SEEN_MS;
    for (const [id, s] of w.seen) {
      if (s.at >= before) break; // insertion order is time order
      w.seen.delete(id);
    }
  }

  /** Stops every poll loop; waiters get no reply now (their request answers 504). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watches.values()) for (const set of w.waiters.values()) for (const done of [...set]) done(undefined);
    await this.reader.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
