/** foldstream/testing: run a topology with no broker, and given/when/then specs for aggregates, projections and sagas. */
export {
  TopologyTestDriver,
  type DriverOptions,
  type DriverStateAt,
  type EnvelopeOptions,
  type OutputRecord,
  type PipeOptions,
  type SinceOptions,
} from './topology-test-driver.ts';
export type { DeadLetter } from './dead-letters.ts';
export type { CommandInput, EventInput } from './envelopes.ts';
export { aggregateSpec, AggregateScenario, type AggregateOutcome, type AggregateSpec, type AggregateSpecOptions, type SpecCommand } from './aggregate-spec.ts';
export { projectionSpec, ProjectionScenario, type ProjectionOutcome, type ProjectionSpec, type ProjectionSpecOptions } from './projection-spec.ts';
export { sagaSpec, SagaScenario, type ExpectedCommand, type SagaOutcome, type SagaSpec, type SagaSpecOptions, type SentCommand } from './saga-spec.ts';
export { SpecAssertionError } from './diff.ts';
export type { SpecSource } from './spec-source.ts';
export { runTestFiles, type RunOptions, type RunSummary } from './yaml/run.ts';
