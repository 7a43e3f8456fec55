/**
 * How a projection turns (view, event) into the next view: declarative `on:` rules or a module's project(). The view
 * is a plain object; null deletes it; undefined means the event does not concern the view (counted as unknown).
 */
import { FoldstreamError } from '../../errors.ts';
import { describeValue, isPlainObject, type EventEnvelope } from '../../serde/envelope.ts';
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import type { ViewEvent } from '../input/views.ts';
import { loadModule, requireFunction } from '../module-loader.ts';

export type View = Record<string, unknown>;

/** What a projection sees: an event envelope, or (chained, inputFormat view) a ViewUpdated / ViewDeleted event. */
export type ProjectedEvent = EventEnvelope | ViewEvent;

export interface Projector {
  /** event types it has rules for; undefined: every event is offered to project() */
  eventTypes: Set<string> | undefined;
  project(view: View | undefined, event: ProjectedEvent, key: string): Promise<View | null | undefined>;
}

/** The module contract of `type: projection` with `module:`. */
export interface ProjectionModule {
  project(view: View | undefined, event: ProjectedEvent): View | null | undefined | Promise<View | null | undefined>;
  /** the event types project() handles; needed for unknownEvents warn or dlq */
  eventTypes?: string[];
}

export async function loadProjector(baseDir: string, decl: ProjectionProcessorDecl): Promise<Projector> {
  const what = `processor "${decl.name}"`;
  const path = decl.module!;
  const mod = await loadModule(baseDir, path, what);
  const project = requireFunction<ProjectionModule['project']>(mod, 'project', what, path);
  const types = mod.eventTypes;
  if (types !== undefined && !(Array.isArray(types) && types.every((x) => typeof x === 'string'))) {
    throw new FoldstreamError('MODULE_INVALID', `${what}: export eventTypes of module "${path}" must be a list of event type names`);
  }
  if (types === undefined && decl.unknownEvents !== 'ignore') {
    throw new FoldstreamError('MODULE_INVALID', `${what}: unknownEvents is ${decl.unknownEvents}, but module "${path}" does not export eventTypes`, {
      hint: "export const eventTypes = ['UserCreated', ...]: the event types project() handles",
    });
  }
  return {
    eventTypes: types === undefined ? undefined : new Set(types as string[]),
    async project(view, event) {
      const next = await project(view, event);
      if (next !== undefined && next !== null && !isPlainObject(next)) {
        throw new FoldstreamError('HANDLER_FAILED', `${what}: project() of "${path}" returned ${describeValue(next)}`, {
          hint: 'return the view (an object), null to delete it, or undefined when the event does not concern it',
        });
      }
      return next;
    },
  };
}
