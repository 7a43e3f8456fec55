/**
 * Commands and events as tests write them: only what matters to the case, the rest filled in the way a client
 * (commands) or an aggregate (events) would, deterministically, so a case gives the same records every run.
 */
import type { CommandEnvelope, Data, EventEnvelope } from '../serde/envelope.ts';

/** A command without the fields a test rarely cares about: commandId defaults to cmd-1, cmd-2, ...; data to {}. */
export type CommandInput = Omit<CommandEnvelope, 'commandId' | 'data'> & { commandId?: string; data?: Data };

/** An event without the fields a test rarely cares about (see completeEvent). */
export type EventInput = Pick<EventEnvelope, 'eventType' | 'aggregateId'> & Partial<Omit<EventEnvelope, 'eventType' | 'aggregateId'>>;

export function completeCommand(c: CommandInput, n: number): CommandEnvelope {
  return { ...c, commandId: c.commandId ?? `cmd-${n}`, data: c.data ?? {} };
}

export interface EventDefaults {
  /** the id an aggregate would give the event at this version */
  eventId(aggregateType: string, aggregateVersion: number): string;
  aggregateType: string | undefined;
  /** one more than the aggregate's last version on the topic */
  nextVersion: number;
  /** ISO-8601 */
  timestamp: string;
}

export function completeEvent(e: EventInput, d: EventDefaults): EventEnvelope {
  const aggregateType = e.aggregateType ?? d.aggregateType;
  if (aggregateType === undefined) {
    throw new Error(`event ${e.eventType} of ${e.aggregateId}: give its aggregateType (no aggregate in the topology writes its topic)`);
  }
  const aggregateVersion = e.aggregateVersion ?? d.nextVersion;
  return {
    ...e,
    eventId: e.eventId ?? d.eventId(aggregateType, aggregateVersion),
    eventVersion: e.eventVersion ?? 1,
    aggregateType,
    aggregateVersion,
    timestamp: e.timestamp ?? d.timestamp,
    data: e.data ?? {},
  };
}
