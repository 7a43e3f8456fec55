/**
 * Selective replay (docs/projections.md#selective-replay): `foldstream replay` rebuilds some views of a running
 * projection from scratch, through the projection's own transactions. On the projection's replay topic it writes, per
 * view key and in one transaction, `begin`, a copy of every event of that key from the input (in order), and `end`
 * with `upTo`, the last aggregateVersion it read. The projection consumes the replay topic as one more input:
 *
 * - `begin` starts a shadow view next to the live one (in the same `view` store entry, field `replay`);
 * - each copied event passes the same stages as a live one (envelope, upcasting, steps, unknown types) and is folded
 *   into the shadow, not into the live view, which keeps serving reads;
 * - `end` swaps the shadow in when the live view has applied no event after `upTo` (then events up to `upTo` that
 *   the live view has not seen yet are skipped when they arrive, by version, as for any replay). When it has (an event
 *   of the aggregate arrived between the command's read and the swap), the rebuild is `stale`: dropped, the live view
 *   kept, and the command sends the key again with the newer events.
 *
 * Each outcome goes back onto the replay topic as a `result` record (the projection skips those), in the same
 * transaction, so the command knows what happened. A replay sent twice rebuilds the same view twice: idempotent.
 */
import type { InputRecord } from '../types.ts';
import type { Stage } from '../spec.ts';

export const REPLAY_HEADERS = {
  /** begin | end | result; absent on a copied event */
  control: 'foldstream.replay.control',
  /** the replay run's id: a shadow only takes events and its end of the same run */
  id: 'foldstream.replay.id',
  /** on end: the last aggregateVersion of the key the command read */
  upTo: 'foldstream.replay.up-to',
  /** on result: rebuilt | stale | orphan */
  outcome: 'foldstream.replay.outcome',
  /** on result: the view's version after it */
  version: 'foldstream.replay.version',
} as const;

export type ReplayControl = 'begin' | 'end' | 'result';
export type ReplayOutcome = 'rebuilt' | 'stale' | 'orphan';

export function replayControl(record: Pick<InputRecord, 'headers'>): ReplayControl | undefined {
  const c = record.headers[REPLAY_HEADERS.control];
  return c === 'begin' || c === 'end' || c === 'result' ? c : undefined;
}

/** Why a control record of the replay topic is malformed (the topic is writable by anyone), or undefined. */
function controlProblem(record: InputRecord, control: ReplayControl): string | undefined {
  if (control === 'result') return undefined;
  if (!record.headers[REPLAY_HEADERS.id]) return `a replay ${control} record needs a ${REPLAY_HEADERS.id} header`;
  if (control === 'end') {
    const upTo = Number(record.headers[REPLAY_HEADERS.upTo]);
    if (!Number.isSafeInteger(upTo) || upTo < 0) return `a replay end record needs ${REPLAY_HEADERS.upTo}: a version, got ${JSON.stringify(record.headers[REPLAY_HEADERS.upTo] ?? null)}`;
  }
  return undefined;
}

/**
 * The stages of a projection with a replay topic: control records of that topic (begin, end, result: null values)
 * pass straight to the processor, or are dead-lettered when malformed; copied events pass the projection's stages
 * like live ones.
 */
export function replayAwareStages(stages: Stage[], replayTopic: string): Stage[] {
  const controlGate: Stage = (record, ctx) => {
    const control = record.topic === replayTopic ? replayControl(record) : undefined;
    if (control === undefined) return stages.length ? stages[0]!(record, ctx) : { record };
    const problem = controlProblem(record, control);
    return problem ? { reject: { code: 'ENVELOPE_INVALID', message: problem } } : { record };
  };
  const skipControl = (stage: Stage): Stage => (record, ctx) => (record.topic === replayTopic && replayControl(record) !== undefined ? { record } : stage(record, ctx));
  return [controlGate, ...stages.slice(1).map(skipControl)];
}
