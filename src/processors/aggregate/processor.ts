/**
 * The aggregate processor: one command in, its events and one reply out, all in the task's transaction (so several
 * events of one command are atomic with the state, the reply and the input offset). Per command, in order:
 *   1. a commandId this aggregate has seen gets its first reply again (the `commands` store, remembered.ts) — no
 *      events; unless the command differs from the one first sent with that id: then a COMMAND_ID_REUSED rejection;
 *   2. an expectedVersion that differs from the stored version gets a `conflict` reply — no events;
 *   3. decide(command, state): a DomainError is a `rejected` reply with its reason — no events;
 *   4. the events are stamped (ids, versions, time, causation), evolved into the state and sent; `accepted` reply.
 * Everything but the eventIds follows from the command and the state, so a re-run produces the same output.
 */
import { isDomainError } from '../../errors.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../serde/envelope.ts';
import type { InputRecord, KeyValueStore, Processor, ProcessorContext, ProcessorMetrics } from '../types.ts';
import { commandKey } from '../input/commands.ts';
import { eventDrafts, type Decider, type EventDraft } from './decider.ts';
import { eventId } from './event-id.ts';
import { requireFinite } from '../finite.ts';
import { upcast, type Upcasters } from '../upcast/upcasters.ts';
import { heldStreamTime, retentionCheckMs, timeKey, whileHeldAhead } from '../time-index.ts';
import type { Partitioning } from './partitioning.ts';
import { fingerprint, isLegacyKey, rememberedKey, sentReply, type CommandExpiry, type RememberedReply } from './remembered.ts';

export interface AggregateOptions {
  aggregateType: string;
  decider: Decider;
  /** topic names */
  events: { topic: string; partitions: number };
  replies: string | undefined;
  partitioning: Partitioning;
  history: boolean;
  /** how long a commandId is remembered, by stream time and by the wall clock; 0: forever */
  commandRetentionMs: number;
  /** the topology's upcasters: given history (appendGiven) is evolved as state-as-of-a-time folds it, lifted */
  upcasters: Upcasters;
  /** how far ahead of the wall clock stream time counts (processing.maxClockSkewMs) */
  maxClockSkewMs: number;
}

/** Value of the `state` store (docs/wire-formats.md). */
export interface StoredAggregate {
  version: number;
  state: unknown;
}

export const historyKey = (key: string, version: number) => `${key}:${String(version).padStart(10, '0')}`;

/** Per task: whether its `commands` store may hold entries of the old layout (undefined: not looked yet). */
interface LegacyEntries {
  present: boolean | undefined;
}

export function aggregateProcessor(o: AggregateOptions): Processor {
  const legacy: LegacyEntries = { present: undefined };
  if (o.commandRetentionMs <= 0) return { process: (record, ctx) => handleCommand(o, legacy, record, ctx) };
  let heldAhead = () => undefined as void;
  return {
    init(ctx) {
      heldAhead = scheduleCommandExpiry(o, legacy, ctx);
      heldAhead();
    },
    async process(record, ctx) {
      await handleCommand(o, legacy, record, ctx);
      heldAhead();
    },
  };
}

/** Deletes at most this many remembered commands per punctuation, so one transaction stays small. */
const EXPIRE_PER_RUN = 5000;

/**
 * commandIds are remembered for commandRetentionMs by both clocks, so the `commands` store does not grow forever and
 * no clock alone can make a retry run twice. An entry is indexed (`command-expiry`) at the task's stream time, held
 * to at most maxClockSkewMs ahead of the wall clock, and with the wall-clock time it was handled; it is deleted once
 * that stream time is more than the retention behind the (held) stream time and that wall-clock time more than the
 * retention behind the wall clock. So one record dated years ahead (a producer with a wrong clock) moves no entry
 * closer to expiry than the wall clock allows, and one dated years back is still remembered for the retention.
 * Stream-time punctuations do it, in the transaction of the record that moved stream time; while stream time is
 * held ahead of the wall clock (no record moves it then), a wall-clock punctuation does. Replays follow stream time
 * as before; the wall clock only keeps entries longer (a replay remembers each id at least the retention after it).
 */
function scheduleCommandExpiry(o: AggregateOptions, legacy: LegacyEntries, ctx: ProcessorContext): () => void {
  const every = retentionCheckMs(o.commandRetentionMs);
  ctx.schedule(every, 'stream-time', (at) => expireCommands(o, legacy, ctx, at));
  return whileHeldAhead(ctx, o.maxClockSkewMs, every, (held) => expireCommands(o, legacy, ctx, held));
}

async function expireCommands(o: AggregateOptions, legacy: LegacyEntries, ctx: ProcessorContext, streamTime: number): Promise<void> {
  const wall = ctx.wallClockTime;
  const byStreamTime = heldStreamTime(streamTime, wall, o.maxClockSkewMs) - o.commandRetentionMs;
  const byWallClock = wall - o.commandRetentionMs;
  const index = ctx.store<CommandExpiry>('command-expiry');
  const due: [string, CommandExpiry][] = [];
  for await (const entry of index.range({ lt: timeKey(byStreamTime, ''), limit: EXPIRE_PER_RUN })) due.push(entry);
  const commands = ctx.store<RememberedReply>('commands');
  let expired = 0;
  for (const [indexKey, v] of due) {
    // entries of the old layout (a bare commandId) carry no wall-clock time: stream time alone, as they were written
    if (typeof v !== 'string' && v.handledAt >= byWallClock) continue;
    index.delete(indexKey);
    commands.delete(typeof v === 'string' ? v : v.key);
    if (typeof v === 'string') legacy.present = undefined; // maybe the last one: look again
    expired++;
  }
  if (expired) ctx.count('command_outcomes', { outcome: 'expired' }, expired);
}

/** Whether the store holds keys of the old layout; looked up once per task (and after old entries expire). */
async function hasLegacyEntries(legacy: LegacyEntries, commands: KeyValueStore<RememberedReply>): Promise<boolean> {
  if (legacy.present === undefined) {
    legacy.present = false;
    // new keys all start with `["` (rememberedKey); a commandId of the old layout that itself starts so is not found
    for (const range of [{ lt: '["' }, { gte: '[#' }]) {
      for await (const [key] of commands.range({ ...range, limit: 1 })) if (isLegacyKey(key)) legacy.present = true;
    }
  }
  return legacy.present;
}

/** An entry of the old layout answers only a command to its own aggregate (see remembered.ts). */
function legacyReply(o: AggregateOptions, key: string, command: CommandEnvelope, r: RememberedReply | undefined): RememberedReply | undefined {
  if (!r || r.aggregateId !== command.aggregateId) return undefined;
  const last = r.eventIds.at(-1);
  if (last !== undefined && last !== eventId(o.events.topic, o.aggregateType, key, r.aggregateVersion)) return undefined;
  return r;
}

type Outcome = ProcessorMetrics['command_outcomes']['outcome'];

async function handleCommand(o: AggregateOptions, legacy: LegacyEntries, record: InputRecord, ctx: ProcessorContext): Promise<void> {
  const command = record.value as CommandEnvelope;
  const key = record.key!;
  const commands = ctx.store<RememberedReply>('commands');
  const remembered = rememberedKey(key, command.commandId);
  const print = fingerprint(command);
  const send = (r: Reply, outcome: Outcome) => {
    if (o.replies) ctx.forward(o.replies, key, r);
    ctx.count('command_outcomes', { outcome });
  };
  /** the reply is kept so that a retry of the command gets it again */
  const settle = (r: Reply, outcome: Outcome) => {
    commands.put(remembered, { ...r, fingerprint: print });
    if (o.commandRetentionMs > 0) {
      const wall = ctx.wallClockTime;
      const at = heldStreamTime(ctx.streamTime, wall, o.maxClockSkewMs);
      ctx.store<CommandExpiry>('command-expiry').put(timeKey(at, remembered), { key: remembered, handledAt: wall });
    }
    send(r, outcome);
  };

  const states = ctx.store<StoredAggregate>('state');
  let earlier = await commands.get(remembered);
  if (!earlier && (await hasLegacyEntries(legacy, commands))) earlier = legacyReply(o, key, command, await commands.get(command.commandId));
  if (earlier) {
    if (earlier.fingerprint === undefined || earlier.fingerprint === print) return send(sentReply(earlier), 'duplicate');
    // not a retry: another command under an id this aggregate has used. Its first reply would tell the sender about
    // a command it did not send (and its own would never run): it is told so instead, and nothing is remembered
    const reason = `commandId ${JSON.stringify(command.commandId)} was already used for another command to this aggregate (a different commandType or data), answered ${earlier.status} at version ${earlier.aggregateVersion}: send a new command with a new commandId`;
    const current = (await states.get(key))?.version ?? 0;
    return send({ commandId: command.commandId, status: 'rejected', reason, code: 'COMMAND_ID_REUSED', aggregateId: command.aggregateId, aggregateVersion: current, eventIds: [] }, 'reused');
  }

  const stored = await states.get(key);
  const version = stored?.version ?? 0;
  const reply = (status: Reply['status'], aggregateVersion: number, eventIds: string[], why?: { reason: string; code: string }): Reply => ({
    commandId: command.commandId,
    status,
    ...why,
    aggregateId: command.aggregateId,
    aggregateVersion,
    eventIds,
  });
  if (command.expectedVersion !== undefined && command.expectedVersion !== version) {
    const reason = `expectedVersion ${command.expectedVersion} differs from the aggregate's version ${version}`;
    return settle(reply('conflict', version, [], { reason, code: 'CONCURRENCY_CONFLICT' }), 'conflict');
  }

  const state = stored ? stored.state : o.decider.initialState();
  let drafts: EventDraft[];
  try {
    drafts = await o.decider.decide(command, state, { aggregateId: command.aggregateId, key, version });
  } catch (e) {
    if (!isDomainError(e)) throw e;
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'DOMAIN_REJECTED';
    return settle(reply('rejected', version, [], { reason: e.message, code }), 'rejected');
  }

  const timestamp = command.timestamp ?? new Date(record.timestamp).toISOString();
  const events = await append(o, ctx, command, key, timestamp, version, state, drafts);
  settle(reply('accepted', version + events.length, events.map((e) => e.eventId)), 'accepted');
}

/** Step 4: the events are stamped, evolved into the state and kept (state, history) and sent. */
async function append(
  o: AggregateOptions,
  ctx: ProcessorContext,
  command: CommandEnvelope,
  key: string,
  timestamp: string,
  version: number,
  initial: unknown,
  drafts: EventDraft[],
  lift = false,
): Promise<EventEnvelope[]> {
  let state = initial;
  const events = drafts.map((d, i) => stamp(o, command, key, version + i + 1, timestamp, d));
  for (const e of events) {
    requireFinite(e.data, `event ${e.eventType} of ${o.aggregateType} ${JSON.stringify(command.aggregateId)}`);
    state = await o.decider.evolve(state, lift ? await upcast(o.upcasters, e) : e);
  }
  if (events.length) {
    requireFinite(state, `the state of ${o.aggregateType} ${JSON.stringify(command.aggregateId)}`);
    ctx.store<StoredAggregate>('state').put(key, { version: version + events.length, state: state ?? null });
    const history = o.history ? ctx.store<EventEnvelope>('history') : undefined;
    for (const e of events) {
      history?.put(historyKey(key, e.aggregateVersion), e);
      const partition = o.partitioning.partition?.(key, e, o.events.partitions);
      ctx.forward(o.events.topic, key, e, partition === undefined ? {} : { partition });
    }
  }
  return events;
}

/**
 * Appends events to an aggregate as if decide had returned them for `cause` (a command that is not sent, so there is
 * no reply and nothing in `commands`): the TopologyTestDriver gives an aggregate its history this way, through the
 * decider's own evolve, rather than by writing store values the decider never produced. Given events may be legacy
 * history (an old eventVersion): they are kept and sent as written, and evolve sees them lifted by the topology's
 * upcasters, as `state-at` and `?at=` rebuild the same history.
 */
export async function appendGiven(o: AggregateOptions, ctx: ProcessorContext, cause: CommandEnvelope, drafts: unknown[], now: number): Promise<EventEnvelope[]> {
  const key = commandKey(cause, o.partitioning.tenant);
  const stored = await ctx.store<StoredAggregate>('state').get(key);
  const state = stored ? stored.state : o.decider.initialState();
  const timestamp = cause.timestamp ?? new Date(now).toISOString();
  return append(o, ctx, cause, key, timestamp, stored?.version ?? 0, state, eventDrafts(drafts, 'given events'), true);
}

function stamp(o: AggregateOptions, command: CommandEnvelope, key: string, aggregateVersion: number, timestamp: string, d: EventDraft): EventEnvelope {
  const e: EventEnvelope = {
    eventId: eventId(o.events.topic, o.aggregateType, key, aggregateVersion),
    eventType: d.type,
    eventVersion: d.eventVersion ?? 1,
    aggregateType: o.aggregateType,
    aggregateId: command.aggregateId,
    aggregateVersion,
    timestamp,
    correlationId: command.correlationId ?? command.commandId,
    causationId: command.commandId,
    data: d.data ?? {},
  };
  if (command.userId) e.userId = command.userId;
  if (o.partitioning.tenant && command.tenantId) e.tenantId = command.tenantId;
  return e;
}
