/** `type: saga`: events in, commands and a saga log out (docs/sagas.md); with correlate, two runtime processors. */
import { repartitionTopic, stagesOf } from '../../topology/names.ts';
import type { SagaProcessorDecl } from '../../topology/schema.ts';
import type { BuildContext } from '../build-context.ts';
import { eventEnvelopeStage, eventKeyStage } from '../input/events.ts';
import type { ProcessorSpec } from '../spec.ts';
import { stepOutputs, stepStages } from '../steps/index.ts';
import { correlateProcessor } from './correlate.ts';
import { loadSagaModule } from './definition.ts';
import { flowSaga } from './flow.ts';
import { sagaProcessor, type SagaOptions } from './processor.ts';

export async function buildSagaSpecs(b: BuildContext, p: SagaProcessorDecl): Promise<ProcessorSpec[]> {
  const t = b.loaded.topology;
  const definition = p.module ? await loadSagaModule(b.loaded.baseDir, p) : flowSaga(p);
  const aliases = Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands];
  const commandTopics = new Map<string, string>();
  for (const alias of aliases) {
    const name = t.topics[alias]!.name;
    commandTopics.set(alias, name);
    commandTopics.set(name, name);
  }
  const log = p.output.log === undefined ? undefined : t.topics[p.output.log]!.name;
  const options: SagaOptions = {
    name: p.name,
    definition,
    commandTopics,
    defaultCommandTopic: t.topics[aliases[0]!]!.name,
    log,
    deadlines: p.deadlines,
    errorPolicy: p.onError.policy,
    endedRetentionMs: p.endedRetentionMs,
    maxClockSkewMs: t.processing.maxClockSkewMs,
  };
  const outputs = new Set([...commandTopics.values(), ...(log ? [log] : [])]);
  const admission = [eventEnvelopeStage, eventKeyStage, ...b.eventStages(p, true), ...stepStages(p.steps, p.name)];
  const routed = [...b.outputNames(stepOutputs(p.steps))];

  if (p.correlate === undefined) {
    return [
      {
        ...b.common(p),
        inputs: b.inputs(p),
        requireKey: true,
        stages: admission,
        outputs: new Set([...outputs, ...routed]),
        create: () => sagaProcessor(options),
      },
    ];
  }
  const repartition = repartitionTopic(t.app, p.name);
  const correlate = p.correlate;
  return [
    {
      ...b.common(p),
      inputs: b.inputs(p),
      requireKey: true,
      stages: admission,
      outputs: new Set([repartition, ...routed]),
      create: () => correlateProcessor({ saga: p.name, correlate, repartition }),
    },
    {
      ...b.common(p, stagesOf(p)[1]!),
      inputs: [{ topic: repartition, codec: 'json' }],
      requireKey: true,
      // the repartition topic is foldstream's, but anyone can write to it: envelopes are checked again
      stages: [eventEnvelopeStage],
      outputs,
      create: () => sagaProcessor(options),
    },
  ];
}
