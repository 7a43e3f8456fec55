/**
 * What tests need to know about a topology to fill in defaults: which topic commands and events go to, how command
 * keys are formed, where replies are written, which topic a processor reads and writes.
 */
import type { TopicRegistry } from '../runtime/topic-registry.ts';
import type { AggregateProcessorDecl, ProcessorDecl, Topology } from '../topology/schema.ts';
import { inputsOf } from '../topology/names.ts';

export class TopologyFacts {
  constructor(
    private readonly t: Topology,
    private readonly topics: TopicRegistry,
  ) {}

  private get aggregates(): AggregateProcessorDecl[] {
    return this.t.processors.filter((p): p is AggregateProcessorDecl => p.type === 'aggregate');
  }

  private name(aliasOrName: string): string {
    return this.topics.get(aliasOrName).name;
  }

  decl(processor: string): ProcessorDecl | undefined {
    return this.t.processors.find((p) => p.name === processor);
  }

  /** Topic names a processor reads. */
  inputsOf(processor: string): string[] {
    const p = this.decl(processor);
    return p ? inputsOf(p).map((a) => this.name(a)) : [];
  }

  /** The command topic: `topic`, or the input of the only aggregate; and whether its aggregate keys by tenant. */
  commandTopic(topic: string | undefined): { topic: string; tenant: boolean } {
    const name = topic === undefined ? this.only(this.aggregates.map((a) => this.name(inputsOf(a)[0]!)), 'commands', 'an aggregate') : this.name(topic);
    const reader = this.aggregates.find((a) => inputsOf(a).some((i) => this.name(i) === name));
    return { topic: name, tenant: reader?.partitioning === 'tenant' };
  }

  /** The event topic: `topic`, or the events topic of the only aggregate, or the only topic projections (or windows) read events from. */
  eventTopic(topic: string | undefined): string {
    if (topic !== undefined) return this.name(topic);
    if (this.aggregates.length) return this.only(this.aggregates.map((a) => this.name(a.output.events)), 'events', 'an aggregate');
    const read = this.t.processors
      .filter((p) => (p.type === 'projection' || p.type === 'window') && p.inputFormat === 'envelope')
      .flatMap((p) => inputsOf(p).map((a) => this.name(a)));
    return this.only(read, 'events', 'a projection or window processor');
  }

  /** aggregateType of the aggregate that writes a topic's events, if one does. */
  aggregateTypeOf(topic: string): string | undefined {
    return this.aggregates.find((a) => this.name(a.output.events) === topic)?.aggregateType;
  }

  /** Topic names aggregates write replies to. */
  replyTopics(): string[] {
    return [...new Set(this.aggregates.flatMap((a) => (a.output.replies === undefined ? [] : [this.name(a.output.replies)])))];
  }

  private only(names: string[], what: string, writer: string): string {
    const distinct = [...new Set(names)];
    if (distinct.length === 1) return distinct[0]!;
    throw new Error(
      distinct.length === 0
        ? `no ${writer} in the topology to take ${what} from: name the topic`
        : `several ${what} topics (${distinct.join(', ')}): name the topic`,
    );
  }
}
