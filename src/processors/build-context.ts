/** What every kind's builder needs from the topology: names, stores, inputs, outputs and the shared upcasters. */
import { changelogTopic, dlqTopic, inputsOf, stagesOf, storesOf, type ProcessorStage } from '../topology/names.ts';
import type { LoadedTopology } from '../topology/load.ts';
import type { Codec, ProcessorDecl } from '../topology/schema.ts';
import type { ProcessorSpec, Stage } from './spec.ts';
import { eventVersionStage, upcastStage } from './upcast/stages.ts';
import { loadUpcasters, type Upcasters } from './upcast/upcasters.ts';

type CommonSpec = Pick<ProcessorSpec, 'name' | 'type' | 'stores' | 'errorPolicy' | 'dlqTopic' | 'maxRecordBytes' | 'maxClockSkewMs'>;

export class BuildContext {
  private constructor(
    readonly loaded: LoadedTopology,
    readonly upcasters: Upcasters,
  ) {}

  static async create(loaded: LoadedTopology): Promise<BuildContext> {
    return new BuildContext(loaded, await loadUpcasters(loaded));
  }

  /** Name, stores, error policy and DLQ of one stage of a processor (the first by default). */
  common(p: ProcessorDecl, stage: ProcessorStage = stagesOf(p)[0]!): CommonSpec {
    const t = this.loaded.topology;
    return {
      name: stage.name,
      type: p.type,
      stores: storesOf(t, p, stage).map((s) => ({
        name: s.name,
        changelog: s.changelog ? changelogTopic(t.app, stage.name, s.name) : undefined,
        cacheSize: s.cacheSize,
      })),
      errorPolicy: { policy: p.onError.policy, retry: p.onError.retry ?? t.processing.retry },
      dlqTopic: dlqTopic(t.app, stage.name),
      maxRecordBytes: t.processing.maxRecordBytes,
      maxClockSkewMs: t.processing.maxClockSkewMs,
    };
  }

  inputs(p: ProcessorDecl, codec?: Codec): ProcessorSpec['inputs'] {
    return inputsOf(p).map((alias) => {
      const d = this.loaded.topology.topics[alias]!;
      return { topic: d.name, codec: codec ?? d.codec };
    });
  }

  outputNames(aliases: string[]): Set<string> {
    return new Set(aliases.map((a) => this.loaded.topology.topics[a]!.name));
  }

  /**
   * Upcasting, then the newest supported eventVersion. `strict`: the input is known to be event envelopes (checked
   * before); otherwise (custom processors) only values that look like events are touched.
   */
  eventStages(p: ProcessorDecl, strict: boolean): Stage[] {
    const stages: Stage[] = [];
    if (this.upcasters.size) stages.push(upcastStage(this.upcasters, strict));
    if (Object.keys(p.maxEventVersion).length) stages.push(eventVersionStage(p.maxEventVersion));
    return stages;
  }
}
