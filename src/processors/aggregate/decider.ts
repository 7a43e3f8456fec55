/**
 * The decider contract of an aggregate (DESIGN §7, the shape emmett popularised): `initialState`, `decide(command,
 * state)` → events, `evolve(state, event)` → state. A module exports the three; declarative YAML rules build the same.
 * `decide` rejects a command by throwing a DomainError (from foldstream, or any error named "DomainError").
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject, type CommandEnvelope, type Data, type EventEnvelope } from '../../serde/envelope.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { loadModule, requireFunction, requireInitialState } from '../module-loader.ts';

/** What decide returns per event; foldstream stamps ids, versions, time and causation (docs/aggregates.md). */
export interface EventDraft<D = Data> {
  type: string;
  data?: D;
  /** default 1 */
  eventVersion?: number;
}

export interface DecideContext {
  aggregateId: string;
  /** the record key: aggregateId, or tenantId:aggregateId */
  key: string;
  /** the aggregate's version: the number of events it has */
  version: number;
}

type MaybeArray<T> = T | T[];

/** The module contract of `type: aggregate` with `module:`. State must be plain data (it is stored as msgpack). */
export interface DeciderModule<S = unknown> {
  initialState: S | (() => S);
  decide(command: CommandEnvelope, state: S, context: DecideContext): MaybeArray<EventDraft> | undefined | Promise<MaybeArray<EventDraft> | undefined>;
  evolve(state: S, event: EventEnvelope): S | Promise<S>;
}

/** A decider as the aggregate processor uses it. */
export interface Decider {
  initialState(): unknown;
  decide(command: CommandEnvelope, state: unknown, context: DecideContext): Promise<EventDraft[]>;
  evolve(state: unknown, event: EventEnvelope): Promise<unknown>;
}

/** Checks what decide returned, so a decider bug is a clear message rather than a malformed event on the topic. */
export function eventDrafts(out: unknown, where: string): EventDraft[] {
  const list = out === undefined || out === null ? [] : Array.isArray(out) ? out : [out];
  for (const d of list) {
    const ok =
      isPlainObject(d) &&
      typeof d.type === 'string' &&
      d.type.length > 0 &&
      (d.data === undefined || isPlainObject(d.data)) &&
      (d.eventVersion === undefined || (Number.isSafeInteger(d.eventVersion) && (d.eventVersion as number) >= 1));
    if (!ok) {
      throw new FoldstreamError('HANDLER_FAILED', `${where}: decide() returned ${describeValue(d)} where an event { type, data?, eventVersion? } belongs`, {
        hint: 'return an event, a list of events, or nothing (accepted with no event); throw a DomainError to reject',
      });
    }
  }
  return list as EventDraft[];
}

export async function loadDecider(baseDir: string, decl: AggregateProcessorDecl): Promise<Decider> {
  const what = `processor "${decl.name}"`;
  const path = decl.module!;
  const mod = await loadModule(baseDir, path, what);
  const decide = requireFunction<DeciderModule['decide']>(mod, 'decide', what, path);
  const evolve = requireFunction<DeciderModule['evolve']>(mod, 'evolve', what, path);
  const initialState = requireInitialState(mod, what, path, 'an aggregate with no events');
  const where = `${what} (${path})`;
  return {
    initialState,
    decide: async (command, state, context) => eventDrafts(await decide(command, state, context), where),
    evolve: async (state, event) => evolve(state, event),
  };
}
