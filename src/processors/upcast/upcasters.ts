/**
 * Upcasters (DESIGN §6): each lifts one event type from one eventVersion to a later one, declared in YAML (rename,
 * remove, defaults, set) or as a module exporting upcast(event). They chain: v1 → v2 → v3 as long as one applies.
 */
import { errorMessage, FoldstreamError } from '../../errors.ts';
import { isPlainObject, type EventEnvelope } from '../../serde/envelope.ts';
import type { LoadedTopology } from '../../topology/load.ts';
import type { UpcasterDecl } from '../../topology/schema.ts';
import { compileMap } from '../expressions.ts';
import { hasPath, getPath, setPath, unsetPath } from '../field-paths.ts';
import { loadModule, requireFunction } from '../module-loader.ts';

export interface Upcaster {
  eventType: string;
  fromVersion: number;
  toVersion: number;
  apply(event: EventEnvelope): Promise<EventEnvelope>;
}

/** eventType → fromVersion → upcaster */
export type Upcasters = Map<string, Map<number, Upcaster>>;

/**
 * The event as processors see it: lifted by every upcaster that applies, in a chain (v1 → v2 → v3). The one place
 * events are upcast — the stage in front of processors, the aggregate's given history (TopologyTestDriver) and
 * state-as-of-a-time all call it. `lifted` hears of each step (the stage counts them).
 */
export async function upcast(upcasters: Upcasters, event: EventEnvelope, lifted?: (u: Upcaster) => void): Promise<EventEnvelope> {
  for (let u = upcasters.get(event.eventType)?.get(event.eventVersion); u; u = upcasters.get(event.eventType)?.get(event.eventVersion)) {
    event = await u.apply(event);
    lifted?.(u);
  }
  return event;
}

function declarative(u: UpcasterDecl, where: string): Upcaster['apply'] {
  const defaults = compileMap(u.defaults, `${where}.defaults`);
  const set = compileMap(u.set, `${where}.set`);
  return async (event) => {
    // every expression sees the event as it was read, before this upcaster changed it
    const defaultValues = await Promise.all(defaults.map(async ([f, x]) => [f, await x.evaluate(event)] as const));
    const setValues = await Promise.all(set.map(async ([f, x]) => [f, await x.evaluate(event)] as const));
    const data = structuredClone(event.data);
    for (const [from, to] of Object.entries(u.rename ?? {})) {
      const v = getPath(data, from);
      if (v === undefined) continue;
      unsetPath(data, from);
      setPath(data, to, v);
    }
    for (const f of u.remove ?? []) unsetPath(data, f);
    for (const [f, v] of defaultValues) if (v !== undefined && !hasPath(data, f)) setPath(data, f, v);
    for (const [f, v] of setValues) {
      if (v === undefined) unsetPath(data, f);
      else setPath(data, f, v);
    }
    return { ...event, data };
  };
}

async function fromModule(baseDir: string, u: UpcasterDecl, where: string): Promise<Upcaster['apply']> {
  const mod = await loadModule(baseDir, u.module!, where);
  const upcast = requireFunction<(event: EventEnvelope) => unknown>(mod, 'upcast', where, u.module!);
  return async (event) => {
    const out = await upcast(structuredClone(event));
    if (!isPlainObject(out) || !isPlainObject(out.data)) {
      throw new FoldstreamError('HANDLER_FAILED', `${where}: upcast() must return the event with a data object`, {
        hint: `return { ...event, data: { ... } } from upcast() in ${u.module}`,
      });
    }
    return out as unknown as EventEnvelope;
  };
}

export async function loadUpcasters(loaded: LoadedTopology): Promise<Upcasters> {
  const out: Upcasters = new Map();
  for (const [i, u] of loaded.topology.upcasters.entries()) {
    const where = `upcasters[${i}] (${u.eventType} v${u.fromVersion} → v${u.toVersion})`;
    const apply = u.module ? await fromModule(loaded.baseDir, u, where) : declarative(u, where);
    const byVersion = out.get(u.eventType) ?? new Map<number, Upcaster>();
    byVersion.set(u.fromVersion, {
      eventType: u.eventType,
      fromVersion: u.fromVersion,
      toVersion: u.toVersion,
      // the declared toVersion is the truth, whatever a module wrote
      apply: async (event) => {
        try {
          return { ...(await apply(event)), eventVersion: u.toVersion };
        } catch (e) {
          if (e instanceof FoldstreamError) throw e;
          throw new Error(`${where}: ${errorMessage(e)}`, { cause: e });
        }
      },
    });
    out.set(u.eventType, byVersion);
  }
  return out;
}
