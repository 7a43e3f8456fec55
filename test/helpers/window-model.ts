/**
 * A model of window processors that shares no code with src/processors/window: it keeps every window of every key in
 * plain arrays, written from docs/windows.md. It says which records are late, what each record changes (and in which
 * order the results of `emit: update` go out), which windows close when (the results of `emit: close`), and which
 * windows a store still holds (not yet expired).
 */
import { partitionForKey } from '../../src/serde/murmur2.ts';

export type WindowDecl =
  | { kind: 'tumbling'; sizeMs: number; graceMs: number; retentionMs?: number }
  | { kind: 'hopping'; sizeMs: number; advanceMs: number; graceMs: number; retentionMs?: number }
  | { kind: 'sliding'; timeDifferenceMs: number; graceMs: number; retentionMs?: number }
  | { kind: 'session'; gapMs: number; graceMs: number; retentionMs?: number };

/** count, sum, min and max of an amount, or (reducer) the amounts in the order they were folded */
export interface Agg {
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  amounts: number[];
}

export interface ModelWindow {
  key: string;
  start: number;
  end: number;
  agg: Agg;
  closed: boolean;
  expired: boolean;
}

export type Result = { key: string; start: string; end: string; removed?: true } & Partial<Omit<Agg, 'amounts'>> & { value?: number[] };

const empty = (): Agg => ({ count: 0, sum: 0, min: null, max: null, amounts: [] });
const plus = (a: Agg, amount: number): Agg => ({
  count: a.count + 1,
  sum: a.sum + amount,
  min: a.min === null ? amount : Math.min(a.min, amount),
  max: a.max === null ? amount : Math.max(a.max, amount),
  amounts: [...a.amounts, amount],
});
const join = (a: Agg, b: Agg): Agg => ({
  count: a.count + b.count,
  sum: a.sum + b.sum,
  min: a.min === null ? b.min : b.min === null ? a.min : Math.min(a.min, b.min),
  max: a.max === null ? b.max : b.max === null ? a.max : Math.max(a.max, b.max),
  amounts: [...a.amounts, ...b.amounts],
});

export class WindowModel {
  private readonly streamTime = new Map<number, number>();
  readonly windows: ModelWindow[] = [];
  private readonly points: { key: string; time: number; amount: number }[] = [];
  /** results in the order `emit: update` sends them */
  readonly updates: Result[] = [];
  /** final results, in the order windows closed */
  readonly closes: Result[] = [];
  late = 0;

  constructor(
    private readonly w: WindowDecl,
    private readonly partitions: number,
    private readonly reducer = false,
  ) {}

  private get retention(): number {
    return this.w.retentionMs ?? this.w.graceMs;
  }

  result(w: ModelWindow): Result {
    const head = { key: w.key, start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString() };
    if (this.reducer) return { ...head, value: w.agg.amounts };
    return { ...head, count: w.agg.count, sum: w.agg.sum, min: w.agg.min, max: w.agg.max };
  }

  private closeAt(w: ModelWindow): number {
    switch (this.w.kind) {
      case 'tumbling':
      case 'hopping':
        return w.end + this.w.graceMs; // [start, end): the last time in it is end - 1
      case 'sliding':
        return w.end + 1 + this.w.graceMs; // [start, end]
      case 'session':
        return w.end + this.w.gapMs + 1 + this.w.graceMs; // a record at end + gap still joins it
    }
  }

  private expireAt(w: ModelWindow): number {
    return this.closeAt(w) - this.w.graceMs + this.retention;
  }

  private live(key: string): ModelWindow[] {
    return this.windows.filter((x) => x.key === key && !x.expired).sort((a, b) => a.start - b.start);
  }

  apply(key: string, time: number, amount: number): void {
    const p = partitionForKey(key, this.partitions);
    const before = this.streamTime.get(p) ?? -1;
    const now = Math.max(before, time);
    this.streamTime.set(p, now);
    const w = this.w;
    const update = (x: ModelWindow) => this.updates.push(this.result(x));
    const create = (start: number, end: number, agg: Agg): ModelWindow => {
      const x = { key, start, end, agg, closed: false, expired: false };
      this.windows.push(x);
      return x;
    };
    if (w.kind === 'tumbling' || w.kind === 'hopping') {
      const advance = w.kind === 'hopping' ? w.advanceMs : w.sizeMs;
      const starts: number[] = [];
      for (let s = Math.floor(time / advance) * advance; s > time - w.sizeMs && s >= 0; s -= advance) starts.unshift(s);
      const open = starts.filter((s) => s + w.sizeMs + w.graceMs > now);
      if (open.length === 0) this.late++;
      for (const s of open) {
        const x = this.live(key).find((y) => y.start === s) ?? create(s, s + w.sizeMs, empty());
        x.agg = plus(x.agg, amount);
        update(x);
      }
    } else if (time + w.graceMs < before) {
      this.late++;
    } else if (w.kind === 'sliding') {
      const d = w.timeDifferenceMs;
      this.points.push({ key, time, amount });
      let own = this.live(key).find((y) => y.end === time);
      if (own) own.agg = plus(own.agg, amount);
      else {
        const inside = this.points.filter((q) => q.key === key && q.time >= time - d && q.time <= time);
        // stable: records at one time stay in arrival order
        inside.sort((a, b) => a.time - b.time);
        own = create(time - d, time, inside.reduce((a, q) => plus(a, q.amount), empty()));
      }
      update(own);
      for (const x of this.live(key).filter((y) => y.end > time && y.end <= time + d).sort((a, b) => a.end - b.end)) {
        x.agg = plus(x.agg, amount);
        update(x);
      }
    } else {
      const gap = w.gapMs;
      const joined = this.live(key).filter((x) => x.end >= time - gap && x.start <= time + gap);
      if (joined.length === 0) update(create(time, time, plus(empty(), amount)));
      else {
        const start = Math.min(time, joined[0]!.start);
        const end = Math.max(time, joined.at(-1)!.end);
        let agg = joined[0]!.agg;
        for (const x of joined.slice(1)) agg = join(agg, x.agg);
        for (const x of joined) {
          this.windows.splice(this.windows.indexOf(x), 1);
          if (x.start !== start) this.updates.push({ key, start: new Date(x.start).toISOString(), end: new Date(x.end).toISOString(), removed: true });
        }
        update(create(start, end, plus(agg, amount)));
      }
    }
    // close, then expire, what stream time passed in this record's partition
    const mine = this.windows.filter((x) => partitionForKey(x.key, this.partitions) === p);
    for (const x of mine.filter((y) => !y.closed && this.closeAt(y) <= now).sort((a, b) => this.closeAt(a) - this.closeAt(b))) {
      x.closed = true;
      this.closes.push(this.result(x));
    }
    for (const x of mine) if (this.expireAt(x) <= now) x.expired = true;
  }

  /** Windows a store must hold: closed or not, not expired. */
  held(): ModelWindow[] {
    return this.windows.filter((x) => !x.expired);
  }
}
