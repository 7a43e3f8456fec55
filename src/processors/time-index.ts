/**
 * Time indexes in a store: entries keyed by a time and an id, so a range up to a time finds what is due, oldest
 * first. Aggregates index remembered commandIds for expiry (`command-expiry`), sagas their deadlines (`deadlines`)
 * and their ended instances (`ended`).
 */
import type { Cancellable, KeyValueStore, ProcessorContext } from './types.ts';

/** The time zero-padded (15 digits, ms since the epoch) so keys sort by it, then the id. */
export const timeKey = (time: number, id: string) => `${String(Math.max(0, time)).padStart(15, '0')}:${id}`;

/**
 * The clock retention and stream-time deadlines follow: the task's stream time, but never more than maxSkewMs ahead
 * of the wall clock. Stream time is the highest record timestamp seen, so one record from a producer whose clock is
 * years ahead would otherwise move it years ahead for good, and with it expire every remembered command and ended
 * saga instance and fire every deadline. A replay, whose record times are behind the wall clock, is not affected.
 */
export const heldStreamTime = (streamTime: number, wallClock: number, maxSkewMs: number) => Math.min(streamTime, wallClock + maxSkewMs);

/**
 * While a task's stream time is held ahead of the wall clock, records dated before it do not move it, so stream-time
 * punctuations stop until the wall clock catches up (years, after one record from a producer with a wrong clock).
 * The returned `check` arms a wall-clock punctuation that calls `fn` with the held time meanwhile; call it when stream
 * time may have moved (init, each record). It is armed only then, so a task whose records are not ahead of the wall
 * clock has no extra punctuation (no empty transaction every interval); it calls `fn` once more with the stream time
 * and disarms itself when the wall clock has caught up.
 */
export function whileHeldAhead(ctx: ProcessorContext, maxSkewMs: number, everyMs: number, fn: (held: number) => void | Promise<void>): () => void {
  let armed: Cancellable | undefined;
  return () => {
    if (armed || !(ctx.streamTime > ctx.wallClockTime + maxSkewMs)) return;
    armed = ctx.schedule(everyMs, 'wall-clock', async () => {
      const held = heldStreamTime(ctx.streamTime, ctx.wallClockTime, maxSkewMs);
      if (held === ctx.streamTime) {
        armed?.cancel();
        armed = undefined;
      }
      await fn(held);
    });
  };
}

/** How often a retention punctuation looks for what expired: a tenth of the retention, from 1 s to 1 h. */
export const retentionCheckMs = (retentionMs: number) => Math.min(3_600_000, Math.max(1000, Math.floor(retentionMs / 10)));

/**
 * Removes the entries due before `before` (at most `limit`, oldest first, so one transaction stays small) and returns
 * them as [key, id]. The removal is a buffered store write: it commits or aborts with what the caller does with them.
 */
export async function takeDue(index: KeyValueStore<string>, before: number, limit: number): Promise<[string, string][]> {
  const due: [string, string][] = [];
  for await (const entry of index.range({ lt: timeKey(before, ''), limit })) due.push(entry);
  for (const [key] of due) index.delete(key);
  return due;
}
