/**
 * `type: window`: windowed aggregations by event time (docs/windows.md). Keyed by the record key, one runtime
 * processor; with `key`, two: the first re-keys through the repartition topic, the `<processor>-windows` stage keeps
 * the windows.
 */
import { repartitionTopic, stagesOf } from '../../topology/names.ts';
import type { WindowProcessorDecl } from '../../topology/schema.ts';
import type { BuildContext } from '../build-context.ts';
import { eventEnvelopeStage } from '../input/events.ts';
import { viewInputStage } from '../input/views.ts';
import type { ProcessorSpec, Stage, WindowInfo } from '../spec.ts';
import { stepOutputs, stepStages } from '../steps/index.ts';
import { windowKind, type WindowKind, type WindowSpan } from './kinds.ts';
import { windowProcessor } from './processor.ts';
import { declarativeReducer, moduleReducer } from './reducer.ts';
import { windowBounds, type Bounds } from './store-keys.ts';
import { eventTimeOf, eventTypeStage, rekeyProcessor, repartitionedStage, timeStage } from './stages.ts';

export { timeWindowsFor, windowKind, type WindowKind, type WindowSpan } from './kinds.ts';
export { windowResult, type StoredWindow } from './processor.ts';
export { isWindowKeyOf, STREAM_TIME_KEY, windowBounds } from './store-keys.ts';

/**
 * The window keys of `key` a query for windows with time in [from, to] scans (one range: a key's windows sort by
 * position), and whether a stored window really has time in it (docs/http-api.md).
 */
export function windowQuery(kind: WindowKind, key: string, from: number, to: number): { bounds: Bounds; overlaps(w: WindowSpan): boolean } {
  const length = kind.maxLengthMs;
  // time windows and sessions sort by start, sliding windows by end
  const bounds =
    kind.kind === 'sliding'
      ? windowBounds(key, from, to + length!)
      : windowBounds(key, length === undefined ? 0 : Math.max(0, from - length + 1), to);
  const exclusiveEnd = kind.kind === 'tumbling' || kind.kind === 'hopping';
  return { bounds, overlaps: (w) => w.start <= to && (exclusiveEnd ? w.end > from : w.end >= from) };
}

export async function buildWindowSpecs(b: BuildContext, p: WindowProcessorDecl): Promise<ProcessorSpec[]> {
  const t = b.loaded.topology;
  const kind = windowKind(p.window);
  const reducer = p.module ? await moduleReducer(b.loaded.baseDir, p) : declarativeReducer(p);
  const output = p.output === undefined ? undefined : t.topics[p.output]!.name;
  const routed = [...b.outputNames(stepOutputs(p.steps))];
  const admission: Stage[] = p.inputFormat === 'view' ? [viewInputStage] : [eventEnvelopeStage, ...b.eventStages(p, true)];
  const filter = [...stepStages(p.steps, p.name), ...(p.eventTypes ? [eventTypeStage(p.eventTypes)] : [])];
  const stages = stagesOf(p);
  const windowStage = stages.at(-1)!;
  const window: WindowInfo = { processor: p.name, kind, result: (w) => ({ ...reducer.result(w.aggregate) }) };
  const windows: Omit<ProcessorSpec, 'inputs' | 'stages'> = {
    ...b.common(p, windowStage),
    requireKey: true,
    outputs: new Set([...(output === undefined ? [] : [output]), ...(p.key === undefined ? routed : [])]),
    window,
    create: () => windowProcessor({ spec: p.window, kind, reducer, emit: p.emit, output, eventTime: eventTimeOf(p.time) }),
  };
  const timed = timeStage({ processor: windowStage.name, time: p.time, kind, late: p.late });
  if (p.key === undefined) return [{ ...windows, inputs: b.inputs(p), stages: [...admission, ...filter, timed] }];

  const repartition = repartitionTopic(t.app, p.name);
  const key = p.key;
  return [
    {
      ...b.common(p),
      inputs: b.inputs(p),
      requireKey: true,
      stages: [...admission, ...filter],
      outputs: new Set([repartition, ...routed]),
      create: () => rekeyProcessor({ processor: p.name, key, repartition }),
    },
    { ...windows, inputs: [{ topic: repartition, codec: 'json' }], stages: [repartitionedStage, timed] },
  ];
}
