/**
 * The saga (process manager) contract, DESIGN §7: per saga instance a state; each event the instance sees may give a
 * reaction — commands to send, a new state, a deadline set or cleared, a step completed, a status change. A module
 * exports `initialState` and `handle(state, event, saga)`, and optionally `onDeadline(state, deadline, saga)`; a
 * declarative `flow:` in YAML builds the same (flow.ts). The processor (processor.ts) does everything else: stamping
 * the commands, the saga log, the deadline index, and exactly-once through the task's transaction.
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject, type Data, type EventEnvelope } from '../../serde/envelope.ts';
import type { SagaProcessorDecl } from '../../topology/schema.ts';
import { loadModule, optionalFunction, requireFunction, requireInitialState } from '../module-loader.ts';

/** Where an instance is. `completed`, `compensated` and `failed` end it: later events are ignored (and counted). */
export type SagaStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed';

export const ENDED: ReadonlySet<SagaStatus> = new Set(['completed', 'compensated', 'failed']);

/** A command a saga sends; foldstream stamps commandId, timestamp, correlation and causation (docs/sagas.md). */
export interface SagaCommand<D = Data> {
  type: string;
  aggregateId: string;
  data?: D;
  /** topic alias or name, one of the saga's output.commands; default the first */
  to?: string;
  tenantId?: string;
  expectedVersion?: number;
}

/** What a saga does in answer to an event or a deadline. Every field is optional. */
export interface SagaReaction<S = unknown> {
  /** the instance's new state (default: unchanged) */
  state?: S;
  send?: SagaCommand[];
  /**
   * sets the instance's one deadline (replacing any), null clears it; `afterMs` counts from now (wall clock), or with
   * `deadlines.clock: stream-time` from the time of the record being handled
   */
  deadline?: { name?: string; afterMs: number } | null;
  /** a step completed: logged as SagaStepCompleted */
  step?: string;
  /** a new status (logged: SagaFailed for compensating and failed, SagaCompensated, SagaCompleted) */
  status?: SagaStatus;
  /** why the saga failed, in its log */
  reason?: string;
}

/** What a saga's code knows about its instance. */
export interface SagaInfo {
  /** the saga instance id: the correlation value, or the record key */
  id: string;
  /** 'new' when no instance exists yet: a reaction starts one, nothing leaves it unstarted */
  status: SagaStatus | 'new';
}

export interface Deadline {
  name: string;
  /** when it is due, ms since the epoch */
  at: number;
}

/** The module contract of `type: saga` with `module:`. State must be plain data (it is stored as msgpack). */
export interface SagaModule<S = unknown> {
  initialState: S | (() => S);
  handle(state: S, event: EventEnvelope, saga: SagaInfo): SagaReaction<S> | undefined | Promise<SagaReaction<S> | undefined>;
  onDeadline?(state: S, deadline: Deadline, saga: SagaInfo): SagaReaction<S> | undefined | Promise<SagaReaction<S> | undefined>;
}

/** A saga as the processor uses it. */
export interface SagaDefinition {
  initialState(): unknown;
  handle(state: unknown, event: EventEnvelope, saga: SagaInfo): Promise<SagaReaction | undefined>;
  onDeadline(state: unknown, deadline: Deadline, saga: SagaInfo): Promise<SagaReaction | undefined>;
}

const STATUSES: ReadonlySet<string> = new Set(['running', 'compensating', 'completed', 'compensated', 'failed']);

function commandProblem(c: unknown): string | undefined {
  if (!isPlainObject(c)) return `${describeValue(c)} where a command { type, aggregateId, data?, to?, tenantId?, expectedVersion? } belongs`;
  if (typeof c.type !== 'string' || !c.type) return `a command with type ${describeValue(c.type)} (expected a non-empty string)`;
  if (typeof c.aggregateId !== 'string' || !c.aggregateId) return `command ${c.type} with aggregateId ${describeValue(c.aggregateId)} (expected a non-empty string)`;
  if (c.data !== undefined && !isPlainObject(c.data)) return `command ${c.type} with data ${describeValue(c.data)} (expected an object)`;
  if (c.to !== undefined && typeof c.to !== 'string') return `command ${c.type} with to ${describeValue(c.to)} (expected a topic alias)`;
  if (c.tenantId !== undefined && (typeof c.tenantId !== 'string' || !c.tenantId)) return `command ${c.type} with tenantId ${describeValue(c.tenantId)}`;
  if (c.expectedVersion !== undefined && !(Number.isSafeInteger(c.expectedVersion) && (c.expectedVersion as number) >= 0)) {
    return `command ${c.type} with expectedVersion ${describeValue(c.expectedVersion)} (expected an integer of at least 0)`;
  }
  return undefined;
}

/** Checks what a saga returned, so a bug in it is a clear message (and a dead letter) rather than a bad command. */
export function sagaReaction(out: unknown, where: string): SagaReaction | undefined {
  if (out === undefined || out === null) return undefined;
  const fail = (what: string) => {
    throw new FoldstreamError('HANDLER_FAILED', `${where}: returned ${what}`, {
      hint: 'return { state?, send?, deadline?, step?, status?, reason? }, or nothing when the event does not concern the saga (docs/sagas.md)',
    });
  };
  if (!isPlainObject(out)) return fail(describeValue(out));
  if (out.send !== undefined) {
    if (!Array.isArray(out.send)) fail(`send: ${describeValue(out.send)} (expected a list of commands)`);
    for (const c of out.send as unknown[]) {
      const problem = commandProblem(c);
      if (problem) fail(problem);
    }
  }
  const d = out.deadline;
  if (d !== undefined && d !== null) {
    if (!isPlainObject(d) || !Number.isFinite(d.afterMs) || (d.afterMs as number) < 0 || (d.name !== undefined && typeof d.name !== 'string')) {
      fail(`deadline: ${describeValue(d)} (expected { name?, afterMs } with afterMs ≥ 0, or null to clear it)`);
    }
  }
  if (out.status !== undefined && !STATUSES.has(out.status as string)) fail(`status ${describeValue(out.status)} (expected one of ${[...STATUSES].join(', ')})`);
  if (out.step !== undefined && typeof out.step !== 'string') fail(`step ${describeValue(out.step)} (expected a step name)`);
  if (out.reason !== undefined && typeof out.reason !== 'string') fail(`reason ${describeValue(out.reason)} (expected a string)`);
  return out as SagaReaction;
}

export async function loadSagaModule(baseDir: string, decl: SagaProcessorDecl): Promise<SagaDefinition> {
  const what = `processor "${decl.name}"`;
  const path = decl.module!;
  const mod = await loadModule(baseDir, path, what);
  const handle = requireFunction<SagaModule['handle']>(mod, 'handle', what, path);
  const onDeadline = optionalFunction<NonNullable<SagaModule['onDeadline']>>(mod, 'onDeadline');
  const initialState = requireInitialState(mod, what, path, 'a saga instance that has just started');
  const where = `${what} (${path})`;
  return {
    initialState,
    handle: async (state, event, saga) => sagaReaction(await handle(state, event, saga), `${where} handle()`),
    async onDeadline(state, deadline, saga) {
      if (!onDeadline) {
        // a deadline with no handler fails the saga rather than leaving it waiting forever
        return { status: 'failed', reason: `deadline "${deadline.name}" passed (the module has no onDeadline)`, deadline: null };
      }
      return sagaReaction(await onDeadline(state, deadline, saga), `${where} onDeadline()`);
    },
  };
}
