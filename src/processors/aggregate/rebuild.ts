/**
 * Rebuilding an aggregate's stores from its events (`foldstream rebuild`, docs/aggregates.md#rebuilding-an-aggregates-state):
 * the events of each aggregate, in version order, lifted by the topology's upcasters and folded through the current
 * evolve, give its `state` (and `history`); nothing is decided, no command is run and no event is written. This file
 * is the pure part: given the events and what the stores hold now (read from their changelogs), it says what each
 * task's stores must hold after the rebuild, as writes to append to their changelogs. app/rebuild.ts reads and writes
 * Kafka for it.
 *
 * The processed-commandId memory (`commands`, `command-expiry`) does not depend on evolve: a reply names versions and
 * event ids, which come from the events, not from the state. So every remembered reply is kept as it is (rejections,
 * conflicts and accepted commands with no event are only known there), and a command whose events are on the topic but
 * whose reply is missing from the store (its changelog lost) is remembered again from its events: the events of one
 * command carry its commandId as causationId and follow one another, so its `accepted` reply (version, event ids) is
 * theirs. Such a reply has no fingerprint (the command's data is not in its events): a command with its id is answered
 * as a retry, as for entries of the old layout (remembered.ts).
 *
 * The input position is not touched: commands before it are folded into the events (each transaction wrote the
 * events and the offset together), commands after it are processed by the next run. A task whose stores hold no
 * position while its events exist would read its commands from the beginning and decide again the ones that were
 * rejected (now against another state): the rebuild refuses that.
 */
import { FoldstreamError } from '../../errors.ts';
import type { EventEnvelope, Reply } from '../../serde/envelope.ts';
import { partitionForKey } from '../../serde/murmur2.ts';
import type { TaskPosition } from '../../state/committed-store.ts';
import { requireFinite } from '../finite.ts';
import { timeKey } from '../time-index.ts';
import { upcast, type Upcasters } from '../upcast/upcasters.ts';
import type { Decider } from './decider.ts';
import { historyKey, type StoredAggregate } from './processor.ts';
import { rememberedKey, type CommandExpiry, type RememberedReply } from './remembered.ts';

/** One event as read from the events topic: its record key, the envelope and the record's time. */
export interface ReadEvent {
  key: string;
  event: EventEnvelope;
  timestamp: number;
}

/** What one task's stores hold now (from their changelogs), and the task's input position if known. */
export interface TaskStores {
  state: Map<string, StoredAggregate>;
  commands: Map<string, RememberedReply>;
  expiry: Map<string, CommandExpiry>;
  history: Map<string, EventEnvelope>;
  position: TaskPosition | undefined;
}

export const emptyTaskStores = (): TaskStores => ({ state: new Map(), commands: new Map(), expiry: new Map(), history: new Map(), position: undefined });

export interface RebuildInput {
  aggregateType: string;
  decider: Pick<Decider, 'initialState' | 'evolve'>;
  upcasters: Upcasters;
  /** the aggregate's tasks (its commands topic's partitions) */
  tasks: number;
  /** the stores of each task partition (missing: empty) */
  stores: Map<number, TaskStores>;
  events: ReadEvent[];
  history: boolean;
  commandRetentionMs: number;
  /** the wall clock, for the retention of commandIds remembered again from events */
  now: number;
  /** progress: aggregates folded so far */
  onFolded?: (folded: number, total: number) => void;
}

/** A store write of the rebuild: a value, or null to delete the key. */
export interface RebuildWrite {
  store: 'state' | 'commands' | 'command-expiry' | 'history';
  key: string;
  value: unknown;
}

export interface RebuildPlan {
  /** per task partition, the writes to append to its changelogs, in order */
  writes: Map<number, RebuildWrite[]>;
  aggregates: number;
  events: number;
  /** states whose value changed */
  changed: number;
  /** commandIds remembered again from events (their reply was not in the store) */
  rememberedAgain: number;
  /** events of the topic that are another aggregate type's (skipped) */
  others: number;
}

export async function planRebuild(i: RebuildInput): Promise<RebuildPlan> {
  // where each aggregate lives: the task whose state holds it; otherwise the task its commands are sent to
  const taskOf = new Map<string, number>();
  for (const [partition, s] of i.stores) for (const key of s.state.keys()) taskOf.set(key, partition);
  const byKey = new Map<string, ReadEvent[]>();
  let others = 0;
  for (const r of i.events) {
    if (r.event.aggregateType !== i.aggregateType) {
      others++;
      continue;
    }
    const list = byKey.get(r.key);
    if (list) list.push(r);
    else byKey.set(r.key, [r]);
  }
  const stores = (p: number) => i.stores.get(p) ?? emptyTaskStores();
  const writes = new Map<number, RebuildWrite[]>();
  const out = (p: number) => writes.get(p) ?? (writes.set(p, []).get(p) as RebuildWrite[]);

  // every aggregate the stores hold must have its events on the topic: else the rebuild would lose it
  for (const [p, s] of i.stores) {
    for (const [key, stored] of s.state) {
      if (!byKey.has(key) && stored.version > 0) {
        throw new FoldstreamError('REBUILD_UNSAFE', `aggregate ${JSON.stringify(key)} (task ${p}) is at version ${stored.version} in its state store, but the events topic holds none of its events`, {
          hint: 'its events were lost (retention, compaction or deleted records): the rebuild would forget it. Keep events topics with retention.ms -1 and no compaction; nothing was changed',
        });
      }
    }
  }

  let folded = 0;
  let events = 0;
  let changed = 0;
  let rememberedAgain = 0;
  const tasksWithEvents = new Set<number>();
  for (const [key, list] of byKey) {
    const partition = taskOf.get(key) ?? partitionForKey(key, i.tasks);
    tasksWithEvents.add(partition);
    const s = stores(partition);
    const ordered = dedupe(key, list);
    events += ordered.length;
    let state = i.decider.initialState();
    for (const r of ordered) {
      try {
        state = await i.decider.evolve(state, await upcast(i.upcasters, r.event));
      } catch (e) {
        if (e instanceof FoldstreamError) throw e;
        throw new FoldstreamError('HANDLER_FAILED', `evolve threw on event ${r.event.aggregateVersion} (${r.event.eventType}, ${r.event.eventId}) of ${i.aggregateType} ${JSON.stringify(key)}: ${(e as Error).message}`, {
          hint: 'the new evolve (or an upcaster) cannot fold an event the aggregate wrote: fix it and run rebuild again. Nothing was changed',
          cause: e,
        });
      }
    }
    const last = ordered.at(-1)!.event;
    requireFinite(state, `the rebuilt state of ${i.aggregateType} ${JSON.stringify(last.aggregateId)}`);
    const before = s.state.get(key);
    if (before !== undefined && before.version !== last.aggregateVersion) {
      throw new FoldstreamError('REBUILD_UNSAFE', `aggregate ${JSON.stringify(key)} is at version ${before.version} in its state store, but its events on the topic end at version ${last.aggregateVersion}`, {
        hint:
          before.version > last.aggregateVersion
            ? 'events the aggregate wrote are missing from the topic (retention, compaction or deleted records): a rebuilt state would number new events again. Nothing was changed'
            : 'the topic holds events the state store has not seen: another writer appended to the events topic, or the stores are from another run. Nothing was changed',
      });
    }
    const value: StoredAggregate = { version: last.aggregateVersion, state: state ?? null };
    if (before === undefined || !sameValue(before, value)) changed++;
    out(partition).push({ store: 'state', key, value });
    if (i.history) for (const r of ordered) out(partition).push({ store: 'history', key: historyKey(key, r.event.aggregateVersion), value: r.event });

    // the commandIds of its events: remembered again where the store lost them
    for (const c of commands(ordered)) {
      const remembered = rememberedKey(key, c.commandId);
      if (s.commands.has(remembered)) continue;
      if (i.commandRetentionMs > 0 && c.timestamp < i.now - i.commandRetentionMs) continue; // it would have expired
      const reply: Reply = { commandId: c.commandId, status: 'accepted', aggregateId: last.aggregateId, aggregateVersion: c.version, eventIds: c.eventIds };
      out(partition).push({ store: 'commands', key: remembered, value: reply });
      if (i.commandRetentionMs > 0) out(partition).push({ store: 'command-expiry', key: timeKey(c.timestamp, remembered), value: { key: remembered, handledAt: c.timestamp } });
      rememberedAgain++;
    }
    i.onFolded?.(++folded, byKey.size);
  }

  for (const p of tasksWithEvents) {
    if (stores(p).position === undefined) {
      throw new FoldstreamError('REBUILD_UNSAFE', `task ${p} of the aggregate has events but no input position: neither its changelogs' position markers nor its consumer group's offsets say which commands it has handled`, {
        hint: 'its next run would read its commands from the beginning and decide again the ones it rejected. Nothing was changed; restore the consumer group\'s offsets (kafka-consumer-groups.sh --reset-offsets --to-latest, when every command was handled) and run rebuild again',
      });
    }
  }
  // what the stores hold that the events no longer give: deleted (states of another aggregate type, stray history)
  for (const [p, s] of i.stores) {
    const mine = new Set((writes.get(p) ?? []).filter((w) => w.store === 'state' || w.store === 'history').map((w) => `${w.store}\u0000${w.key}`));
    for (const key of s.state.keys()) if (!mine.has(`state\u0000${key}`)) out(p).push({ store: 'state', key, value: null });
    for (const key of s.history.keys()) if (!mine.has(`history\u0000${key}`)) out(p).push({ store: 'history', key, value: null });
  }
  return { writes, aggregates: byKey.size, events, changed, rememberedAgain, others };
}

/** An aggregate's events in version order, once each (an at-least-once writer may have written one twice); a gap refuses. */
function dedupe(key: string, list: ReadEvent[]): ReadEvent[] {
  const ordered = [...list].sort((a, b) => a.event.aggregateVersion - b.event.aggregateVersion);
  const out: ReadEvent[] = [];
  let last = 0;
  for (const r of ordered) {
    const v = r.event.aggregateVersion;
    if (v <= last) continue;
    if (v !== last + 1) {
      throw new FoldstreamError('HISTORY_INCOMPLETE', `event versions of ${JSON.stringify(key)} jump from ${last} to ${v}`, {
        hint: `the events topic has no event ${last + 1} of this aggregate (lost to retention or compaction, or deleted): its state cannot be rebuilt. Nothing was changed`,
      });
    }
    last = v;
    out.push(r);
  }
  return out;
}

/** The commands of an aggregate's events: consecutive events with one causationId are one command's. */
function commands(ordered: ReadEvent[]): { commandId: string; version: number; eventIds: string[]; timestamp: number }[] {
  const out: { commandId: string; version: number; eventIds: string[]; timestamp: number }[] = [];
  for (const r of ordered) {
    const id = r.event.causationId;
    if (typeof id !== 'string' || id === '') continue;
    const prev = out.at(-1);
    if (prev && prev.commandId === id && prev.version === r.event.aggregateVersion - 1) {
      prev.version = r.event.aggregateVersion;
      prev.eventIds.push(r.event.eventId);
      prev.timestamp = Math.max(prev.timestamp, r.timestamp);
    } else out.push({ commandId: id, version: r.event.aggregateVersion, eventIds: [r.event.eventId], timestamp: r.timestamp });
  }
  // one commandId used again after it expired: the store remembers its latest use
  const latest = new Map(out.map((c) => [c.commandId, c]));
  return [...latest.values()];
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
