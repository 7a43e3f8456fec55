/**
 * An aggregate's state as of a time, rebuilt from its events: the events of one aggregate, in version order, lifted
 * by the topology's upcasters and folded through the decider's own evolve, up to the last one whose timestamp is at
 * or before the time. `foldstream state-at` reads the events topic for it; the aggregate's stores are not needed.
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
  const applied: EventEnvelope[] = [];
  let later = 0;
  for (const e of ordered) {
    if (e.aggregateVersion <= version) continue; // the same event twice (written by an at-least-once producer)
    if (at !== undefined && Date.parse(e.timestamp) > at) {
      later++;
      continue;
    }
    if (e.aggregateVersion !== version + 1) {
      throw new FoldstreamError('HISTORY_INCOMPLETE', `event versions of ${e.aggregateId} jump from ${version} to ${e.aggregateVersion}`, {
        hint: 'the events topic has lost events of this aggregate (retention or compaction?): its history cannot be rebuilt',
      });
    }
    const event = await upcast(upcasters, e);
    state = await decider.evolve(state, event);
    version = event.aggregateVersion;
    applied.push(event);
  }
  return { version, state, events: applied, later };
}
