/**
 * What happens to one input record, the same in the runtime and in the TopologyTestDriver (DESIGN §8):
 * size check → key check → decode → stages (envelope, upcast, steps) → processor, with retries and the error policy.
 * Bad input never throws out of here: it becomes a dead-letter record in the same transaction (with the original
 * bytes and headers saying why and where from), and processing continues. Only the `fail` policy stops the task, and
 * a store that cannot be read (STORE_CORRUPT) fails the task's transaction: the fault is the task's, not the record's,
 * so the task wipes the store, restores it from its changelog and processes the record again.
 */
import { FoldstreamError, errorMessage, isDomainError, type ErrorCode } from '../errors.ts';
import type { FetchedRecord, OutgoingRecord } from '../kafka/types.ts';
import type { ProcessorSpec, Rejection } from '../processors/spec.ts';
import type { Headers, InputRecord, Processor } from '../processors/types.ts';
import { DecodeError, decode } from '../serde/codecs.ts';
import type { TaskContext } from './task-context.ts';

export type Outcome = 'processed' | 'dropped' | 'dead_lettered' | 'skipped' | 'retried';

export interface HandlerObserver {
  outcome(outcome: Outcome, code?: ErrorCode): void;
}

/** The task must stop: its error policy is `fail`. */
export class TaskFailedError extends FoldstreamError {
  constructor(processor: string, record: FetchedRecord, cause: unknown) {
    super('TASK_FAILED', `processor "${processor}" failed on ${record.topic}/${record.partition}@${record.offset}: ${errorMessage(cause)}`, {
      hint: 'fix the handler or the record, then restart; or set onError.policy to dlq or skip',
      cause,
    });
  }
}

export const DLQ_HEADERS = {
  code: 'foldstream.error.code',
  message: 'foldstream.error.message',
  topic: 'foldstream.source.topic',
  partition: 'foldstream.source.partition',
  offset: 'foldstream.source.offset',
  timestamp: 'foldstream.source.timestamp',
  processor: 'foldstream.processor',
} as const;

const isPromiseLike = <T>(v: T | PromiseLike<T>): v is PromiseLike<T> => typeof (v as { then?: unknown } | null | undefined)?.then === 'function';

export function headersToStrings(h: FetchedRecord['headers']): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  return out;
}

export interface RecordHandlerOptions {
  spec: ProcessorSpec;
  processor: Processor;
  ctx: TaskContext;
  observer: HandlerObserver;
  /** waits between retries; the runtime heartbeats while it waits */
  sleep: (ms: number) => Promise<void>;
}

export class RecordHandler {
  private readonly codecs: Map<string, ProcessorSpec['inputs'][number]['codec']>;

  constructor(private readonly o: RecordHandlerOptions) {
    this.codecs = new Map(o.spec.inputs.map((i) => [i.topic, i.codec]));
  }

  /**
   * Handles one record into the task's pending outputs and store writes, with stream time advanced to the record's
   * timestamp (as in Kafka Streams, stream time counts the record being processed; the caller fires stream-time
   * punctuations after it). Throws only TaskFailedError and STORE_CORRUPT; then the record's work, its stream time
   * included, is not kept.
   */
  async handle(raw: FetchedRecord): Promise<Outcome> {
    const { spec, ctx } = this.o;
    const headers = headersToStrings(raw.headers);
    const streamTimeBefore = ctx.streamTime;
    if (raw.timestamp > ctx.streamTime) ctx.streamTime = raw.timestamp;
    ctx.record = { topic: raw.topic, partition: raw.partition, offset: raw.offset, timestamp: raw.timestamp, headers, key: raw.key ? raw.key.toString('utf8') : null };
    try {
      const size = (raw.key?.length ?? 0) + (raw.value?.length ?? 0);
      if (size > spec.maxRecordBytes) {
        return this.deadLetter(raw, { code: 'RECORD_TOO_LARGE', message: `record is ${size} bytes; processing.maxRecordBytes is ${spec.maxRecordBytes}` });
      }
      if (spec.requireKey && raw.key === null) {
        return this.deadLetter(raw, { code: 'KEY_MISSING', message: 'record has a null key; events and commands are keyed by aggregate id' });
      }
      let value: unknown;
      try {
        value = decode(this.codecs.get(raw.topic) ?? 'json', raw.value);
      } catch (e) {
        if (e instanceof DecodeError) return this.deadLetter(raw, { code: 'DESERIALIZATION_FAILED', message: e.message });
        throw e;
      }
      return await this.run(raw, { ...ctx.record, value });
    } catch (e) {
      ctx.streamTime = streamTimeBefore;
      throw e;
    } finally {
      ctx.record = undefined;
    }
  }

  private async run(raw: FetchedRecord, input: InputRecord): Promise<Outcome> {
    const { spec, ctx, processor } = this.o;
    const retry = spec.errorPolicy.retry;
    for (let attempt = 0; ; attempt++) {
      ctx.savepoint();
      try {
        let record = input;
        for (const stage of spec.stages) {
          // most stages (envelope checks, upcasting, plain-path steps) answer at once: no await for those
          const pending = stage(record, ctx);
          const r = isPromiseLike(pending) ? await pending : pending;
          if ('reject' in r) {
            ctx.rollback();
            return this.deadLetter(raw, r.reject);
          }
          if ('drop' in r) {
            ctx.release();
            this.o.observer.outcome('dropped');
            return 'dropped';
          }
          record = r.record;
        }
        const done = processor.process(record, ctx);
        if (isPromiseLike(done)) await done;
        ctx.release();
        this.o.observer.outcome('processed');
        return 'processed';
      } catch (e) {
        ctx.rollback();
        if (e instanceof FoldstreamError && e.code === 'STORE_CORRUPT') throw e;
        // Domain errors and configuration mistakes (an undeclared store or topic) fail the same way every time.
        const retriable = !isDomainError(e) && !(e instanceof FoldstreamError && !e.canRetry);
        if (retriable && attempt < retry.attempts) {
          this.o.observer.outcome('retried');
          await this.o.sleep(Math.min(retry.initialBackoffMs * 2 ** attempt, retry.maxBackoffMs));
          continue;
        }
        const code: ErrorCode = e instanceof FoldstreamError ? e.code : 'HANDLER_FAILED';
        switch (spec.errorPolicy.policy) {
          case 'fail':
            throw new TaskFailedError(spec.name, raw, e);
          case 'skip':
            ctx.log.warn({ event: 'record.skipped', processor: spec.name, topic: raw.topic, partition: raw.partition, offset: raw.offset, code, error: errorMessage(e) });
            this.o.observer.outcome('skipped', code);
            return 'skipped';
          case 'dlq':
            return this.deadLetter(raw, { code, message: `${errorMessage(e)} (after ${attempt + 1} attempt${attempt ? 's' : ''})` });
        }
      }
    }
  }

  private deadLetter(raw: FetchedRecord, why: Rejection): Outcome {
    const { spec, ctx } = this.o;
    const headers: Record<string, string | Buffer> = {};
    for (const [k, v] of Object.entries(raw.headers)) if (v !== undefined) headers[k] = v;
    Object.assign(headers, {
      [DLQ_HEADERS.code]: why.code,
      [DLQ_HEADERS.message]: why.message.slice(0, 2000),
      [DLQ_HEADERS.topic]: raw.topic,
      [DLQ_HEADERS.partition]: String(raw.partition),
      [DLQ_HEADERS.offset]: raw.offset,
      [DLQ_HEADERS.timestamp]: String(raw.timestamp),
      [DLQ_HEADERS.processor]: spec.name,
    });
    const rec: OutgoingRecord = { topic: spec.dlqTopic, partition: raw.partition, key: raw.key, value: raw.value, headers, timestamp: raw.timestamp };
    ctx.send(rec);
    ctx.log.warn({ event: 'record.dead_lettered', processor: spec.name, topic: raw.topic, partition: raw.partition, offset: raw.offset, code: why.code, reason: why.message });
    this.o.observer.outcome('dead_lettered', why.code);
    return 'dead_lettered';
  }
}
