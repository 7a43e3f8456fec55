/**
 * An aggregate's state as of a time, rebuilt from its events: the events of one aggregate, in version order, lifted
 * by the topology's upcasters and folded through the decider's own evolve, up to (not including) the first one whose
 * timestamp is after the time. An event's timestamp is its command's, which a client may set earlier than the event
 * before it; folding on in version order from there would mix states the aggregate never had, so the first event
 * after the time ends the fold. `foldstream state-at` reads the events topic for it; the aggregate's stores are not
 * needed.
 */
import { FoldstreamError } from '../../errors.ts';
import type { EventEnvelope } from '../../serde/envelope.ts';
import { upcast, type Upcasters } from '../upcast/upcasters.ts';
import type { Decider } from './decider.ts';

export interface StateAt {
  /** the version of the last event applied (0: none) */
  version: number;
  state: unknown;
  /** the events applied, upcast, in order */
  events: EventEnvelope[];
  /** events of the aggregate after the time, not applied */
  later: number;
}

export async function stateAt(decider: Pick<Decider, 'initialState' | 'evolve'>, upcasters: Upcasters, events: EventEnvelope[], at: number | undefined): Promise<StateAt> {
  const ordered = [...events].sort((a, b) => a.aggregateVersion - b.aggregateVersion);
  let state = decider.initialState();
  let version = 0;
  let last = 0;
  const applied: EventEnvelope[] = [];
  let later = 0;
  for (const e of ordered) {
    if (e.aggregateVersion <= last) continue; // the same event twice (written by an at-least-once producer)
    if (e.aggregateVersion !== last + 1) {
      throw new FoldstreamError('HISTORY_INCOMPLETE', `event versions of ${e.aggregateId} jump from ${last} to ${e.aggregateVersion}`, {
        hint: `the events topic has no event ${last + 1} of this aggregate (lost to retention or compaction, or deleted): its history cannot be rebuilt`,
      });
    }
    last = e.aggregateVersion;
    if (later > 0) {
      later++;
      continue;
    }
    if (at !== undefined) {
      const time = Date.parse(e.timestamp);
      if (!Number.isFinite(time)) {
        throw new FoldstreamError('ENVELOPE_INVALID', `event ${e.aggregateVersion} of ${e.aggregateId} (${e.eventId}) has timestamp ${JSON.stringify(e.timestamp)}, which is not a time`, {
          hint: 'the state as of a time cannot place this event (it came from a command whose timestamp was not checked, before foldstream refused such commands): ask for the state without a time, or fold the events yourself',
        });
      }
      if (time > at) {
        later++;
        continue;
      }
    }
    const event = await upcast(upcasters, e);
    state = await decider.evolve(state, event);
    version = event.aggregateVersion;
    applied.push(event);
  }
  return { version, state, events: applied, later };
}
