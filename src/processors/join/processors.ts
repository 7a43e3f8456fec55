/**
 * The four joins (docs/joins.md), each a processor of one task: its reads and writes are the task's store operations
 * and forwards, so they commit with the input offsets in the task's transaction like every processor's.
 *
 * - stream-table: the right table's rows in the `table` store; each left event is joined with its key's row.
 * - table-table: both tables' rows (`left`, `right`); a change of either re-sends the key's join row (a tombstone
 *   when it had one and has none any more).
 * - stream-stream: both sides' events buffered by key and time (`left-buffer`, `right-buffer`); each event joins the
 *   other side's buffered events within the window, so each pair is sent once, when its second event comes. Buffered
 *   events are deleted when stream time passes them by the window and grace (`join-index`).
 * - foreign-key: see foreignKeyLeft and foreignKeySubscriptions.
 */
import { isPlainObject } from '../../serde/envelope.ts';
import { compileExpression } from '../expressions.ts';
import type { Processor, ProcessorContext } from '../types.ts';
import { timeKey } from '../time-index.ts';
import { expiryDue, expiryKey, isPointKeyOf, pointBounds, pointKey, STREAM_TIME_KEY } from '../window/store-keys.ts';
import { keyOf } from './stages.ts';

export type JoinMode = 'inner' | 'left' | 'outer';

/** What a join sends for a key and its two sides: `{ key, left, right }`, or the `select:` fields over it. */
export type Combine = (key: string, left: unknown, right: unknown) => Promise<unknown>;

export function combiner(processor: string, select: Record<string, string> | undefined): Combine {
  if (select === undefined) return async (key, left, right) => ({ key, left, right });
  const fields = Object.entries(select).map(([field, source]) => [field, compileExpression(source, `join "${processor}" select.${field}`)] as const);
  return async (key, left, right) => {
    const input = { key, left, right };
    const out: Record<string, unknown> = {};
    for (const [field, e] of fields) {
      const v = await e.evaluate(input);
      if (v !== undefined) out[field] = v;
    }
    return out;
  };
}

export function streamTableJoin(o: { table: string; mode: JoinMode; output: string; combine: Combine }): Processor {
  return {
    async process(record, ctx) {
      const key = record.key!;
      const table = ctx.store('table');
      if (record.topic === o.table) {
        if (record.value === null) table.delete(key);
        else table.put(key, record.value);
        return ctx.count('join_records', { outcome: 'table' });
      }
      const row = await table.get(key);
      if (row === undefined && o.mode === 'inner') return ctx.count('join_records', { outcome: 'unmatched' });
      ctx.forward(o.output, key, await o.combine(key, record.value, row ?? null));
      ctx.count('join_records', { outcome: 'joined' });
    },
  };
}

/** Whether a table-table join has a row for a key with these sides. */
export function tableJoinHas(mode: JoinMode, left: unknown, right: unknown): boolean {
  if (mode === 'inner') return left !== undefined && right !== undefined;
  if (mode === 'left') return left !== undefined;
  return left !== undefined || right !== undefined;
}

export function tableTableJoin(o: { right: string; mode: JoinMode; output: string; combine: Combine }): Processor {
  return {
    async process(record, ctx) {
      const key = record.key!;
      const side = record.topic === o.right ? 'right' : 'left';
      const stores = { left: ctx.store('left'), right: ctx.store('right') };
      const sides = { left: await stores.left.get(key), right: await stores.right.get(key) };
      const had = tableJoinHas(o.mode, sides.left, sides.right);
      sides[side] = record.value === null ? undefined : record.value;
      if (record.value === null) stores[side].delete(key);
      else stores[side].put(key, record.value);
      ctx.count('join_records', { outcome: 'table' });
      if (tableJoinHas(o.mode, sides.left, sides.right)) {
        ctx.forward(o.output, key, await o.combine(key, sides.left ?? null, sides.right ?? null));
        ctx.count('join_records', { outcome: 'joined' });
      } else if (had) ctx.forward(o.output, key, null);
    },
  };
}

/** Expiry entries looked at after each record (a few times what one record creates) and per punctuation. */
const PER_RECORD = 16;
const PER_PUNCTUATION = 1000;

/** In `join-index`: an event of a left or outer stream-stream join that has joined nothing yet, due when its window closes. */
const unmatchedKey = (at: number, entry: string) => `u:${timeKey(at, entry)}`;
const unmatchedDue = (streamTime: number) => ({ gte: 'u:', lt: `u:${timeKey(streamTime + 1, '')}` });

export function streamStreamJoin(o: {
  right: string;
  mode: JoinMode;
  beforeMs: number;
  afterMs: number;
  graceMs: number;
  output: string;
  combine: Combine;
  timeOf(record: { value: unknown; timestamp: number }): number | undefined;
}): Processor {
  // a record not late (at or after streamTime - grace) joins records at most max(before, after) away from it
  const keepMs = Math.max(o.beforeMs, o.afterMs) + o.graceMs;
  // no record that is not late can join a left event at l once stream time passes l + after + grace (a right one
  // at r: r + before + grace); its window closes then, and a left (outer) join sends it alone if it joined nothing
  const closeAt = (side: 'l' | 'r', time: number) => time + (side === 'l' ? o.afterMs : o.beforeMs) + o.graceMs + 1;
  const alone = (side: 'l' | 'r') => (side === 'l' ? o.mode !== 'inner' : o.mode === 'outer');

  const sweep = async (ctx: ProcessorContext, streamTime: number, limit: number) => {
    const index = ctx.store<string | number>('join-index');
    const buffer = (entry: string) => ctx.store(entry.startsWith('l:') ? 'left-buffer' : 'right-buffer');
    // windows that closed first: an event expires no earlier than its window closes
    const closed: [string, string][] = [];
    if (o.mode !== 'inner') for await (const [k, entry] of index.range({ ...unmatchedDue(streamTime), limit })) closed.push([k, entry as string]);
    for (const [k, entry] of closed) {
      index.delete(k);
      const bk = entry.slice(2);
      const event = await buffer(entry).get(bk);
      if (event === undefined) continue;
      const end = keyEnd(bk);
      const key = bk.slice(0, end);
      const [left, right] = entry.startsWith('l:') ? [event, null] : [null, event];
      ctx.forward(o.output, key, await o.combine(key, left, right), { timestamp: Number(bk.slice(end + 1, end + 16)) });
      ctx.count('join_records', { outcome: 'unmatched' });
    }
    const due: [string, string][] = [];
    for await (const [k, entry] of index.range({ ...expiryDue(streamTime), limit })) due.push([k, entry as string]);
    for (const [k, entry] of due) {
      index.delete(k);
      buffer(entry).delete(entry.slice(2));
      ctx.count('join_records', { outcome: 'expired' });
    }
  };

  return {
    init(ctx) {
      ctx.schedule(Math.min(3_600_000, Math.max(1000, Math.floor(keepMs / 10))), 'stream-time', async () => {
        const streamTime = await ctx.store<number>('join-index').get(STREAM_TIME_KEY);
        if (typeof streamTime === 'number') await sweep(ctx, streamTime, PER_PUNCTUATION);
      });
    },
    async process(record, ctx) {
      const key = record.key!;
      // the time stage in front checked the time and that the record is not late
      const time = o.timeOf(record)!;
      const index = ctx.store<string | number>('join-index');
      const before = await index.get(STREAM_TIME_KEY);
      const streamTime = Math.max(typeof before === 'number' ? before : -1, time);
      if (streamTime !== before) index.put(STREAM_TIME_KEY, streamTime);

      const side = record.topic === o.right ? 'r' : 'l';
      const otherSide = side === 'l' ? 'r' : 'l';
      const own = ctx.store(side === 'r' ? 'right-buffer' : 'left-buffer');
      const other = ctx.store(side === 'r' ? 'left-buffer' : 'right-buffer');
      const pk = pointKey(key, time, record.topic, record.offset);
      own.put(pk, record.value);
      const entry = `${side}:${pk}`;
      index.put(expiryKey(time + keepMs + 1, entry), entry);

      // a left event at t joins right events in [t - before, t + after]; a right event at t the left ones in [t - after, t + before]
      const [from, to] = side === 'r' ? [time - o.afterMs, time + o.beforeMs] : [time - o.beforeMs, time + o.afterMs];
      const matches: [string, unknown][] = [];
      for await (const [k, v] of other.range(pointBounds(key, Math.max(0, from), to))) if (isPointKeyOf(k, key)) matches.push([k, v]);
      for (const [k, m] of matches) {
        const [left, right] = side === 'r' ? [m, record.value] : [record.value, m];
        const t = Math.max(time, timeOfValue(m, o.timeOf) ?? time);
        ctx.forward(o.output, key, await o.combine(key, left, right), { timestamp: t });
        ctx.count('join_records', { outcome: 'joined' });
        // it joined: it is not sent alone when its window closes
        if (alone(otherSide)) index.delete(unmatchedKey(closeAt(otherSide, pointTime(k, key)), `${otherSide}:${k}`));
      }
      if (matches.length === 0) {
        if (alone(side)) index.put(unmatchedKey(closeAt(side, time), entry), entry);
        else ctx.count('join_records', { outcome: 'unmatched' });
      }
      await sweep(ctx, streamTime, PER_RECORD);
    },
  };
}

/** The time in a buffer key of `key` (`<key>@<time, 15 digits>@…`). */
const pointTime = (bufferKey: string, key: string) => Number(bufferKey.slice(key.length + 1, key.length + 16));

/** Where the record key ends in a buffer key: before the last three `@` fields (time, offset, topic). */
function keyEnd(bufferKey: string): number {
  let at = bufferKey.length;
  for (let i = 0; i < 3; i++) at = bufferKey.lastIndexOf('@', at - 1);
  return at;
}

/** The time of a buffered event (with time: record the buffer has no record timestamp: the result takes the newer one's). */
function timeOfValue(v: unknown, timeOf: (r: { value: unknown; timestamp: number }) => number | undefined): number | undefined {
  return timeOf({ value: v, timestamp: -1 });
}

/** A foreign-key join's subscription: a left row (`key`, its version `tag`) refers to the right key it is sent under. */
export interface Subscription {
  op: 'subscribe' | 'unsubscribe';
  key: string;
  tag?: string;
}

/** The answer to a subscription, or to a change of the right row it refers to, sent back under the left key. */
export interface Response {
  tag: string;
  right: unknown;
}

export const isSubscription = (v: unknown): v is Subscription =>
  isPlainObject(v) && (v.op === 'subscribe' || v.op === 'unsubscribe') && typeof v.key === 'string' && (v.op === 'unsubscribe' || typeof v.tag === 'string');
export const isResponse = (v: unknown): v is Response => isPlainObject(v) && typeof v.tag === 'string' && 'right' in v;

interface LeftRow {
  value: unknown;
  fk: string | null;
  /** the input offset of the left record that wrote the row: a left key's records are in one partition, so it only grows */
  tag: string;
}

/**
 * First stage of a foreign-key join, keyed by the left key. A left row's change unsubscribes it from its old right
 * key and subscribes it to its new one (through the repartition topic), tagged with the record's offset; the
 * subscriptions stage answers through the response topic with the right row. Only an answer carrying the row's current
 * tag is joined: answers from its old right key, or for its older versions, arrive in any order and are dropped
 * (`stale`), so the last result for a left key always joins its current row with its current right key's row.
 */
export function foreignKeyLeft(o: { processor: string; foreignKey: string; mode: JoinMode; output: string; subscriptions: string; responses: string; combine: Combine }): Processor {
  const fk = compileExpression(o.foreignKey, `join "${o.processor}" foreignKey`);
  return {
    async process(record, ctx) {
      const key = record.key!;
      const rows = ctx.store<LeftRow>('left');
      const row = await rows.get(key);
      if (record.topic === o.responses) {
        const r = record.value as Response;
        if (!row || row.tag !== r.tag) return ctx.count('join_records', { outcome: 'stale' });
        if (r.right === null && o.mode === 'inner') {
          ctx.forward(o.output, key, null);
          return ctx.count('join_records', { outcome: 'unmatched' });
        }
        ctx.forward(o.output, key, await o.combine(key, row.value, r.right));
        return ctx.count('join_records', { outcome: 'joined' });
      }
      ctx.count('join_records', { outcome: 'table' });
      const value = record.value;
      const next = value === null ? null : (keyOf(await fk.evaluate(value), o.processor, 'foreignKey', o.foreignKey) ?? null);
      if (row?.fk != null && row.fk !== next) ctx.forward(o.subscriptions, row.fk, { op: 'unsubscribe', key } satisfies Subscription);
      if (value === null) {
        if (row) {
          rows.delete(key);
          ctx.forward(o.output, key, null);
        }
        return;
      }
      const tag = record.offset;
      rows.put(key, { value, fk: next, tag });
      if (next !== null) {
        ctx.forward(o.subscriptions, next, { op: 'subscribe', key, tag } satisfies Subscription);
        return;
      }
      // no right key: nothing to wait for
      ctx.count('join_records', { outcome: 'unkeyed' });
      if (o.mode === 'left') ctx.forward(o.output, key, await o.combine(key, value, null));
      else if (row) ctx.forward(o.output, key, null);
    },
  };
}

const SEP = '\u0000';

/**
 * Second stage of a foreign-key join, keyed by the right key: the right table's rows (`right`) and the left rows
 * subscribed to each (`subscriptions`, `<right key>\0<left key>` → tag). A subscription is answered with the right
 * row at once; a change of a right row is sent to every left row subscribed to it.
 */
export function foreignKeySubscriptions(o: { right: string; responses: string }): Processor {
  return {
    async process(record, ctx) {
      const key = record.key!;
      const subs = ctx.store<string>('subscriptions');
      const rights = ctx.store('right');
      if (record.topic !== o.right) {
        const s = record.value as Subscription;
        if (s.op === 'unsubscribe') return subs.delete(`${key}${SEP}${s.key}`);
        subs.put(`${key}${SEP}${s.key}`, s.tag!);
        ctx.forward(o.responses, s.key, { tag: s.tag!, right: (await rights.get(key)) ?? null } satisfies Response);
        return;
      }
      ctx.count('join_records', { outcome: 'table' });
      if (record.value === null) rights.delete(key);
      else rights.put(key, record.value);
      const answers: [string, string][] = [];
      for await (const [k, tag] of subs.range({ prefix: `${key}${SEP}` })) answers.push([k.slice(key.length + 1), tag]);
      for (const [left, tag] of answers) ctx.forward(o.responses, left, { tag, right: record.value } satisfies Response);
    },
  };
}
