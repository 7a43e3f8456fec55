/**
 * Turns the processors of a validated topology into ProcessorSpecs the runtime and the test driver run.
 * Each kind contributes its stores, its stages in front of the processor, and a per-task factory.
 */
import type { LoadedTopology } from '../topology/load.ts';
import { changelogTopic, dlqTopic, inputsOf, storesOf } from '../topology/names.ts';
import type { ProcessorDecl, Topology } from '../topology/schema.ts';
import { customProcessor, loadCustomModule } from './custom.ts';
import type { ErrorPolicy, ProcessorSpec, StoreSpec } from './spec.ts';

function storeSpecs(t: Topology, p: ProcessorDecl): StoreSpec[] {
  return storesOf(t, p).map((s) => ({
    name: s.name,
    changelog: s.changelog ? changelogTopic(t.app, p.name, s.name) : undefined,
    cacheSize: s.cacheSize,
  }));
}

function errorPolicy(t: Topology, p: ProcessorDecl): ErrorPolicy {
  return { policy: p.onError.policy, retry: p.onError.retry ?? t.processing.retry };
}

function inputs(t: Topology, p: ProcessorDecl, codecOverride?: ProcessorSpec['inputs'][number]['codec']): ProcessorSpec['inputs'] {
  return inputsOf(p).map((alias) => {
    const d = t.topics[alias]!;
    return { topic: d.name, codec: codecOverride ?? d.codec };
  });
}

export async function buildProcessorSpecs(loaded: LoadedTopology): Promise<ProcessorSpec[]> {
  const t = loaded.topology;
  const specs: ProcessorSpec[] = [];
  for (const p of t.processors) {
    const common = {
      name: p.name,
      type: p.type,
      stores: storeSpecs(t, p),
      errorPolicy: errorPolicy(t, p),
      dlqTopic: dlqTopic(t.app, p.name),
      maxRecordBytes: t.processing.maxRecordBytes,
    };
    switch (p.type) {
      case 'custom': {
        const m = await loadCustomModule(loaded.baseDir, p);
        const spec: ProcessorSpec = {
          ...common,
          inputs: inputs(t, p, p.codec),
          requireKey: false,
          stages: [],
          outputs: p.outputs.length ? new Set(p.outputs.map((a) => t.topics[a]!.name)) : undefined,
          create: () => customProcessor(m),
        };
        if (p.punctuate && m.punctuate) spec.punctuate = { intervalMs: p.punctuate.intervalMs, type: p.punctuate.type, fn: m.punctuate };
        specs.push(spec);
        break;
      }
      case 'aggregate':
      case 'projection':
        throw new Error(`processor kind ${p.type} is built by the event-sourcing processors (not yet wired)`);
    }
  }
  return specs;
}
