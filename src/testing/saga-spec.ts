/**
 * Given/when/then for a saga, in the shape of Axon's saga test fixture but through the topology: the saga runs alone
 * (the topology's other processors are left out, so no aggregate answers its commands), given events are what its
 * instances have already seen, and the when step is one more event or time passing. The outcome is read from its
 * outputs: the commands it sent, its log, its instances.
 *
 *   const fulfilment = sagaSpec({ topology: 'examples/orders/topology.yaml', processor: 'order-fulfilment' });
 *   await fulfilment.given(orderPlaced, stockReserved).when(paymentDeclined).thenCommands([{ commandType: 'ReleaseStock', ... }]);
 *   await fulfilment.given(orderPlaced).whenTimeElapses(31_000).thenStatus('compensated');
 *
 * Events leave out what an aggregate would fill in (eventId, aggregateVersion, timestamp; see
 * TopologyTestDriver.pipeEvent); aggregateType is needed when several aggregates write the saga's inputs, and picks
 * the input an event goes to (the topic its aggregate type writes).
 * Each then… resolves to the outcome, or rejects with a SpecAssertionError showing a diff.
 */
import type { SagaStatus } from '../processors/saga/definition.ts';
import type { StoredSaga } from '../processors/saga/processor.ts';
import type { CommandEnvelope, Data, EventEnvelope } from '../serde/envelope.ts';
import { inputsOf, stagesOf } from '../topology/names.ts';
import type { SagaProcessorDecl } from '../topology/schema.ts';
import type { DeadLetter } from './dead-letters.ts';
import { equal, SpecAssertionError } from './diff.ts';
import type { EventInput } from './envelopes.ts';
import { topologyLoader, type SpecSource } from './spec-source.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { TopologyTestDriver } from './topology-test-driver.ts';

export interface SagaSpecOptions extends SpecSource {
  /** the saga processor's name */
  processor: string;
}

/** A command as a then step expects it: the fields named are compared (data exactly), the rest ignored. */
export interface ExpectedCommand {
  commandType: string;
  aggregateId?: string;
  data?: Data;
  /** topic alias or name it went to */
  topic?: string;
}

export interface SentCommand {
  /** topic name */
  topic: string;
  command: CommandEnvelope;
}

export interface SagaOutcome {
  /** commands the when step caused, in the order they were sent */
  commands: SentCommand[];
  /** saga log entries the when step caused (none when the saga has no log topic) */
  log: EventEnvelope[];
  /** every instance after the when step, by saga id */
  sagas: Map<string, StoredSaga>;
  /** dead letters of the saga (both stages with correlate) during the when step */
  deadLetters: DeadLetter[];
  driver: TopologyTestDriver;
}

type When = { event: EventInput } | { elapseMs: number };

export interface SagaSpec {
  /** Events the saga's instances have already seen. */
  given(...events: (EventInput | EventInput[])[]): { when(event: EventInput): SagaScenario; whenTimeElapses(ms: number): SagaScenario };
  when(event: EventInput): SagaScenario;
  whenTimeElapses(ms: number): SagaScenario;
}

export function sagaSpec(o: SagaSpecOptions): SagaSpec {
  const load = topologyLoader(o);
  const scenario = (given: EventInput[], when: When) => new SagaScenario(o, load, given, when);
  const whens = (given: EventInput[]) => ({
    when: (event: EventInput) => scenario(given, { event }),
    whenTimeElapses: (ms: number) => scenario(given, { elapseMs: ms }),
  });
  return { given: (...events) => whens(events.flat()), ...whens([]) };
}

export class SagaScenario {
  constructor(
    private readonly o: SagaSpecOptions,
    private readonly load: () => LoadedTopology,
    private readonly given: EventInput[],
    private readonly whenStep: When,
  ) {}

  /** Runs the scenario and returns what the when step caused, asserting nothing. */
  async run(): Promise<SagaOutcome> {
    const loaded = this.load();
    const decl = loaded.topology.processors.find((p) => p.name === this.o.processor);
    if (decl?.type !== 'saga') throw new Error(`"${this.o.processor}" is not a saga processor of ${loaded.file}`);
    const topics = loaded.topology.topics;
    const inputs = inputsOf(decl).map((alias) => topics[alias]!.name);
    // which input an event goes to: the one its aggregate type's events are written to, else the first
    const writers = new Map<string, string>();
    for (const p of loaded.topology.processors) {
      const events = p.type === 'aggregate' ? topics[p.output.events]?.name : undefined;
      if (p.type === 'aggregate' && events && inputs.includes(events)) writers.set(p.aggregateType, events);
    }
    const only = writers.size === 1 ? [...writers.keys()][0] : undefined;
    // the saga alone: its commands stay on their topics, unanswered
    const d = await TopologyTestDriver.fromLoaded(
      { ...loaded, topology: { ...loaded.topology, processors: [decl], tests: [] } },
      this.o.driver ?? {},
    );
    const pipe = (e: EventInput) => {
      const event = e.aggregateType === undefined && only !== undefined ? { ...e, aggregateType: only } : e;
      return d.pipeEvent(event, { topic: writers.get(event.aggregateType ?? '') ?? inputs[0]! });
    };
    for (const e of this.given) await pipe(e);
    const mark = d.mark();
    if ('event' in this.whenStep) await pipe(this.whenStep.event);
    else await elapse(d, decl, this.whenStep.elapseMs);

    const t = d.loaded.topology;
    const commandTopics = (Array.isArray(decl.output.commands) ? decl.output.commands : [decl.output.commands]).map((a) => t.topics[a]!.name);
    const commands = d.outputOf<CommandEnvelope>(commandTopics, { since: mark }).map((r) => ({ topic: r.topic, command: r.value }));
    const log = decl.output.log === undefined ? [] : d.output<EventEnvelope>(decl.output.log, { since: mark }).map((r) => r.value);
    const instances = stagesOf(decl).at(-1)!.name;
    const stages = stagesOf(decl).map((s) => s.name);
    return {
      commands,
      log,
      sagas: await d.store<StoredSaga>(instances, 'sagas'),
      deadLetters: stages.flatMap((p) => d.deadLetters(p, { since: mark })),
      driver: d,
    };
  }

  private title(): string {
    const w = this.whenStep;
    return `${this.o.processor}: ${'event' in w ? `${w.event.eventType} of ${w.event.aggregateId}` : `${w.elapseMs} ms later`}`;
  }

  private deadNote(o: SagaOutcome): string {
    const dead = o.deadLetters.map((l) => `  ${l.code} (${l.key}): ${l.message}`);
    return dead.length ? `\n${dead.length} record(s) went to the dead-letter topic:\n${dead.join('\n')}` : '';
  }

  /** The when step sends exactly these commands, in order (fields not named in an expected command are ignored). */
  async thenCommands(expected: ExpectedCommand[]): Promise<SagaOutcome> {
    const o = await this.run();
    const t = o.driver.loaded.topology;
    const got = o.commands.map(({ topic, command: c }, i) => {
      const want = expected[i];
      const out: Record<string, unknown> = { commandType: c.commandType };
      if (want?.aggregateId !== undefined) out.aggregateId = c.aggregateId;
      if (want?.data !== undefined) out.data = c.data;
      if (want?.topic !== undefined) out.topic = t.topics[want.topic] && t.topics[want.topic]!.name === topic ? want.topic : topic;
      return out;
    });
    if (!equal(got, expected.map((e) => ({ ...e })))) throw new SpecAssertionError(`${this.title()}: the commands sent differ${this.deadNote(o)}`, expected, got);
    return o;
  }

  /** The saga log entries of the when step are these types, in order. */
  async thenLog(expected: string[]): Promise<SagaOutcome> {
    const o = await this.run();
    const got = o.log.map((e) => e.eventType);
    if (!equal(got, expected)) throw new SpecAssertionError(`${this.title()}: the saga log differs${this.deadNote(o)}`, expected, got);
    return o;
  }

  /** The instance (`sagaId`, or the only one) is in this status after the when step; undefined: there is none. */
  async thenStatus(expected: SagaStatus | undefined, sagaId?: string): Promise<SagaOutcome> {
    const o = await this.run();
    const got = instance(o, sagaId, this.title())?.status;
    if (got !== expected) throw new SpecAssertionError(`${this.title()}: the saga's status differs${this.deadNote(o)}`, expected, got);
    return o;
  }

  /** The instance's state (`sagaId`, or the only one) equals this after the when step. */
  async thenState(expected: unknown, sagaId?: string): Promise<SagaOutcome> {
    const o = await this.run();
    const got = instance(o, sagaId, this.title())?.state;
    if (!equal(got, expected)) throw new SpecAssertionError(`${this.title()}: the saga's state differs${this.deadNote(o)}`, expected, got);
    return o;
  }
}

function instance(o: SagaOutcome, sagaId: string | undefined, title: string): StoredSaga | undefined {
  if (sagaId !== undefined) return o.sagas.get(sagaId);
  if (o.sagas.size > 1) throw new Error(`${title}: ${o.sagas.size} saga instances exist (${[...o.sagas.keys()].join(', ')}); name the one to check`);
  return [...o.sagas.values()][0];
}

/** Time passing for the saga's deadlines: the wall clock, and with the stream-time clock its instances' stream time. */
async function elapse(d: TopologyTestDriver, decl: SagaProcessorDecl, ms: number): Promise<void> {
  await d.advanceWallClock(ms);
  if (decl.deadlines.clock === 'stream-time') await d.advanceStreamTime(d.now, stagesOf(decl).at(-1)!.name);
}
