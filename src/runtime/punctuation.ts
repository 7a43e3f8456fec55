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

  add(intervalMs: number, type: PunctuationType, fn: Punctuator['fn'], now: number): Cancellable {
    if (!(intervalMs > 0)) throw new RangeError(`punctuation interval must be positive, got ${intervalMs}`);
    const p: Punctuator = { intervalMs, type, fn, next: alignedAfter(now, intervalMs), cancelled: false };
    this.punctuators.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
        const i = this.punctuators.indexOf(p);
        if (i >= 0) this.punctuators.splice(i, 1);
      },
    };
  }

  get hasWallClock(): boolean {
    return this.punctuators.some((p) => p.type === 'wall-clock');
  }

  /** Calls due punctuators of `type` for `now`, once per crossed interval boundary, in time order. */
  async fire(type: PunctuationType, now: number, run: (p: Punctuator, at: number) => Promise<void>): Promise<number> {
    let fired = 0;
    for (;;) {
      const due = this.punctuators.filter((p) => p.type === type && !p.cancelled && p.next <= now).sort((a, b) => a.next - b.next)[0];
      if (!due) return fired;
      const at = due.next;
      due.next = type === 'wall-clock' ? alignedAfter(now, due.intervalMs) : at + due.intervalMs;
      await run(due, at);
      fired++;
    }
  }

  clear(): void {
    for (const p of this.punctuators) p.cancelled = true;
    this.punctuators.length = 0;
  }
}

/** The first multiple of interval strictly after t (t < 0: the first after 0). */
function alignedAfter(t: number, interval: number): number {
  if (t < 0) return interval;
  return (Math.floor(t / interval) + 1) * interval;
}
