/** `type: projection`: events in, a read model out (docs/projections.md); with groupBy, two runtime processors. */
import { replays, replayTopic, repartitionTopic, stagesOf } from '../../topology/names.ts';
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import type { BuildContext } from '../build-context.ts';
import { eventEnvelopeStage, eventKeyStage } from '../input/events.ts';
import { viewInputStage } from '../input/views.ts';
import type { ProcessorSpec, Stage } from '../spec.ts';
import { stepOutputs, stepStages } from '../steps/index.ts';
import { compileGroupBy, groupChangeStage } from './group-by.ts';
import { groupProcessor } from './group-stage.ts';
import { projectionProcessor } from './processor.ts';
import { loadProjector } from './projector.ts';
import { rulesProjector } from './rules.ts';
import { unknownEventStage } from './unknown-events.ts';
import { replayAwareStages } from './replay.ts';

export async function buildProjectionSpecs(b: BuildContext, p: ProjectionProcessorDecl): Promise<ProcessorSpec[]> {
  const t = b.loaded.topology;
  const projector = p.module ? await loadProjector(b.loaded.baseDir, p) : rulesProjector(p);
  const groupBy = p.groupBy ? compileGroupBy(p.groupBy, p.name) : undefined;
  const repartition = repartitionTopic(t.app, p.name);
  const output = t.topics[p.output]!.name;

  const admission: Stage[] = p.inputFormat === 'view' ? [viewInputStage] : [eventEnvelopeStage, eventKeyStage, ...b.eventStages(p, true)];
  const known = projector.eventTypes ? [unknownEventStage(projector.eventTypes, p.unknownEvents, p.name)] : [];
  const steps = stepStages(p.steps, p.name);
  const routed = [...b.outputNames(stepOutputs(p.steps))];

  // a projection of events also reads its replay topic (projection/replay.ts), with the codec of its events
  const replay = replays(p) ? replayTopic(t.app, p.name) : undefined;
  const inputs = b.inputs(p);
  const stages = [...admission, ...steps, ...known];
  const first: ProcessorSpec = {
    ...b.common(p),
    inputs: replay ? [...inputs, { topic: replay, codec: inputs[0]!.codec }] : inputs,
    requireKey: true,
    stages: replay ? replayAwareStages(stages, replay) : stages,
    outputs: new Set([groupBy ? repartition : output, ...routed, ...(replay ? [replay] : [])]),
    create: () => projectionProcessor({ projector, output: groupBy ? repartition : output, groupBy, replayTopic: replay }),
  };
  if (!groupBy) return [first];
  const second: ProcessorSpec = {
    ...b.common(p, stagesOf(p)[1]!),
    inputs: [{ topic: repartition, codec: 'json' }],
    requireKey: true,
    stages: [groupChangeStage],
    outputs: new Set([output]),
    create: () => groupProcessor({ groupBy, output }),
  };
  return [first, second];
}
