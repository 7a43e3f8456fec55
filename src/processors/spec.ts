/**
 * A processor as the runtime and the test driver run it: built once from its topology declaration by
 * processors/build.ts, then instantiated per task. Kind-specific work before the processor (envelope checks,
 * upcasting, stateless steps) is a list of stages, so one record handler serves every kind.
 */
import type { ErrorCode } from '../errors.ts';
import type { CommandEnvelope, EventEnvelope } from '../serde/envelope.ts';
import type { Codec, RetryDecl } from '../topology/schema.ts';
import type { Upcasters } from './upcast/upcasters.ts';
import type { WindowKind } from './window/kinds.ts';
import type { StoredWindow } from './window/processor.ts';
import type { InputRecord, Processor, ProcessorContext, PunctuationType } from './types.ts';

export interface StoreSpec {
  name: string;
  /** changelog topic name, absent when the store is not changelogged */
  changelog: string | undefined;
  cacheSize: number;
}

/** Why a record goes to the dead-letter topic instead of the processor. */
export interface Rejection {
  code: ErrorCode;
  message: string;
}

export type StageResult = { record: InputRecord } | { drop: true; reason?: string } | { reject: Rejection };

/** Runs before the processor; may transform, drop (counted, not dead-lettered) or reject (dead-lettered) a record. */
export type Stage = (record: InputRecord, ctx: ProcessorContext) => StageResult | Promise<StageResult>;

export interface ErrorPolicy {
  policy: 'dlq' | 'fail' | 'skip';
  retry: RetryDecl;
}

/** What the query API and the command gateway need to know about an aggregate processor (docs/http-api.md). */
export interface AggregateInfo {
  aggregateType: string;
  /** keeps a `history` store: audit trail and state as of a time */
  history: boolean;
  /** keys are tenantId:aggregateId */
  tenant: boolean;
  /** command types it declares (declarative aggregates); undefined: a module decides which it handles */
  commandTypes: string[] | undefined;
  /** input (commands) topic name */
  commandsTopic: string;
  /** replies topic name, when it has one */
  repliesTopic: string | undefined;
  /** the decider's own initial state and evolve, to rebuild a state from the history */
  initialState(): unknown;
  evolve(state: unknown, event: EventEnvelope): Promise<unknown>;
  /** the topology's upcasters: the history keeps events at the version they were written with */
  upcasters: Upcasters;
}

/** What the query API needs to know about the stage of a window processor that keeps the windows (docs/http-api.md). */
export interface WindowInfo {
  /** the declared processor's name (the runtime name of a processor with `key` is `<processor>-windows`) */
  processor: string;
  kind: WindowKind;
  /** the aggregation fields of a stored window, as window results carry them */
  result(w: StoredWindow): Record<string, unknown>;
}

export interface ProcessorSpec {
  name: string;
  type: string;
  /** input topic names with their codecs */
  inputs: { topic: string; codec: Codec }[];
  /** whether a null key is a bad record (event and command processors) */
  requireKey: boolean;
  stages: Stage[];
  stores: StoreSpec[];
  /** topic names the processor may forward to; undefined allows any declared topic */
  outputs: Set<string> | undefined;
  errorPolicy: ErrorPolicy;
  dlqTopic: string;
  maxRecordBytes: number;
  /** processing.maxClockSkewMs: outputs are dated at most this far ahead of the wall clock (TaskContext) */
  maxClockSkewMs: number;
  /** module-level punctuation (custom processors) */
  punctuate?: { intervalMs: number; type: PunctuationType; fn: (timestamp: number, ctx: ProcessorContext) => void | Promise<void> };
  /**
   * Aggregates: appends events to an aggregate as if decide had returned them for `cause`, through the decider's
   * evolve (the TopologyTestDriver's given events). `now` stamps events of a cause with no timestamp.
   */
  appendEvents?: (ctx: ProcessorContext, cause: CommandEnvelope, drafts: unknown[], now: number) => Promise<EventEnvelope[]>;
  /** Aggregates: what the HTTP query API and command gateway use. */
  aggregate?: AggregateInfo;
  /** Window processors, the stage with the windows: what the HTTP query API uses. */
  window?: WindowInfo;
  create(partition: number): Processor;
}
