/**
 * Given/when/then for an aggregate, in the shape of emmett's DeciderSpecification, but through the topology: given
 * events are appended through the aggregate's own evolve (TopologyTestDriver.appendEvents), the command runs through
 * the same stages, concurrency and idempotency checks as in production, and the outcome is read from its outputs.
 *
 *   const users = aggregateSpec({ topology: 'topology.yaml', processor: 'users', aggregateId: 'u1' });
 *   await users.given(userCreated).when({ commandType: 'UpdateEmail', data: { email: 'b@x' } }).thenEvents([emailChanged]);
 *
 * Each then… resolves to the outcome, or rejects with a SpecAssertionError showing a diff.
 */
import type { EventDraft } from '../processors/aggregate/decider.ts';
import { commandKey } from '../processors/input/commands.ts';
import { rememberedKey, sentReply, type RememberedReply } from '../processors/aggregate/remembered.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../serde/envelope.ts';
import { inputsOf } from '../topology/names.ts';
import type { DeadLetter } from './dead-letters.ts';
import { equal, SpecAssertionError } from './diff.ts';
import { completeCommand, type CommandInput } from './envelopes.ts';
import { driverFactory, type SpecSource } from './spec-source.ts';
import type { TopologyTestDriver } from './topology-test-driver.ts';

export interface AggregateSpecOptions extends SpecSource {
  /** the aggregate processor's name */
  processor: string;
  /** the aggregate a command is for when it names none (default "aggregate-1") */
  aggregateId?: string;
}

/** A command as a spec writes it: aggregateId, commandId and data may be left out. */
export type SpecCommand = Omit<CommandInput, 'aggregateId'> & { aggregateId?: string };

export interface AggregateOutcome {
  command: CommandEnvelope;
  /** undefined when the command got none (it went to the dead-letter topic) */
  reply: Reply | undefined;
  /** the events the command caused */
  events: EventEnvelope[];
  /** the aggregate's version and state after the command; state is undefined while it has no events */
  version: number;
  state: unknown;
  /** dead letters of the aggregate during the command */
  deadLetters: DeadLetter[];
  driver: TopologyTestDriver;
}

export interface AggregateSpec {
  /** Events the aggregate already has (the shape decide returns: { type, data, eventVersion }). */
  given(...events: (EventDraft | EventDraft[])[]): { when(command: SpecCommand): AggregateScenario };
  /** A command to an aggregate with no events. */
  when(command: SpecCommand): AggregateScenario;
}

export function aggregateSpec(o: AggregateSpecOptions): AggregateSpec {
  const open = driverFactory(o);
  const scenario = (given: EventDraft[], command: SpecCommand) => new AggregateScenario(o, open, given, command);
  return {
    given: (...events) => ({ when: (command) => scenario(events.flat(), command) }),
    when: (command) => scenario([], command),
  };
}

const describeEvents = (events: EventEnvelope[]) => `[${events.map((e) => e.eventType).join(', ')}]`;

export class AggregateScenario {
  constructor(
    private readonly o: AggregateSpecOptions,
    private readonly open: () => Promise<TopologyTestDriver>,
    private readonly given: EventDraft[],
    private readonly command: SpecCommand,
  ) {}

  /** Runs the scenario and returns what happened, asserting nothing. */
  async run(): Promise<AggregateOutcome> {
    const d = await this.open();
    const decl = d.loaded.topology.processors.find((p) => p.name === this.o.processor);
    if (decl?.type !== 'aggregate') throw new Error(`"${this.o.processor}" is not an aggregate processor of ${d.loaded.file}`);
    const command = completeCommand({ ...this.command, aggregateId: this.command.aggregateId ?? this.o.aggregateId ?? 'aggregate-1' }, 1);
    const tenant = decl.partitioning === 'tenant';
    if (this.given.length) {
      await d.appendEvents(this.o.processor, command.aggregateId, this.given, command.tenantId === undefined ? {} : { tenantId: command.tenantId });
    }
    const mark = d.mark();
    // an aggregate with no replies topic still keeps each reply in its commands store
    const piped = await d.pipeCommand(command, { topic: inputsOf(decl)[0]! });
    const remembered = piped ? undefined : (await d.store<RememberedReply>(this.o.processor, 'commands')).get(rememberedKey(commandKey(command, tenant), command.commandId));
    const reply = piped ?? (remembered && sentReply(remembered));
    const events = d
      .output<EventEnvelope>(decl.output.events, { since: mark })
      .map((r) => r.value)
      .filter((e) => e.causationId === command.commandId);
    const stored = (await d.store<{ version: number; state: unknown }>(this.o.processor, 'state')).get(commandKey(command, tenant));
    return { command, reply, events, version: stored?.version ?? 0, state: stored?.state, deadLetters: d.deadLetters(this.o.processor, { since: mark }), driver: d };
  }

  private title(o: AggregateOutcome): string {
    return `${this.o.processor}: ${o.command.commandType} ${o.command.aggregateId}`;
  }

  /** The reply, or a failure saying why there is none. */
  private replied(o: AggregateOutcome, expected: unknown): Reply {
    if (o.reply) return o.reply;
    const dl = o.deadLetters[0];
    throw new SpecAssertionError(
      `${this.title(o)} got no reply${dl ? `: it went to the dead-letter topic as ${dl.code}: ${dl.message}` : ''}`,
      expected,
      undefined,
      dl ? undefined : 'no reply and no dead letter',
    );
  }

  /** The command is accepted and causes exactly these events (type, data, and eventVersion where given), in order. */
  async thenEvents(expected: EventDraft[]): Promise<AggregateOutcome> {
    const o = await this.run();
    const want = expected.map((d) => ({ type: d.type, data: d.data ?? {}, ...(d.eventVersion === undefined ? {} : { eventVersion: d.eventVersion }) }));
    const reply = this.replied(o, want);
    if (reply.status !== 'accepted') {
      throw new SpecAssertionError(
        `${this.title(o)}: expected it accepted with events ${JSON.stringify(want.map((e) => e.type))}, but it was ${reply.status} (${reply.code}): ${reply.reason}`,
        { status: 'accepted' },
        { status: reply.status, code: reply.code, reason: reply.reason },
      );
    }
    const got = o.events.map((e, i) => ({ type: e.eventType, data: e.data, ...(want[i]?.eventVersion === undefined ? {} : { eventVersion: e.eventVersion }) }));
    if (!equal(got, want)) throw new SpecAssertionError(`${this.title(o)}: the events differ`, want, got);
    return o;
  }

  /** The command is rejected by the decider (a DomainError), with this code and reason where given. */
  async thenRejected(expected: { code?: string; reason?: string | RegExp } = {}): Promise<AggregateOutcome> {
    const o = await this.run();
    const reply = this.replied(o, { status: 'rejected', ...expected });
    if (reply.status !== 'rejected') {
      const what = reply.status === 'accepted' ? `accepted with events ${describeEvents(o.events)}` : `a ${reply.status}: ${reply.reason}`;
      throw new SpecAssertionError(`${this.title(o)}: expected a rejection${expected.code ? ` (${expected.code})` : ''}, but it was ${what}`, { status: 'rejected' }, { status: reply.status });
    }
    const reasonOk = expected.reason === undefined || (expected.reason instanceof RegExp ? expected.reason.test(reply.reason ?? '') : expected.reason === reply.reason);
    if ((expected.code !== undefined && expected.code !== reply.code) || !reasonOk) {
      const want = { ...(expected.code === undefined ? {} : { code: expected.code }), ...(expected.reason === undefined ? {} : { reason: String(expected.reason) }) };
      const got = { ...(expected.code === undefined ? {} : { code: reply.code }), ...(expected.reason === undefined ? {} : { reason: reply.reason }) };
      throw new SpecAssertionError(`${this.title(o)}: rejected, but not as expected`, want, got);
    }
    return o;
  }

  /** The command's expectedVersion is stale: a conflict, no events (at this aggregateVersion where given). */
  async thenConflict(expected: { aggregateVersion?: number } = {}): Promise<AggregateOutcome> {
    const o = await this.run();
    const reply = this.replied(o, { status: 'conflict', ...expected });
    const want = { status: 'conflict', ...expected };
    const got = { status: reply.status, ...(expected.aggregateVersion === undefined ? {} : { aggregateVersion: reply.aggregateVersion }) };
    if (!equal(got, want)) {
      throw new SpecAssertionError(
        `${this.title(o)}: expected a conflict${o.command.expectedVersion === undefined ? ' (the command has no expectedVersion)' : ''}, but ${
          reply.status === 'conflict' ? 'at another version' : `it was ${reply.status}${reply.reason ? `: ${reply.reason}` : ''}`
        }`,
        want,
        got,
      );
    }
    return o;
  }

  /** The aggregate's state after the command equals this (undefined: the aggregate has no events). */
  async thenState(expected: unknown): Promise<AggregateOutcome> {
    const o = await this.run();
    if (!equal(o.state, expected)) {
      const why = o.reply && o.reply.status !== 'accepted' ? ` (the command was ${o.reply.status}: ${o.reply.reason})` : '';
      throw new SpecAssertionError(`${this.title(o)}: the state differs${why}`, expected, o.state);
    }
    return o;
  }
}
