// The fold behind `foldstream rebuild` (src/processors/aggregate/rebuild.ts): an aggregate's stores planned again from
// its events through a new evolve, with the processed-commandId memory kept (and remembered again from the events where
// the store lost it), and refusals where a rebuild would lose or repeat work.
import test from 'ava';
import { FoldstreamError } from '../../src/errors.ts';
import { eventId } from '../../src/processors/aggregate/event-id.ts';
import { historyKey } from '../../src/processors/aggregate/processor.ts';
import { emptyTaskStores, planRebuild, type ReadEvent, type RebuildInput, type RebuildWrite, type TaskStores } from '../../src/processors/aggregate/rebuild.ts';
import { rememberedKey, type RememberedReply } from '../../src/processors/aggregate/remembered.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { timeKey } from '../../src/processors/time-index.ts';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const ev = (key: string, v: number, type: string, data: Record<string, unknown>, causationId: string): ReadEvent => ({
  key,
  timestamp: T0 + v * 1000,
  event: {
    eventId: eventId('ev', 'Counter', key, v),
    eventType: type,
    eventVersion: 1,
    aggregateType: 'Counter',
    aggregateId: key,
    aggregateVersion: v,
    timestamp: new Date(T0 + v * 1000).toISOString(),
    causationId,
    data,
  },
});

// the old evolve counted; the new one also keeps the largest step
const oldEvolve = (s: unknown, e: EventEnvelope) => ({ n: (s as { n: number }).n + (e.data.by as number) });
const newDecider = {
  initialState: () => ({ n: 0, max: 0 }),
  evolve: async (s: unknown, e: EventEnvelope) => {
    const c = s as { n: number; max: number };
    return { n: c.n + (e.data.by as number), max: Math.max(c.max, e.data.by as number) };
  },
};

const events = [ev('a', 1, 'Added', { by: 2 }, 'c1'), ev('a', 2, 'Added', { by: 5 }, 'c2'), ev('a', 3, 'Added', { by: 1 }, 'c2'), ev('b', 1, 'Added', { by: 3 }, 'c1')];
const accepted = (id: string, key: string, version: number, eventIds: string[], fingerprint?: string): RememberedReply => ({
  commandId: id,
  status: 'accepted',
  aggregateId: key,
  aggregateVersion: version,
  eventIds,
  ...(fingerprint ? { fingerprint } : {}),
});

// b's commands went to another partition than its key's hash (a producer with its own partitioner): its state is there
const where = (key: string, tasks: number) => (key === 'a' ? partitionForKey('a', tasks) : (partitionForKey('a', tasks) + 1) % tasks);

/** the stores as the aggregate left them with the old evolve: every event folded, every command remembered, a rejection too */
function oldStores(tasks: number): Map<number, TaskStores> {
  const stores = new Map<number, TaskStores>();
  for (const key of ['a', 'b']) {
    const p = where(key, tasks);
    const s = stores.get(p) ?? (stores.set(p, emptyTaskStores()).get(p) as TaskStores);
    s.position = { offsets: { commands: '10' }, streamTime: T0 };
    const mine = events.filter((e) => e.key === key);
    s.state.set(key, { version: mine.length, state: mine.reduce((st, e) => oldEvolve(st, e.event), { n: 0 } as unknown) });
  }
  const a = stores.get(where('a', tasks))!;
  a.commands.set(rememberedKey('a', 'c1'), accepted('c1', 'a', 1, [events[0]!.event.eventId], 'fp1'));
  a.commands.set(rememberedKey('a', 'c2'), accepted('c2', 'a', 3, [events[1]!.event.eventId, events[2]!.event.eventId], 'fp2'));
  a.commands.set(rememberedKey('a', 'r1'), { commandId: 'r1', status: 'rejected', reason: 'no', code: 'NO', aggregateId: 'a', aggregateVersion: 3, eventIds: [], fingerprint: 'fp3' });
  const b = stores.get(where('b', tasks))!;
  b.commands.set(rememberedKey('b', 'c1'), accepted('c1', 'b', 1, [events[3]!.event.eventId], 'fp4'));
  return stores;
}

const input = (stores: Map<number, TaskStores>, over: Partial<RebuildInput> = {}): RebuildInput => ({
  aggregateType: 'Counter',
  decider: newDecider,
  upcasters: new Map(),
  tasks: 4,
  stores,
  events,
  history: true,
  commandRetentionMs: 0,
  now: T0 + 60_000,
  ...over,
});
const all = (w: Map<number, RebuildWrite[]>) => [...w.values()].flat();
const of = (w: Map<number, RebuildWrite[]>, store: RebuildWrite['store']) => Object.fromEntries(all(w).filter((x) => x.store === store).map((x) => [x.key, x.value]));

test('the rebuilt states are the fold of the events through the new evolve, at the same versions, in the task that holds them', async (t) => {
  const plan = await planRebuild(input(oldStores(4)));
  t.deepEqual(of(plan.writes, 'state'), { a: { version: 3, state: { n: 8, max: 5 } }, b: { version: 1, state: { n: 3, max: 3 } } });
  for (const key of ['a', 'b']) t.deepEqual((plan.writes.get(where(key, 4)) ?? []).filter((w) => w.store === 'state').map((w) => w.key), [key]);
  t.is(plan.aggregates, 2);
  t.is(plan.events, 4);
  t.is(plan.changed, 2);
  t.deepEqual(Object.keys(of(plan.writes, 'history')).sort(), [historyKey('a', 1), historyKey('a', 2), historyKey('a', 3), historyKey('b', 1)].sort());
});

test('the processed commandIds are kept: nothing written to the commands store while it holds every reply', async (t) => {
  const plan = await planRebuild(input(oldStores(4)));
  t.deepEqual(of(plan.writes, 'commands'), {});
  t.is(plan.rememberedAgain, 0);
});

test('a commands store that lost its replies gets the accepted ones back from the events (one reply per command, its events grouped)', async (t) => {
  const stores = oldStores(4);
  for (const s of stores.values()) s.commands.clear();
  const plan = await planRebuild(input(stores));
  t.deepEqual(of(plan.writes, 'commands'), {
    [rememberedKey('a', 'c1')]: accepted('c1', 'a', 1, [events[0]!.event.eventId]),
    [rememberedKey('a', 'c2')]: accepted('c2', 'a', 3, [events[1]!.event.eventId, events[2]!.event.eventId]),
    [rememberedKey('b', 'c1')]: accepted('c1', 'b', 1, [events[3]!.event.eventId]),
  });
  t.is(plan.rememberedAgain, 3);
});

test('with a retention, commandIds remembered again are indexed for expiry, and those past the retention are not remembered', async (t) => {
  const stores = oldStores(4);
  for (const s of stores.values()) s.commands.clear();
  // c2 of a was handled at T0+3s: within 58.5 s of now (T0+60s); c1 of a and b at T0+1s: not
  const plan = await planRebuild(input(stores, { commandRetentionMs: 58_500 }));
  t.deepEqual(Object.keys(of(plan.writes, 'commands')), [rememberedKey('a', 'c2')]);
  t.deepEqual(of(plan.writes, 'command-expiry'), { [timeKey(T0 + 3000, rememberedKey('a', 'c2'))]: { key: rememberedKey('a', 'c2'), handledAt: T0 + 3000 } });
});

test('events of another aggregate type on the topic are not folded', async (t) => {
  const other = { ...ev('a', 1, 'Paid', { by: 100 }, 'x'), event: { ...ev('a', 1, 'Paid', { by: 100 }, 'x').event, aggregateType: 'Payment' } };
  const plan = await planRebuild(input(oldStores(4), { events: [...events, other] }));
  t.is(plan.others, 1);
  t.deepEqual(of(plan.writes, 'state').a, { version: 3, state: { n: 8, max: 5 } });
});

test('refused when a state store is ahead of the events (events lost): new events would be numbered again', async (t) => {
  const e = await t.throwsAsync(planRebuild(input(oldStores(4), { events: events.filter((x) => !(x.key === 'a' && x.event.aggregateVersion === 3)) })), { instanceOf: FoldstreamError });
  t.is(e!.code, 'REBUILD_UNSAFE');
  t.regex(e!.message, /version 3 in its state store, but its events on the topic end at version 2/);
});

test('refused when an aggregate of the store has no events left, and when versions have a gap', async (t) => {
  const gone = await t.throwsAsync(planRebuild(input(oldStores(4), { events: events.filter((x) => x.key !== 'b') })), { instanceOf: FoldstreamError });
  t.is(gone!.code, 'REBUILD_UNSAFE');
  const stores = oldStores(4);
  stores.get(where('a', 4))!.state.delete('a');
  const gap = await t.throwsAsync(planRebuild(input(stores, { events: events.filter((x) => !(x.key === 'a' && x.event.aggregateVersion === 2)) })), { instanceOf: FoldstreamError });
  t.is(gap!.code, 'HISTORY_INCOMPLETE');
});

test('refused when a task with events has no input position: its rejected commands would be decided again', async (t) => {
  const stores = oldStores(4);
  stores.get(where('b', 4))!.position = undefined;
  const e = await t.throwsAsync(planRebuild(input(stores)), { instanceOf: FoldstreamError });
  t.is(e!.code, 'REBUILD_UNSAFE');
  t.regex(e!.message, /no input position/);
});

test('an event written twice (at-least-once) is folded once', async (t) => {
  const plan = await planRebuild(input(oldStores(4), { events: [...events, events[1]!] }));
  t.deepEqual(of(plan.writes, 'state').a, { version: 3, state: { n: 8, max: 5 } });
});

test('an evolve that throws on an event the aggregate wrote stops the rebuild, naming the event', async (t) => {
  const decider = { initialState: () => ({ n: 0 }), evolve: async (s: unknown, e: EventEnvelope) => {
    if (e.aggregateVersion === 2) throw new Error('no field max');
    return s;
  } };
  const e = await t.throwsAsync(planRebuild(input(oldStores(4), { decider })), { instanceOf: FoldstreamError });
  t.is(e!.code, 'HANDLER_FAILED');
  t.regex(e!.message, /evolve threw on event 2 \(Added, .*\) of Counter "a": no field max/);
});
