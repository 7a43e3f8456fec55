/**
 * `type: join` (docs/joins.md): stream-table, table-table, stream-stream within a time window, and foreign-key
 * table-table joins. A join by key reads both sides in one runtime processor (co-partitioned, checked by validation);
 * a stream-table join with `key:` re-keys the events through the repartition topic first (as windows do), and a
 * foreign-key join runs two stages that talk through a subscription (repartition) topic and a response topic.
 */
import { repartitionTopic, responseTopic, stagesOf } from '../../topology/names.ts';
import type { JoinProcessorDecl } from '../../topology/schema.ts';
import type { BuildContext } from '../build-context.ts';
import { eventEnvelopeStage } from '../input/events.ts';
import type { ProcessorSpec, Stage } from '../spec.ts';
import { stepOutputs, stepStages } from '../steps/index.ts';
import { eventTimeOf } from '../window/stages.ts';
import { combiner, foreignKeyLeft, foreignKeySubscriptions, isResponse, isSubscription, streamStreamJoin, streamTableJoin, tableTableJoin } from './processors.ts';
import { eventTypeStage, internalRecordStage, joinTimeStage, onTopics, rekeyProcessor } from './stages.ts';

export async function buildJoinSpecs(b: BuildContext, p: JoinProcessorDecl): Promise<ProcessorSpec[]> {
  const t = b.loaded.topology;
  const leftAlias = Array.isArray(p.input) ? p.input[0]! : p.input;
  const left = t.topics[leftAlias]!;
  const right = t.topics[p.right]!;
  const output = t.topics[p.output]!.name;
  const combine = combiner(p.name, p.select);
  const steps = stepStages(p.steps, p.name);
  const events = (types: string[] | undefined): Stage[] => [eventEnvelopeStage, ...b.eventStages(p, true), ...eventTypeStage(types)];
  const stages = stagesOf(p);
  const common = { requireKey: true, outputs: new Set([output]) };
  // route steps (stream sides only) forward to their targets from the stage the steps run in
  const routed = [...b.outputNames(stepOutputs(p.steps))];
  const input = (d: typeof left) => ({ topic: d.name, codec: d.codec });

  switch (p.kind) {
    case 'stream-table': {
      const leftStages = onTopics(new Set([left.name]), [...events(p.eventTypes?.left), ...steps]);
      const create = () => streamTableJoin({ table: right.name, mode: p.join, output, combine });
      if (p.key === undefined) return [{ ...b.common(p), ...common, outputs: new Set([output, ...routed]), inputs: [input(left), input(right)], stages: [leftStages], create }];
      const repartition = repartitionTopic(t.app, p.name);
      const rekeyed = internalRecordStage(repartition, 'repartition', (v) => v !== null && typeof v === 'object');
      return [
        {
          ...b.common(p),
          requireKey: false, // the events are re-keyed: their own keys do not matter
          inputs: [input(left)],
          stages: [leftStages],
          outputs: new Set([repartition, ...routed]),
          create: () => rekeyProcessor({ processor: p.name, key: p.key!, repartition }),
        },
        { ...b.common(p, stages[1]), ...common, inputs: [{ topic: repartition, codec: 'json' }, input(right)], stages: [rekeyed], create },
      ];
    }
    case 'table-table':
      return [{ ...b.common(p), ...common, inputs: [input(left), input(right)], stages: [], create: () => tableTableJoin({ right: right.name, mode: p.join, output, combine }) }];
    case 'stream-stream': {
      const w = p.window!;
      const leftStages = onTopics(new Set([left.name]), [...events(p.eventTypes?.left), ...steps]);
      const rightStages = onTopics(new Set([right.name]), [...events(p.eventTypes?.right), ...steps]);
      return [
        {
          ...b.common(p),
          ...common,
          outputs: new Set([output, ...routed]),
          inputs: [input(left), input(right)],
          stages: [leftStages, rightStages, joinTimeStage({ processor: p.name, time: p.time ?? 'event', graceMs: w.graceMs, late: p.late ?? 'drop' })],
          create: () => streamStreamJoin({ right: right.name, mode: p.join, beforeMs: w.beforeMs, afterMs: w.afterMs, graceMs: w.graceMs, output, combine, timeOf: eventTimeOf(p.time ?? 'event') }),
        },
      ];
    }
    case 'foreign-key': {
      const subscriptions = repartitionTopic(t.app, p.name);
      const responses = responseTopic(t.app, p.name);
      return [
        {
          ...b.common(p),
          ...common,
          inputs: [input(left), { topic: responses, codec: 'json' }],
          stages: [internalRecordStage(responses, 'response', isResponse)],
          outputs: new Set([output, subscriptions]),
          create: () => foreignKeyLeft({ processor: p.name, foreignKey: p.foreignKey!, mode: p.join, output, subscriptions, responses, combine }),
        },
        {
          ...b.common(p, stages[1]),
          requireKey: true,
          inputs: [{ topic: subscriptions, codec: 'json' }, input(right)],
          stages: [internalRecordStage(subscriptions, 'subscription', isSubscription)],
          outputs: new Set([responses]),
          create: () => foreignKeySubscriptions({ right: right.name, responses }),
        },
      ];
    }
  }
}
