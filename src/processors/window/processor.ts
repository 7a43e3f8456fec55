/**
 * The window processor (docs/windows.md): per record key, windows by event time in the `windows` store, changed by
 * each record that is not late. Its stream time (the highest record time it has seen) is kept in the `window-index`
 * store with the windows' close and expiry times, so a restored task closes and deletes the same windows at the same
 * points. With `emit: update` every change of a window goes to the output; with `emit: close` each window goes once,
 * when stream time passes its end and the grace period (Kafka Streams' suppress until window closes).
 *
 * Windows close and expire as stream time moves: after each record (a chunk a few times larger than what one record
 * can create, so deletion keeps up) and on a stream-time punctuation (a larger chunk). Nothing happens on a quiet
 * partition: its stream time does not move, as in Kafka Streams. Everything is a store write or a forward of the
 * task's transaction.
 */
import type { KeyValueStore, Processor, ProcessorContext } from '../types.ts';
import { retentionCheckMs } from '../time-index.ts';
import { timeWindowsFor, type WindowKind, type WindowSpan } from './kinds.ts';
import type { Reducer } from './reducer.ts';
import {
  closeDue,
  closeKey,
  expiryDue,
  expiryKey,
  isPointKeyOf,
  isWindowKeyOf,
  pointBounds,
  pointKey,
  STREAM_TIME_KEY,
  windowBounds,
  windowKey,
} from './store-keys.ts';
import type { WindowSpecDecl } from '../../topology/schema.ts';

/** Value of the `windows` store (docs/wire-formats.md). */
export interface StoredWindow extends WindowSpan {
  key: string;
  aggregate: unknown;
}

export interface WindowOptions {
  spec: WindowSpecDecl;
  kind: WindowKind;
  reducer: Reducer;
  emit: 'update' | 'close';
  /** topic name, when results are sent */
  output: string | undefined;
  eventTime(record: { value: unknown; timestamp: number }): number | undefined;
}

/** Index entries looked at per stream-time punctuation (each of close and expiry). */
export const PUNCTUATION_CHUNK = 1000;

/** What a window result record holds: key, start and end (ISO-8601), and the aggregation fields. */
export function windowResult(w: StoredWindow, reducer: Reducer): Record<string, unknown> {
  return { key: w.key, start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString(), ...reducer.result(w.aggregate) };
}

export function windowProcessor(o: WindowOptions): Processor {
  const { kind, reducer } = o;
  // one record creates at most windowsPerRecord windows and one point: sweeping twice that keeps the stores bounded
  const perRecord = Math.max(16, 2 * kind.windowsPerRecord + 2);

  const stores = (ctx: ProcessorContext) => ({
    windows: ctx.store<StoredWindow>('windows'),
    index: ctx.store<string | number>('window-index'),
  });

  const send = (ctx: ProcessorContext, w: StoredWindow) => {
    if (o.output !== undefined) ctx.forward(o.output, w.key, windowResult(w, reducer));
  };

  const open = (index: KeyValueStore<string | number>, key: string, span: WindowSpan): StoredWindow => {
    const wk = windowKey(key, kind.position(span));
    index.put(expiryKey(kind.expireAt(span), `w:${wk}`), `w:${wk}`);
    if (o.emit === 'close') index.put(closeKey(kind.closeAt(span), wk), wk);
    return { key, start: span.start, end: span.end, aggregate: reducer.initial() };
  };

  const forget = (index: KeyValueStore<string | number>, w: StoredWindow) => {
    const wk = windowKey(w.key, kind.position(w));
    index.delete(expiryKey(kind.expireAt(w), `w:${wk}`));
    if (o.emit === 'close') index.delete(closeKey(kind.closeAt(w), wk));
  };

  /** Closes (emit: close) and deletes what stream time has passed, at most `limit` index entries of each. */
  const sweep = async (ctx: ProcessorContext, streamTime: number, limit: number) => {
    const { windows, index } = stores(ctx);
    if (o.emit === 'close') {
      const due: [string, string][] = [];
      for await (const [k, wk] of index.range({ ...closeDue(streamTime), limit })) due.push([k, wk as string]);
      for (const [k, wk] of due) {
        index.delete(k);
        const w = await windows.get(wk);
        if (w) send(ctx, w);
        ctx.count('windows', { event: 'closed' });
      }
    }
    const expired: [string, string][] = [];
    for await (const [k, entry] of index.range({ ...expiryDue(streamTime), limit })) expired.push([k, entry as string]);
    for (const [k, entry] of expired) {
      index.delete(k);
      const target = entry.slice(2);
      if (entry.startsWith('p:')) {
        ctx.store('window-points').delete(target);
        continue;
      }
      const w = await windows.get(target);
      if (w && o.emit === 'close') {
        // its close is due too (closeAt <= expireAt) but lay beyond this sweep's chunk: close it first
        const ck = closeKey(kind.closeAt(w), target);
        if ((await index.get(ck)) !== undefined) {
          index.delete(ck);
          send(ctx, w);
          ctx.count('windows', { event: 'closed' });
        }
      }
      windows.delete(target);
      ctx.count('windows', { event: 'expired' });
    }
  };

  const timeWindows = async (ctx: ProcessorContext, key: string, time: number, streamTime: number, c: unknown) => {
    const { windows, index } = stores(ctx);
    const size = o.spec.kind === 'tumbling' || o.spec.kind === 'hopping' ? o.spec.sizeMs : 0;
    const advance = o.spec.kind === 'hopping' ? o.spec.advanceMs : size;
    for (const span of timeWindowsFor(time, size, advance)) {
      if (kind.closeAt(span) <= streamTime) continue; // this one closed; a later one of a hopping record may not have
      const wk = windowKey(key, kind.position(span));
      const w = (await windows.get(wk)) ?? open(index, key, span);
      w.aggregate = await reducer.add(w.aggregate, c);
      windows.put(wk, w);
      if (o.emit === 'update') send(ctx, w);
    }
  };

  const slidingWindows = async (ctx: ProcessorContext, key: string, time: number, c: unknown) => {
    if (o.spec.kind !== 'sliding') return;
    const diff = o.spec.timeDifferenceMs;
    const { windows, index } = stores(ctx);
    const points = ctx.store('window-points');
    const record = ctx.record!;
    const pk = pointKey(key, time, record.topic, record.offset);
    points.put(pk, c);
    // a window a record not yet late opens ends at or after streamTime - grace: this point is in none after then
    index.put(expiryKey(time + diff + kind.graceMs + 1, `p:${pk}`), `p:${pk}`);

    const wk = windowKey(key, time);
    let own = await windows.get(wk);
    if (own) own.aggregate = await reducer.add(own.aggregate, c);
    else {
      own = open(index, key, { start: time - diff, end: time });
      let aggregate = own.aggregate;
      // the new window holds every kept record of its key in [time - diff, time], this one included, in time order
      for await (const [k, v] of points.range(pointBounds(key, time - diff, time))) if (isPointKeyOf(k, key)) aggregate = await reducer.add(aggregate, v);
      own.aggregate = aggregate;
    }
    windows.put(wk, own);
    if (o.emit === 'update') send(ctx, own);
    // later windows that reach back to this record (all still open: they end after it)
    const later: [string, StoredWindow][] = [];
    for await (const [k, w] of windows.range(windowBounds(key, time + 1, time + diff))) if (isWindowKeyOf(k, key)) later.push([k, w]);
    for (const [k, w] of later) {
      w.aggregate = await reducer.add(w.aggregate, c);
      windows.put(k, w);
      if (o.emit === 'update') send(ctx, w);
    }
  };

  const sessionWindows = async (ctx: ProcessorContext, key: string, time: number, c: unknown) => {
    if (o.spec.kind !== 'session') return;
    const gap = o.spec.gapMs;
    const { windows, index } = stores(ctx);
    // sessions of a key do not overlap, so by start they are also by end: going back from time + gap, the first
    // that ends before time - gap is the end of the ones this record joins
    const joined: StoredWindow[] = [];
    for await (const [k, w] of windows.range({ ...windowBounds(key, 0, time + gap), reverse: true })) {
      if (!isWindowKeyOf(k, key)) continue;
      if (w.end < time - gap) break;
      joined.unshift(w);
    }
    let merged: StoredWindow;
    if (joined.length === 0) merged = open(index, key, { start: time, end: time });
    else {
      let aggregate = joined[0]!.aggregate;
      for (const w of joined.slice(1)) aggregate = await reducer.merge(aggregate, w.aggregate);
      const span = { start: Math.min(time, joined[0]!.start), end: Math.max(time, joined.at(-1)!.end) };
      for (const w of joined) {
        forget(index, w);
        windows.delete(windowKey(key, kind.position(w)));
        // a session merged into one that starts elsewhere is gone: say so, as Kafka Streams sends a tombstone
        if (o.emit === 'update' && w.start !== span.start && o.output !== undefined) {
          ctx.forward(o.output, key, { key, start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString(), removed: true });
        }
      }
      merged = { ...open(index, key, span), aggregate };
    }
    merged.aggregate = await reducer.add(merged.aggregate, c);
    windows.put(windowKey(key, kind.position(merged)), merged);
    if (o.emit === 'update') send(ctx, merged);
  };

  return {
    init(ctx) {
      const length = kind.maxLengthMs ?? (o.spec.kind === 'session' ? o.spec.gapMs : 0);
      ctx.schedule(retentionCheckMs(length + kind.retentionMs), 'stream-time', async () => {
        const streamTime = await stores(ctx).index.get(STREAM_TIME_KEY);
        if (typeof streamTime === 'number') await sweep(ctx, streamTime, PUNCTUATION_CHUNK);
      });
    },
    async process(record, ctx) {
      const key = record.key!;
      // the time stage in front of the processor checked the time and that the record is not late
      const time = o.eventTime(record)!;
      const { index } = stores(ctx);
      const before = await index.get(STREAM_TIME_KEY);
      const streamTime = Math.max(typeof before === 'number' ? before : -1, time);
      if (streamTime !== before) index.put(STREAM_TIME_KEY, streamTime);
      const c = await reducer.contribution(record.value);
      switch (o.spec.kind) {
        case 'tumbling':
        case 'hopping':
          await timeWindows(ctx, key, time, streamTime, c);
          break;
        case 'sliding':
          await slidingWindows(ctx, key, time, c);
          break;
        case 'session':
          await sessionWindows(ctx, key, time, c);
          break;
      }
      ctx.count('window_records', { outcome: 'applied' });
      await sweep(ctx, streamTime, perRecord);
    },
  };
}
