/**
 * A saga from YAML: `startOn` event type(s) start an instance, then `flow:` steps run in order. A step sends its
 * command(s) when it begins and completes on one of its `completeOn` events; the next step begins, and after the
 * last the saga is completed. A `failOn` event fails the saga: the completed steps' `compensate` commands are sent,
 * last step first. A step's `timeoutMs` sets a deadline; when it passes, the step itself is compensated too (it may
 * have happened without its answer arriving), then the completed ones; then the `onFailure` commands go out.
 * Expressions are JSONata over `{ sagaId, start, event, state, reason }`: `start` is the event that started the
 * instance, `event` the current one (none on a timeout), `reason` why the saga failed (compensations and onFailure).
 * A `completeOn` / `failOn` entry may carry a `when` condition: any correlated event of the type would otherwise do,
 * whichever aggregate it comes from (a deposit to an unrelated account carrying the transfer's id).
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, type EventEnvelope } from '../../serde/envelope.ts';
import type { SagaCommandDecl, SagaEventMatchDecl, SagaProcessorDecl, SagaStepDecl } from '../../topology/schema.ts';
import { compileExpression, compileMap, isTrue, type Expression } from '../expressions.ts';
import { setPath } from '../field-paths.ts';
import type { SagaCommand, SagaDefinition, SagaReaction } from './definition.ts';

/** State of a flow instance (docs/wire-formats.md). */
export interface FlowState {
  /** index of the current step; flow.length once completed */
  step: number;
  /** the event that started the instance */
  start: EventEnvelope;
}

interface CommandTemplate {
  type: string;
  to: string | undefined;
  aggregateId: Expression;
  tenantId: Expression | undefined;
  data: [string, Expression][];
}

/** An event type a step waits for, and the condition (`when`) such an event must meet to count. */
interface EventMatch {
  type: string;
  when: Expression | undefined;
}

interface Step {
  name: string;
  send: CommandTemplate[];
  completeOn: EventMatch[];
  failOn: EventMatch[];
  compensate: CommandTemplate[];
  timeoutMs: number | undefined;
}

const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

function compileCommands(decl: SagaStepDecl['send'] | undefined, where: string): CommandTemplate[] {
  return list<SagaCommandDecl>(decl).map((c, i) => {
    const at = Array.isArray(decl) ? `${where}[${i}]` : where;
    return {
      type: c.type,
      to: c.to,
      aggregateId: compileExpression(c.aggregateId, `${at}.aggregateId`),
      tenantId: c.tenantId === undefined ? undefined : compileExpression(c.tenantId, `${at}.tenantId`),
      data: compileMap(c.data, `${at}.data`),
    };
  });
}

function compileMatches(decl: SagaEventMatchDecl | SagaEventMatchDecl[] | undefined, where: string): EventMatch[] {
  return list(decl).map((m, i) => {
    if (typeof m === 'string') return { type: m, when: undefined };
    const at = Array.isArray(decl) ? `${where}[${i}]` : where;
    return { type: m.type, when: m.when === undefined ? undefined : compileExpression(m.when, `${at}.when`) };
  });
}

/** Whether the event is one the step waits for: its type is listed, and that entry's `when` (if any) is true. */
async function matches(candidates: EventMatch[], event: EventEnvelope, input: unknown): Promise<boolean> {
  for (const m of candidates) {
    if (m.type !== event.eventType) continue;
    if (!m.when || isTrue(await m.when.evaluate(input))) return true;
  }
  return false;
}

/** An id from an expression: a non-empty string (numbers are written out); anything else is a handler failure. */
async function idOf(x: Expression, input: unknown, what: string): Promise<string> {
  const v = await x.evaluate(input);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.length > 0) return v;
  throw new FoldstreamError('HANDLER_FAILED', `${what}: expression ${JSON.stringify(x.source)} gave ${describeValue(v)}, not an id`, {
    hint: 'make the expression give a non-empty string for every event that reaches this step',
  });
}

async function commandsOf(templates: CommandTemplate[], input: unknown): Promise<SagaCommand[]> {
  const out: SagaCommand[] = [];
  for (const t of templates) {
    const data: Record<string, unknown> = {};
    for (const [field, x] of t.data) {
      const v = await x.evaluate(input);
      if (v !== undefined) setPath(data, field, v);
    }
    const c: SagaCommand = { type: t.type, aggregateId: await idOf(t.aggregateId, input, `command ${t.type} aggregateId`), data };
    if (t.to !== undefined) c.to = t.to;
    if (t.tenantId) c.tenantId = await idOf(t.tenantId, input, `command ${t.type} tenantId`);
    out.push(c);
  }
  return out;
}

export function flowSaga(decl: SagaProcessorDecl): SagaDefinition {
  const where = `processor "${decl.name}"`;
  const startOn = new Set(list(decl.startOn));
  const steps: Step[] = decl.flow!.map((s, i) => ({
    name: s.name,
    send: compileCommands(s.send, `${where} flow[${i}].send`),
    completeOn: compileMatches(s.completeOn, `${where} flow[${i}].completeOn`),
    failOn: compileMatches(s.failOn, `${where} flow[${i}].failOn`),
    compensate: compileCommands(s.compensate, `${where} flow[${i}].compensate`),
    timeoutMs: s.timeoutMs,
  }));
  const deadlineOf = (s: Step): { name: string; afterMs: number } | null => (s.timeoutMs === undefined ? null : { name: s.name, afterMs: s.timeoutMs });

  const onFailure = compileCommands(decl.onFailure, `${where} onFailure`);

  /** Compensates the steps before `upTo` (exclusive), last first, then sends the onFailure commands. */
  async function fail(state: FlowState, upTo: number, reason: string, input: object): Promise<SagaReaction> {
    const send: SagaCommand[] = [];
    const withReason = { ...input, reason };
    for (const s of steps.slice(0, upTo).reverse()) send.push(...(await commandsOf(s.compensate, withReason)));
    const compensated = send.length > 0;
    send.push(...(await commandsOf(onFailure, withReason)));
    return { send, status: compensated ? 'compensated' : 'failed', reason, deadline: null, state };
  }

  return {
    initialState: () => ({ step: 0 }),
    async handle(raw, event, saga) {
      if (saga.status === 'new') {
        if (!startOn.has(event.eventType)) return undefined;
        const first = steps[0]!;
        const state: FlowState = { step: 0, start: event };
        const input = { sagaId: saga.id, start: event, event, state };
        return { state, send: await commandsOf(first.send, input), deadline: deadlineOf(first), status: 'running' };
      }
      const state = raw as FlowState;
      const current = steps[state.step];
      if (saga.status !== 'running' || !current) return undefined;
      const input = { sagaId: saga.id, start: state.start, event, state };
      if (await matches(current.completeOn, event, input)) {
        const next = steps[state.step + 1];
        const moved: FlowState = { ...state, step: state.step + 1 };
        if (!next) return { state: moved, step: current.name, status: 'completed', deadline: null };
        return { state: moved, step: current.name, send: await commandsOf(next.send, { ...input, state: moved }), deadline: deadlineOf(next) };
      }
      if (await matches(current.failOn, event, input)) return fail(state, state.step, `${event.eventType} at step "${current.name}"`, input);
      return undefined;
    },
    async onDeadline(raw, deadline, saga) {
      const state = raw as FlowState;
      const current = steps[state.step];
      if (saga.status !== 'running' || !current || current.name !== deadline.name) return undefined;
      const input = { sagaId: saga.id, start: state.start, event: undefined, state };
      return fail(state, state.step + 1, `step "${current.name}" timed out`, input);
    },
  };
}
