/**
 * foldstream's public API: what module authors (deciders, projections, sagas, custom processors, upcasters, partitioners)
 * and embedders import. The test driver is `foldstream/testing`.
 */
export { App, type AppOptions } from './app/app.ts';
export { DomainError, FoldstreamError, ConfigError, ERROR_CODES, isDomainError, type ErrorCode, type ConfigProblem } from './errors.ts';
export type { CommandEnvelope, EventEnvelope, Reply, ReplyStatus } from './serde/envelope.ts';
export type { DeciderModule, DecideContext, EventDraft } from './processors/aggregate/decider.ts';
export type { PartitionFn } from './processors/aggregate/partitioning.ts';
export type { ProjectionModule, View } from './processors/projection/projector.ts';
export type { Deadline, SagaCommand, SagaInfo, SagaModule, SagaReaction, SagaStatus } from './processors/saga/definition.ts';
export type {
  Cancellable,
  CustomModule,
  ForwardOptions,
  Headers,
  InputRecord,
  KeyValueStore,
  Logger,
  Processor,
  ProcessorContext,
  PunctuationType,
  RangeOptions,
  RecordMeta,
} from './processors/types.ts';
export { loadTopology, parseTopology, type LoadedTopology } from './topology/load.ts';
export { topologyJsonSchema, type Topology } from './topology/schema.ts';
