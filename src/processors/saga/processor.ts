/**
 * The saga processor: one saga instance per key (the saga id), its state in the `sagas` store and its deadline in
 * the `deadlines` index. For each event: an ended instance ignores it; an event at or below the aggregateVersion the
 * instance has handled from that aggregate was handled before and is skipped (replays, duplicates); otherwise the
 * saga's handle() gives a reaction, which this file turns into stamped commands, saga log entries, a deadline and
 * the new state — all in the task's transaction, so a command is sent exactly once with the state that sent it.
 * Deadlines fire from a punctuation (stream time or wall clock), also inside the transaction.
 * Everything sent follows from the input and the stored state (ids are name-based), so a re-run sends the same
 * (with the wall clock, deadlines and what they cause depend on when it runs, by nature).
 */
import { errorMessage, FoldstreamError } from '../../errors.ts';
import { aggregateKey, type CommandEnvelope, type Data, type EventEnvelope } from '../../serde/envelope.ts';
import { eventId, uuidV5 } from '../aggregate/event-id.ts';
import { requireFinite } from '../finite.ts';
import { heldStreamTime, retentionCheckMs, takeDue, timeKey, whileHeldAhead } from '../time-index.ts';
import type { InputRecord, ProcessorContext, ProcessorMetrics, Processor, PunctuationType } from '../types.ts';
import { ENDED, type Deadline, type SagaCommand, type SagaDefinition, type SagaReaction, type SagaStatus } from './definition.ts';

/** Value of the `sagas` store (docs/wire-formats.md). An ended instance stays, so late events find it ended. */
export interface StoredSaga {
  status: SagaStatus;
  state: unknown;
  /** reactions so far; commandIds derive from it */
  reactions: number;
  /** saga log entries written so far: the log's aggregateVersion */
  logVersion: number;
  /** per source aggregate (aggregateType/key), the highest aggregateVersion the instance has handled */
  seen: Record<string, number>;
  deadline: Deadline | null;
  /** correlationId of every command and log entry of the instance: the starting event's (or its eventId) */
  correlationId: string;
  startedAt: string;
  updatedAt: string;
}

export interface SagaOptions {
  /** the saga's name: aggregateType of its log entries, part of its commandIds */
  name: string;
  definition: SagaDefinition;
  /** aliases and names of the command topics → topic name; the first entry is the default */
  commandTopics: Map<string, string>;
  defaultCommandTopic: string;
  /** topic name of the saga log */
  log: string | undefined;
  deadlines: { clock: PunctuationType; checkIntervalMs: number };
  /** the processor's error policy: with `fail` a throwing onDeadline stops the task, otherwise it ends its instance */
  errorPolicy: 'dlq' | 'fail' | 'skip';
  /** how long (stream time) an ended instance is kept; 0: forever */
  endedRetentionMs: number;
  /** how far ahead of the wall clock stream time counts (processing.maxClockSkewMs) */
  maxClockSkewMs: number;
}

type LifecycleEvent = ProcessorMetrics['saga_lifecycle']['event'];

const LOG_TYPES: Record<LifecycleEvent, string> = {
  started: 'SagaStarted',
  step_completed: 'SagaStepCompleted',
  timed_out: 'SagaTimedOut',
  failed: 'SagaFailed',
  compensated: 'SagaCompensated',
  completed: 'SagaCompleted',
};

/** Deadlines fired per punctuation at most, so one transaction stays small; the rest fire at the next. */
const FIRE_PER_RUN = 1000;

/** Ended instances deleted per punctuation at most. */
const EXPIRE_PER_RUN = 5000;

const sourceKey = (e: EventEnvelope) => `${e.aggregateType}/${aggregateKey(e.aggregateId, e.tenantId)}`;

/** What caused a reaction: an event, or a deadline that passed. */
interface Trigger {
  timestamp: number;
  event?: EventEnvelope;
  deadline?: Deadline;
}

export function sagaProcessor(o: SagaOptions): Processor {
  const heldAhead: (() => void)[] = [];
  const checkHeldAhead = () => heldAhead.forEach((check) => check());
  return {
    init(ctx) {
      if (o.deadlines.clock === 'wall-clock') ctx.schedule(o.deadlines.checkIntervalMs, 'wall-clock', (now) => fireDeadlines(o, ctx, now));
      else heldAhead.push(onStreamTime(o, ctx, o.deadlines.checkIntervalMs, (now) => fireDeadlines(o, ctx, now)));
      if (o.endedRetentionMs > 0) heldAhead.push(onStreamTime(o, ctx, retentionCheckMs(o.endedRetentionMs), (now) => expireEnded(o, ctx, now)));
      checkHeldAhead();
    },
    async process(record, ctx) {
      await handleEvent(o, record, ctx);
      checkHeldAhead();
    },
  };
}

async function handleEvent(o: SagaOptions, record: InputRecord, ctx: ProcessorContext): Promise<void> {
  const event = record.value as EventEnvelope;
  const id = record.key!;
  const sagas = ctx.store<StoredSaga>('sagas');
  const entry = await sagas.get(id);
  if (entry && ENDED.has(entry.status)) return ctx.count('saga_events', { outcome: 'ended' });
  const source = sourceKey(event);
  if (entry && (entry.seen[source] ?? 0) >= event.aggregateVersion) return ctx.count('saga_events', { outcome: 'already_applied' });
  const reaction = await o.definition.handle(entry ? entry.state : o.definition.initialState(), event, { id, status: entry?.status ?? 'new' });
  const seen = { ...entry?.seen, [source]: event.aggregateVersion };
  if (!reaction) {
    // remembered all the same: a duplicate of this event must not meet a later state that reacts to it
    if (entry) sagas.put(id, { ...entry, seen });
    return ctx.count('saga_events', { outcome: 'ignored' });
  }
  react(o, ctx, id, entry, seen, reaction, addressed(o, reaction), { timestamp: record.timestamp, event });
  ctx.count('saga_events', { outcome: entry ? 'handled' : 'started' });
}

/**
 * Runs `fn` on the task's stream time held to at most maxClockSkewMs ahead of the wall clock (heldStreamTime): a
 * record dated years ahead must not fire every deadline (compensating every instance) nor expire every ended
 * instance. Stream-time punctuations call it as stream time moves; while stream time is held ahead of the wall clock
 * no record moves it, so a wall-clock punctuation calls it then, with the held time.
 */
function onStreamTime(o: SagaOptions, ctx: ProcessorContext, everyMs: number, fn: (now: number) => Promise<void>): () => void {
  ctx.schedule(everyMs, 'stream-time', (at) => fn(heldStreamTime(at, ctx.wallClockTime, o.maxClockSkewMs)));
  return whileHeldAhead(ctx, o.maxClockSkewMs, everyMs, fn);
}

/** The time a reaction counts a stream-time deadline and an ended instance's retention from. */
function reactionTime(o: SagaOptions, ctx: ProcessorContext, trigger: Trigger): number {
  // a deadline's reaction runs at the (held) time of its punctuation; an event's at the task's held stream time,
  // which is its record time unless the record came late (then later) or is dated ahead of the wall clock (then less)
  return trigger.deadline ? trigger.timestamp : heldStreamTime(ctx.streamTime, ctx.wallClockTime, o.maxClockSkewMs);
}

/**
 * Ended instances are kept for endedRetentionMs of stream time, so late answers and repeated events find them ended
 * (and send nothing); then they are deleted, oldest first, through the `ended` index. Stream time, not the wall
 * clock, so a replay deletes the same ones at the same points. An event for a deleted instance meets no instance:
 * a start event starts a new one.
 */
async function expireEnded(o: SagaOptions, ctx: ProcessorContext, now: number): Promise<void> {
  const expired = await takeDue(ctx.store<string>('ended'), now - o.endedRetentionMs, EXPIRE_PER_RUN);
  const sagas = ctx.store<StoredSaga>('sagas');
  for (const [, id] of expired) sagas.delete(id);
  if (expired.length) ctx.count('saga_events', { outcome: 'expired' }, expired.length);
}

async function fireDeadlines(o: SagaOptions, ctx: ProcessorContext, now: number): Promise<void> {
  const sagas = ctx.store<StoredSaga>('sagas');
  for (const [key, id] of await takeDue(ctx.store<string>('deadlines'), now + 1, FIRE_PER_RUN)) {
    const entry = await sagas.get(id);
    const deadline = entry?.deadline;
    // an index entry outlives its deadline only when the instance set another or ended, in the same transaction
    if (!entry || !deadline || ENDED.has(entry.status) || timeKey(deadline.at, id) !== key) continue;
    let reaction: SagaReaction;
    let sends: Addressed[];
    try {
      reaction = (await o.definition.onDeadline(entry.state, deadline, { id, status: entry.status })) ?? {};
      sends = addressed(o, reaction);
    } catch (e) {
      // a deadline is no input record to dead-letter, and a throw would undo every deadline of this punctuation
      // and meet the same one first again next time: the instance fails, visibly, and the others go on
      if (o.errorPolicy === 'fail') throw e;
      ctx.log.error({ saga: o.name, sagaId: id, deadline: deadline.name, err: errorMessage(e) }, 'saga.deadline_failed');
      reaction = { status: 'failed', reason: `onDeadline failed: ${errorMessage(e)}` };
      sends = [];
    }
    react(o, ctx, id, { ...entry, deadline: null }, entry.seen, reaction, sends, { timestamp: now, deadline });
  }
}

interface Addressed {
  topic: string;
  command: SagaCommand;
}

/**
 * The reaction's commands with the topic each goes to, checked before anything is sent: a command to a topic that is
 * not among output.commands, or a state or command holding a non-finite number (finite.ts), fails the reaction as a
 * whole (a dead letter for an event; for a deadline, the instance).
 */
function addressed(o: SagaOptions, r: SagaReaction): Addressed[] {
  requireFinite(r.state, `the state saga "${o.name}" returned`);
  return (r.send ?? []).map((command) => {
    requireFinite(command.data, `command ${command.type} of saga "${o.name}"`);
    const topic = command.to === undefined ? o.defaultCommandTopic : o.commandTopics.get(command.to);
    if (topic === undefined) {
      throw new FoldstreamError('HANDLER_FAILED', `saga "${o.name}" sent ${command.type} to "${command.to}", which is not one of its output.commands (${[...new Set(o.commandTopics.values())].join(', ')})`, {
        hint: 'add the topic to output.commands, or send the command to one listed there',
      });
    }
    return { topic, command };
  });
}

/** Applies a reaction: log entries, commands, deadline and state, in that order of the saga's own history. */
function react(o: SagaOptions, ctx: ProcessorContext, id: string, entry: StoredSaga | undefined, seen: Record<string, number>, r: SagaReaction, sends: Addressed[], trigger: Trigger): void {
  const before: SagaStatus | 'new' = entry?.status ?? 'new';
  const status: SagaStatus = r.status ?? (entry ? entry.status : 'running');
  const reactions = (entry?.reactions ?? 0) + 1;
  const time = new Date(trigger.timestamp).toISOString();
  const correlationId = entry?.correlationId ?? trigger.event?.correlationId ?? trigger.event?.eventId ?? id;

  const lifecycle: [LifecycleEvent, Data][] = [];
  if (!entry) lifecycle.push(['started', { trigger: trigger.event?.eventType }]);
  if (trigger.deadline) lifecycle.push(['timed_out', { deadline: trigger.deadline.name, at: new Date(trigger.deadline.at).toISOString() }]);
  if (r.step !== undefined) lifecycle.push(['step_completed', { step: r.step }]);
  if (status !== before) {
    const failed = status === 'compensating' || status === 'failed' || (status === 'compensated' && before !== 'compensating');
    if (failed) lifecycle.push(['failed', { reason: r.reason ?? null, compensating: status !== 'failed' }]);
    if (status === 'compensated') lifecycle.push(['compensated', {}]);
    if (status === 'completed') lifecycle.push(['completed', {}]);
  }

  let logVersion = entry?.logVersion ?? 0;
  let causationId = trigger.event?.eventId;
  for (const [event, data] of lifecycle) {
    logVersion++;
    ctx.count('saga_lifecycle', { event });
    if (!o.log) continue;
    const e: EventEnvelope = {
      eventId: eventId(o.log, o.name, id, logVersion),
      eventType: LOG_TYPES[event],
      eventVersion: 1,
      aggregateType: o.name,
      aggregateId: id,
      aggregateVersion: logVersion,
      timestamp: time,
      correlationId,
      data: { status, ...data },
    };
    if (causationId !== undefined) e.causationId = causationId;
    ctx.forward(o.log, id, e, { timestamp: trigger.timestamp });
    // a timeout's commands are caused by the SagaTimedOut entry
    if (event === 'timed_out') causationId = e.eventId;
  }

  sends.forEach(({ topic, command: c }, i) => {
    const command: CommandEnvelope = {
      // the app too: two apps with a saga of the same name must not send each other's commandIds
      commandId: uuidV5(`${ctx.app}\u0000${o.name}\u0000${id}\u0000${reactions}\u0000${i}`),
      commandType: c.type,
      aggregateId: c.aggregateId,
      timestamp: time,
      correlationId,
      data: c.data ?? {},
    };
    if (c.tenantId !== undefined) command.tenantId = c.tenantId;
    if (c.expectedVersion !== undefined) command.expectedVersion = c.expectedVersion;
    const userId = trigger.event?.userId;
    if (userId) command.userId = userId;
    ctx.forward(topic, aggregateKey(c.aggregateId, c.tenantId), { ...command, ...(causationId === undefined ? {} : { causationId }) }, { timestamp: trigger.timestamp });
    ctx.count('saga_commands', { command_type: c.type });
  });

  const index = ctx.store<string>('deadlines');
  let deadline = entry?.deadline ?? null;
  if (deadline && (r.deadline !== undefined || ENDED.has(status))) {
    index.delete(timeKey(deadline.at, id));
    deadline = null;
  }
  if (r.deadline && !ENDED.has(status)) {
    // stream time: from the (held) stream time, so a replay sets the same deadlines; wall clock: from now, when the
    // reaction runs (record times are carried along a chain of commands and events, and would count from its start)
    const from = o.deadlines.clock === 'stream-time' ? reactionTime(o, ctx, trigger) : ctx.wallClockTime;
    deadline = { name: r.deadline.name ?? 'deadline', at: from + r.deadline.afterMs };
    index.put(timeKey(deadline.at, id), id);
  }

  if (o.endedRetentionMs > 0 && ENDED.has(status) && !ENDED.has(before as SagaStatus)) {
    ctx.store<string>('ended').put(timeKey(reactionTime(o, ctx, trigger), id), id);
  }
  ctx.store<StoredSaga>('sagas').put(id, {
    status,
    state: r.state !== undefined ? r.state : entry ? entry.state : o.definition.initialState(),
    reactions,
    logVersion,
    seen,
    deadline,
    correlationId,
    startedAt: entry?.startedAt ?? time,
    updatedAt: time,
  });
}
