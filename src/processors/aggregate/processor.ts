/**
 * The aggregate processor: one command in, its events and one reply out, all in the task's transaction (so several
 * events of one command are atomic with the state, the reply and the input offset). Per command, in order:
 *   1. a commandId seen before gets its first reply again (the `commands` store) — no events;
 *   2. an expectedVersion that differs from the stored version gets a `conflict` reply — no events;
 *   3. decide(command, state): a DomainError is a `rejected` reply with its reason — no events;
 *   4. the events are stamped (ids, versions, time, causation), evolved into the state and sent; `accepted` reply.
 * Everything but the eventIds follows from the command and the state, so a re-run produces the same output.
 */
import { isDomainError } from '../../errors.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../serde/envelope.ts';
import type { InputRecord, Processor, ProcessorContext, ProcessorMetrics } from '../types.ts';
import { commandKey } from '../input/commands.ts';
import { eventDrafts, type Decider, type EventDraft } from './decider.ts';
import { eventId } from './event-id.ts';
import { requireFinite } from '../finite.ts';
import { retentionCheckMs, takeDue, timeKey } from '../time-index.ts';
import type { Partitioning } from './partitioning.ts';
import { upcast, type Upcasters } from '../upcast/upcasters.ts';

export interface AggregateOptions {
  aggregateType: string;
  decider: Decider;
  /** topic names */
  events: { topic: string; partitions: number };
  replies: string | undefined;
  partitioning: Partitioning;
  history: boolean;
  /** how long (stream time) a commandId is remembered; 0: forever */
  commandRetentionMs: number;
  /** the topology's upcasters: given history (appendGiven) is evolved as state-as-of-a-time folds it, lifted */
  upcasters: Upcasters;
}

/** Value of the `state` store (docs/wire-formats.md). */
export interface StoredAggregate {
  version: number;
  state: unknown;
}

export const historyKey = (key: string, version: number) => `${key}:${String(version).padStart(10, '0')}`;

export function aggregateProcessor(o: AggregateOptions): Processor {
  const p: Processor = { process: (record, ctx) => handleCommand(o, record, ctx) };
  if (o.commandRetentionMs > 0) p.init = (ctx) => void scheduleCommandExpiry(o.commandRetentionMs, ctx);
  return p;
}

/** Deletes at most this many remembered commands per punctuation, so one transaction stays small. */
const EXPIRE_PER_RUN = 5000;

/**
 * commandIds are remembered for commandRetentionMs of stream time (record time), so the `commands` store does not
 * grow forever: a stream-time punctuation deletes the entries older than that, oldest first, through the
 * `command-expiry` index. Stream time, not the wall clock, so a replay or a restore expires the same commands.
 */
function scheduleCommandExpiry(retentionMs: number, ctx: ProcessorContext): void {
  ctx.schedule(retentionCheckMs(retentionMs), 'stream-time', async (now) => {
    const expired = await takeDue(ctx.store<string>('command-expiry'), now - retentionMs, EXPIRE_PER_RUN);
    const commands = ctx.store<Reply>('commands');
    for (const [, commandId] of expired) commands.delete(commandId);
    if (expired.length) ctx.count('command_outcomes', { outcome: 'expired' }, expired.length);
  });
}

type Outcome = ProcessorMetrics['command_outcomes']['outcome'];

async function handleCommand(o: AggregateOptions, record: InputRecord, ctx: ProcessorContext): Promise<void> {
  const command = record.value as CommandEnvelope;
  const key = record.key!;
  const commands = ctx.store<Reply>('commands');
  const send = (r: Reply, outcome: Outcome) => {
    if (o.replies) ctx.forward(o.replies, key, r);
    ctx.count('command_outcomes', { outcome });
  };
  /** the reply is kept so that a retry of the command gets it again */
  const settle = (r: Reply, outcome: Outcome) => {
    commands.put(command.commandId, r);
    if (o.commandRetentionMs > 0) ctx.store<string>('command-expiry').put(timeKey(record.timestamp, command.commandId), command.commandId);
    send(r, outcome);
  };

  const earlier = await commands.get(command.commandId);
  if (earlier) return send(earlier, 'duplicate');

  const states = ctx.store<StoredAggregate>('state');
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
