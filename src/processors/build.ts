/**
 * Turns the processors of a validated topology into ProcessorSpecs the runtime and the test driver run. Each kind
 * contributes its stores, its stages in front of the processor, and a per-task factory. A projection with `groupBy`
 * and a saga with `correlate` become two specs (two runtime processors, each with its own consumer group and
 * transactions).
 */
import { assertNever } from '../topology/assert-never.ts';
import type { LoadedTopology } from '../topology/load.ts';
import type { CustomProcessorDecl } from '../topology/schema.ts';
import { buildAggregateSpec } from './aggregate/index.ts';
import { BuildContext } from './build-context.ts';
import { customProcessor, loadCustomModule } from './custom.ts';
import { buildProjectionSpecs } from './projection/index.ts';
import { buildSagaSpecs } from './saga/index.ts';
import { buildJoinSpecs } from './join/index.ts';
import { buildWindowSpecs } from './window/index.ts';
import type { ProcessorSpec } from './spec.ts';
import { stepOutputs, stepStages } from './steps/index.ts';

async function buildCustomSpec(b: BuildContext, p: CustomProcessorDecl): Promise<ProcessorSpec> {
  const m = await loadCustomModule(b.loaded.baseDir, p);
  const spec: ProcessorSpec = {
    ...b.common(p),
    inputs: b.inputs(p, p.codec),
    requireKey: false,
    stages: [...b.eventStages(p, false), ...stepStages(p.steps, p.name)],
    outputs: p.outputs.length ? b.outputNames([...p.outputs, ...stepOutputs(p.steps)]) : undefined,
    create: () => customProcessor(m),
  };
  if (p.punctuate && m.punctuate) spec.punctuate = { intervalMs: p.punctuate.intervalMs, type: p.punctuate.type, fn: m.punctuate };
  return spec;
}

export async function buildProcessorSpecs(loaded: LoadedTopology): Promise<ProcessorSpec[]> {
  const b = await BuildContext.create(loaded);
  const specs: ProcessorSpec[] = [];
  for (const p of loaded.topology.processors) {
    switch (p.type) {
      case 'custom':
        specs.push(await buildCustomSpec(b, p));
        break;
      case 'aggregate':
        specs.push(await buildAggregateSpec(b, p));
        break;
      case 'projection':
        specs.push(...(await buildProjectionSpecs(b, p)));
        break;
      case 'saga':
        specs.push(...(await buildSagaSpecs(b, p)));
        break;
      case 'window':
        specs.push(...(await buildWindowSpecs(b, p)));
        break;
      case 'join':
        specs.push(...(await buildJoinSpecs(b, p)));
        break;
      default:
        assertNever(p, 'processor type');
    }
  }
  return specs;
}
