/**
 * Punctuations of one task. Stream-time ones fire when stream time crosses a multiple of their interval (so a
 * restarted task, whose stream time is restored with its position, fires at the same points); wall-clock ones fire
 * from a timer. Both run inside the task's transaction.
 */
import type { Cancellable, PunctuationType } from '../processors/types.ts';

export interface Punctuator {
  intervalMs: number;
  type: PunctuationType;
  fn: (timestamp: number) => void | Promise<void>;
  /** next due time (stream time or wall-clock ms) */
  next: number;
  cancelled: boolean;
}

export class PunctuationSchedule {
  private readonly punctuators: Punctuator[] = [];

  /**
   * `now` is the clock's current value; a task that has seen no record yet has no stream time (-1), and then the
   * first boundary is counted from the first stream time it sees (never from 1970).
   */
  add(intervalMs: number, type: PunctuationType, fn: Punctuator['fn'], now: number): Cancellable {
    if (!(intervalMs > 0)) throw new RangeError(`punctuation interval must be positive, got ${intervalMs}`);
    const p: Punctuator = { intervalMs, type, fn, next: now < 0 ? Number.NaN : alignedAfter(now, intervalMs), cancelled: false };
    this.punctuators.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
        const i = this.punctuators.indexOf(p);
        if (i >= 0) this.punctuators.splice(i, 1);
      },
    };
  }

  /** Whether fire(type, now) would have anything to do: lets the caller skip an await per record. */
  mayFire(type: PunctuationType, now: number): boolean {
    if (now < 0) return false;
    return this.punctuators.some((p) => p.type === type && !p.cancelled && (Number.isNaN(p.next) || p.next <= now));
  }

  get hasWallClock(): boolean {
    return this.punctuators.some((p) => p.type === 'wall-clock');
  }

  /**
   * Calls each due punctuator of `type` once, with the latest interval boundary reached, in boundary order. When the
   * clock jumps over several boundaries it fires once, not once per boundary (as Kafka Streams does): a record far
   * in the future must not start a storm of punctuations inside one transaction.
   */
  async fire(type: PunctuationType, now: number, run: (p: Punctuator, at: number) => Promise<void>): Promise<number> {
    if (now < 0) return 0;
    const mine = this.punctuators.filter((p) => p.type === type && !p.cancelled);
    for (const p of mine) if (Number.isNaN(p.next)) p.next = alignedAfter(now, p.intervalMs);
    const due = mine
      .filter((p) => p.next <= now)
      .map((p) => ({ p, at: Math.floor(now / p.intervalMs) * p.intervalMs }))
      .sort((a, b) => a.at - b.at);
    let fired = 0;
    for (const { p, at } of due) {
      if (p.cancelled) continue;
      p.next = at + p.intervalMs;
      await run(p, at);
      fired++;
    }
    return fired;
  }

  clear(): void {
    for (const p of this.punctuators) p.cancelled = true;
    this.punctuators.length = 0;
  }
}

/** The first multiple of interval strictly after t. */
function alignedAfter(t: number, interval: number): number {
  return (Math.floor(t / interval) + 1) * interval;
}
