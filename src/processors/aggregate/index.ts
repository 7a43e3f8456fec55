/** `type: aggregate`: commands in, events and replies out (docs/aggregates.md). */
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import type { BuildContext } from '../build-context.ts';
import { commandEnvelopeStage, commandKeyStage } from '../input/commands.ts';
import type { ProcessorSpec } from '../spec.ts';
import { stepOutputs, stepStages } from '../steps/index.ts';
import { loadDecider } from './decider.ts';
import { declarativeDecider } from './declarative.ts';
import { loadPartitioning } from './partitioning.ts';
import { aggregateProcessor, appendGiven } from './processor.ts';

export async function buildAggregateSpec(b: BuildContext, p: AggregateProcessorDecl): Promise<ProcessorSpec> {
  const t = b.loaded.topology;
  const decider = p.module ? await loadDecider(b.loaded.baseDir, p) : declarativeDecider(p);
  const partitioning = await loadPartitioning(b.loaded.baseDir, p);
  const events = t.topics[p.output.events]!;
  const replies = p.output.replies === undefined ? undefined : t.topics[p.output.replies]!.name;
  const options = {
    aggregateType: p.aggregateType,
    decider,
    events: { topic: events.name, partitions: events.partitions },
    replies,
    partitioning,
    history: p.history,
    commandRetentionMs: p.commandRetentionMs,
    upcasters: b.upcasters,
    maxClockSkewMs: t.processing.maxClockSkewMs,
  };
  return {
    ...b.common(p),
    inputs: b.inputs(p),
    requireKey: true,
    stages: [commandEnvelopeStage(partitioning.tenant), commandKeyStage(partitioning.tenant), ...stepStages(p.steps, p.name)],
    outputs: b.outputNames([p.output.events, ...(p.output.replies ? [p.output.replies] : []), ...stepOutputs(p.steps)]),
    aggregate: {
      aggregateType: p.aggregateType,
      history: p.history,
      tenant: partitioning.tenant,
      commandTypes: p.module ? undefined : Object.keys(p.commands ?? {}),
      commandsTopic: b.inputs(p)[0]!.topic,
      repliesTopic: replies,
      initialState: () => decider.initialState(),
      evolve: (state, event) => decider.evolve(state, event),
      upcasters: b.upcasters,
    },
    appendEvents: (ctx, cause, drafts, now) => appendGiven(options, ctx, cause, drafts, now),
    create: () => aggregateProcessor(options),
  };
}
