// The state of an aggregate as of a time (src/processors/aggregate/state-at.ts), the fold behind `foldstream
// state-at` and `?at=`: events in version order up to the first dated after the time; a real gap in the versions is
// HISTORY_INCOMPLETE, an event whose timestamp is not a time is named as such (issue 14, defect 6: both used to be
// reported as events lost to retention).
import test from 'ava';
import { FoldstreamError } from '../../src/errors.ts';
import { stateAt } from '../../src/processors/aggregate/state-at.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';

interface Count {
  n: number;
  seen: number[];
}
const counter = {
  initialState: (): unknown => ({ n: 0, seen: [] }),
  evolve: async (s: unknown, e: EventEnvelope): Promise<unknown> => ({ n: (s as Count).n + (e.data.by as number), seen: [...(s as Count).seen, e.aggregateVersion] }),
};
const added = (v: number, timestamp: string, by = 1): EventEnvelope => ({
  eventId: `e${v}`,
  eventType: 'Added',
  eventVersion: 1,
  aggregateType: 'Counter',
  aggregateId: 'c1',
  aggregateVersion: v,
  timestamp,
  data: { by },
});
const at = (iso: string) => Date.parse(iso);

test('events are folded in version order up to the first one dated after the time; that one and all after it are later', async (t) => {
  const events = [added(1, '2026-01-01T00:00:00Z'), added(2, '2026-01-03T00:00:00Z'), added(3, '2026-01-02T00:00:00Z'), added(4, '2026-01-05T00:00:00Z')];
  t.like(await stateAt(counter, new Map(), events, at('2026-01-02T12:00:00Z')), { version: 1, state: { n: 1, seen: [1] }, later: 3 });
  t.like(await stateAt(counter, new Map(), events, at('2026-01-04T00:00:00Z')), { version: 3, state: { n: 3, seen: [1, 2, 3] }, later: 1 });
  t.like(await stateAt(counter, new Map(), events, undefined), { version: 4, later: 0 });
});

test('an event dated before the one before it does not make the history look incomplete (it said events were lost)', async (t) => {
  // a client dated its second command a day before its first
  const events = [added(1, '2026-01-02T00:00:00Z'), added(2, '2026-01-01T00:00:00Z')];
  const r = await stateAt(counter, new Map(), events, at('2026-01-01T12:00:00Z'));
  t.like(r, { version: 0, later: 2 });
});

test('a gap in the versions is HISTORY_INCOMPLETE naming the missing version', async (t) => {
  const e = await t.throwsAsync(stateAt(counter, new Map(), [added(1, '2026-01-01T00:00:00Z'), added(3, '2026-01-01T00:00:00Z')], undefined), { instanceOf: FoldstreamError });
  t.like(e, { code: 'HISTORY_INCOMPLETE', message: 'event versions of c1 jump from 1 to 3' });
  t.regex(e!.hint!, /no event 2 of this aggregate/);
});

test('an event whose timestamp is not a time is ENVELOPE_INVALID with a time asked, and folded as usual without one', async (t) => {
  const events = [added(1, '2026-01-01T00:00:00Z'), added(2, 'yesterday')];
  const e = await t.throwsAsync(stateAt(counter, new Map(), events, at('2026-01-05T00:00:00Z')), { instanceOf: FoldstreamError });
  t.like(e, { code: 'ENVELOPE_INVALID', message: 'event 2 of c1 (e2) has timestamp "yesterday", which is not a time' });
  t.regex(e!.hint!, /ask for the state without a time/);
  t.like(await stateAt(counter, new Map(), events, undefined), { version: 2, state: { n: 2 } });
});
