/**
 * What every event-sourcing workload's model checks the same way (docs/wire-formats.md): replies as the replies topic
 * and the `commands` store hold them, the eventIds a record names, and where stores are positioned.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, type SequenceFindings, type StoreFindings } from './compare.ts';
import { isObj, nonEmpty, type Obj } from './envelopes.ts';
import type { VRecord } from './read-topics.ts';
import type { ChangelogState } from './store.ts';
import { at, where } from './wire.ts';

/** The command fields an aggregate's events take after it (docs/wire-formats.md). */
export interface CommandCause {
  commandId: string;
  aggregateId: string;
  timestamp?: string | null | undefined;
  correlationId?: string | null | undefined;
  userId?: string | null | undefined;
}

/**
 * The event an aggregate writes for one of a command's event drafts, eventId aside: eventVersion 1, the command's
 * time (else the command record's), correlation (else the commandId), causation and user. `tenantId` when given.
 */
export function expectedEvent(c: CommandCause, recordTimestamp: number, aggregateType: string, aggregateVersion: number, e: { eventType: string; data: unknown }, tenantId?: string | null): string {
  const event: Obj = {
    eventType: e.eventType,
    eventVersion: 1,
    aggregateType,
    aggregateId: c.aggregateId,
    ...(tenantId === undefined || tenantId === null ? {} : { tenantId }),
    aggregateVersion,
    timestamp: c.timestamp ?? new Date(recordTimestamp).toISOString(),
    correlationId: c.correlationId ?? c.commandId,
    causationId: c.commandId,
    data: e.data,
  };
  if (c.userId) event.userId = c.userId;
  return canonical(event);
}

/** A record's value as a JSON object; anything else as `{unreadable: true}`, which no model predicts. */
export function parseValue(r: VRecord): Obj {
  try {
    const v = JSON.parse(r.value?.toString('utf8') ?? 'null') as unknown;
    return isObj(v) ? v : { unreadable: true };
  } catch {
    return { unreadable: true };
  }
}

/** A reply as the model predicts it: the eventIds only by their number (their values are checked by EventIds). */
export interface Reply {
  commandId: string;
  status: 'accepted' | 'rejected' | 'conflict';
  code: string | undefined;
  aggregateVersion: number;
  events: number;
}

export const replyValue = (r: Reply) => canonical({ commandId: r.commandId, status: r.status, code: r.code ?? null, aggregateVersion: r.aggregateVersion, events: r.events });

/** A stored or written reply (an object with eventIds) in the model's terms; `aggregateId` for the `commands` store. */
function replyOf(o: Obj, withAggregateId: boolean): string {
  const events = Array.isArray(o.eventIds) ? o.eventIds.length : -1;
  const r = { commandId: o.commandId, status: o.status, code: o.code ?? null, aggregateVersion: o.aggregateVersion, events };
  return canonical(withAggregateId ? { ...r, aggregateId: o.aggregateId } : r);
}

/** The `commands` store's model entry for a reply to a command of `aggregateId`. */
export const storedReplyValue = (r: Reply, aggregateId: string) => canonical({ ...(JSON.parse(replyValue(r)) as Obj), aggregateId });

/** The `commands` store as its changelog holds it, in the terms of storedReplyValue. */
export function storedReplies(log: ChangelogState): Map<string, string> {
  return new Map([...log.values].map(([k, v]) => [k, replyOf(JSON.parse(v) as Obj, true)]));
}

/**
 * The eventIds of the events topic per key and version, and the records that name one (a reply's eventIds, an event
 * routed to another topic): each must name the event the events topic has at that version.
 */
export class EventIds {
  private readonly ids = new Map<string, Map<number, string>>();
  private readonly named: { key: string; where: string; version: number; id: string }[] = [];

  delivered(key: string, version: number, id: unknown): void {
    if (typeof id !== 'string') return;
    const m = this.ids.get(key) ?? new Map<number, string>();
    m.set(version, id);
    this.ids.set(key, m);
  }

  get(key: string, version: number): string | undefined {
    return this.ids.get(key)?.get(version);
  }

  name(key: string, where: string, version: number, id: unknown): void {
    if (typeof id === 'string') this.named.push({ key, where, version, id });
  }

  /** Adds a wrong value to `f` for every record that named another event than the events topic has. */
  check(f: SequenceFindings): void {
    for (const n of this.named) {
      const actual = this.get(n.key, n.version);
      if (actual === undefined || actual === n.id) continue;
      f.wrongValues++;
      if (f.samples.length < 8) f.samples.push(`${n.where} names event ${n.id} for version ${n.version}; the events topic has ${actual}`);
    }
  }
}

/**
 * Replies as written: the n-th reply to a commandId of a key is identified as `${commandId}#n` (a repeated command
 * gets the first reply again); a reply that is not `accepted` must give a reason; the eventIds it names go to `ids`.
 */
export class ReplyReader {
  private readonly occurrences = new Map<string, number>();

  constructor(private readonly ids: EventIds) {}

  read(r: VRecord, extra: SequenceFindings): { key: string; id: string; value: string } {
    const key = r.key?.toString('utf8') ?? '<null>';
    const v = parseValue(r);
    const occurrence = `${key}\u0000${String(v.commandId)}`;
    const k = (this.occurrences.get(occurrence) ?? 0) + 1;
    this.occurrences.set(occurrence, k);
    if (v.status !== 'accepted' && !nonEmpty(v.reason)) {
      extra.wrongValues++;
      if (extra.samples.length < 8) extra.samples.push(`reply without a reason at ${where(r)}`);
    }
    const ids = Array.isArray(v.eventIds) ? (v.eventIds as unknown[]) : [];
    const from = (v.aggregateVersion as number) - ids.length + 1;
    ids.forEach((id, i) => this.ids.name(key, at(r), from + i, id));
    return { key, id: `${String(v.commandId)}#${k}`, value: replyOf(v, false) };
  }
}

/**
 * An aggregate's store is positioned at the end of its input: in each partition with records, the last position
 * marker of the changelog names the input's high watermark.
 */
export function checkPositionedAtEnd(store: StoreFindings, log: ChangelogState, input: string, inputEnds: Map<string, bigint>): void {
  for (const [tp, end] of inputEnds) {
    if (end === 0n) continue;
    const partition = Number(tp.slice(tp.lastIndexOf(':') + 1));
    const pos = log.positions.get(partition)?.[input];
    if (pos === String(end)) continue;
    store.mismatches++;
    if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${pos ?? 'absent'}; ${input} ends at ${end}`);
  }
}

/**
 * A projection's store is positioned past its input: in each partition, the last position marker of the changelog is
 * beyond the last record of the input partition that a read_committed reader sees (it may also have moved over the
 * commit markers after it, so the end of the log bounds nothing). `lastOffsets`: partition → offset of that record.
 */
export function checkPositionedPast(store: StoreFindings, log: ChangelogState, input: string, lastOffsets: Map<number, bigint> | undefined): void {
  for (const [partition, last] of lastOffsets ?? []) {
    const pos = log.positions.get(partition)?.[input];
    if (pos !== undefined && BigInt(pos) > last) continue;
    store.mismatches++;
    if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${pos ?? 'absent'}; ${input}/${partition} has a record at ${last}`);
  }
}
