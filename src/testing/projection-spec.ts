/**
 * Given/then for a projection: events go through the topology (envelope checks, upcasters, version checks, the
 * projection's rules or module, groupBy's second stage), and the views are read from its output topic, as a reader
 * of that compacted topic would see them.
 *
 *   const userView = projectionSpec({ topology: 'topology.yaml', processor: 'user-view' });
 *   await userView.given({ eventType: 'UserCreated', aggregateId: 'u1', eventVersion: 2, data: {...} }).thenView('u1', {...});
 *
 * Events leave out what an aggregate would fill in (eventId, aggregateVersion, timestamp; see
 * TopologyTestDriver.pipeEvent). Each then… resolves to the outcome, or rejects with a SpecAssertionError.
 */
import type { View } from '../processors/projection/projector.ts';
import type { DeadLetter } from './dead-letters.ts';
import { equal, SpecAssertionError } from './diff.ts';
import type { EventInput } from './envelopes.ts';
import { driverFactory, type SpecSource } from './spec-source.ts';
import type { TopologyTestDriver } from './topology-test-driver.ts';

export interface ProjectionSpecOptions extends SpecSource {
  /** the projection processor's name */
  processor: string;
}

export interface ProjectionOutcome {
  /** the latest view per key on the output topic (null: deleted) */
  views: Map<string, View | null>;
  /** dead letters of the projection (both stages with groupBy) */
  deadLetters: DeadLetter[];
  driver: TopologyTestDriver;
}

export interface ProjectionSpec {
  given(...events: (EventInput | EventInput[])[]): ProjectionScenario;
}

export function projectionSpec(o: ProjectionSpecOptions): ProjectionSpec {
  const open = driverFactory(o);
  return { given: (...events) => new ProjectionScenario(o, open, events.flat()) };
}

export class ProjectionScenario {
  constructor(
    private readonly o: ProjectionSpecOptions,
    private readonly open: () => Promise<TopologyTestDriver>,
    private readonly events: EventInput[],
  ) {}

  /** Runs the scenario and returns the views, asserting nothing. */
  async run(): Promise<ProjectionOutcome> {
    const d = await this.open();
    const decl = d.loaded.topology.processors.find((p) => p.name === this.o.processor);
    if (decl?.type !== 'projection') throw new Error(`"${this.o.processor}" is not a projection processor of ${d.loaded.file}`);
    const [input] = Array.isArray(decl.input) ? decl.input : [decl.input];
    for (const e of this.events) await d.pipeEvent(e, { topic: input! });
    const stages = d.processors.filter((p) => p === decl.name || p.startsWith(`${decl.name}-`));
    return { views: d.latest<View>(decl.output), deadLetters: stages.flatMap((p) => d.deadLetters(p)), driver: d };
  }

  /** The view of `key` equals this, exactly (null: there is none, or it was deleted). */
  async thenView(key: string, expected: View | null): Promise<ProjectionOutcome> {
    const o = await this.run();
    const actual = o.views.get(key) ?? null;
    if (!equal(actual, expected)) {
      const dead = o.deadLetters.map((l) => `  ${l.code} (${l.key}): ${l.message}`);
      const note = dead.length ? `\n${dead.length} event(s) went to the dead-letter topic:\n${dead.join('\n')}` : '';
      throw new SpecAssertionError(`${this.o.processor}: the view of ${JSON.stringify(key)} differs${note}`, expected, actual);
    }
    return o;
  }
}
