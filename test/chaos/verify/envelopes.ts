/**
 * Which input records the processors must refuse, and why, from docs/wire-formats.md and DESIGN §6-§8 (not from
 * code). Checked in this order:
 *
 *   commands                                              events
 *   key + value > maxRecordBytes  RECORD_TOO_LARGE        same
 *   null key                      KEY_MISSING             same
 *   not UTF-8 JSON (or empty)     DESERIALIZATION_FAILED  same
 *   envelope: an object with commandId, commandType,      envelope: eventId, eventType, aggregateType, aggregateId,
 *     aggregateId non-empty strings, data an object,        timestamp non-empty strings, eventVersion and
 *     expectedVersion absent/null or an integer ≥ 0,       aggregateVersion integers ≥ 1, data an object, userId,
 *     userId, timestamp, correlationId, tenantId           correlationId, causationId, tenantId absent/null or
 *     absent/null or strings; under tenant partitioning     strings                        ENVELOPE_INVALID
 *     a tenantId (non-empty)     ENVELOPE_INVALID
 *   key ≠ aggregateId, or under tenant partitioning       key ≠ tenantId:aggregateId when the event has a tenantId,
 *     ≠ tenantId:aggregateId     KEY_MISMATCH              else aggregateId              KEY_MISMATCH
 *                                                         eventVersion above the processor's maximum for the type
 *                                                         (after upcasting)               EVENT_VERSION_UNSUPPORTED
 * A null value decodes to null, which is not an envelope (ENVELOPE_INVALID). What a processor refuses after this
 * (unknown event types, a failing step) is its workload model's to say.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import type { Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';

export type Obj = Record<string, unknown>;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;
const optString = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const intAtLeast = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

function decodeRecord(r: VRecord, maxRecordBytes: number): Verdict<unknown> {
  const size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (size > maxRecordBytes) return { bad: 'RECORD_TOO_LARGE', why: `${size} bytes` };
  if (r.key === null) return { bad: 'KEY_MISSING', why: 'null key' };
  if (r.value === null) return { good: null };
  try {
    return { good: JSON.parse(utf8.decode(r.value)) };
  } catch (e) {
    return { bad: 'DESERIALIZATION_FAILED', why: (e as Error).message };
  }
}

export interface Command {
  commandId: string;
  commandType: string;
  aggregateId: string;
  expectedVersion?: number | null;
  userId?: string | null;
  timestamp?: string | null;
  correlationId?: string | null;
  tenantId?: string | null;
  data: Obj;
}

/** `tenant`: the aggregate is partitioned by tenant (commands need a tenantId; keys are tenantId:aggregateId). */
export function classifyCommand(r: VRecord, maxRecordBytes: number, tenant = false): Verdict<Command> {
  const d = decodeRecord(r, maxRecordBytes);
  if ('bad' in d) return d;
  const c = d.good;
  const invalid = (why: string) => ({ bad: 'ENVELOPE_INVALID', why });
  if (!isObj(c)) return invalid('not an object');
  if (!nonEmpty(c.commandId) || !nonEmpty(c.commandType) || !nonEmpty(c.aggregateId)) return invalid('commandId, commandType, aggregateId');
  if (!(c.expectedVersion === undefined || c.expectedVersion === null || intAtLeast(c.expectedVersion, 0))) return invalid('expectedVersion');
  if (![c.userId, c.timestamp, c.correlationId, c.tenantId].every(optString)) return invalid('optional strings');
  if (!isObj(c.data)) return invalid('data');
  if (tenant && !nonEmpty(c.tenantId)) return invalid('no tenantId');
  const key = tenant ? `${c.tenantId as string}:${c.aggregateId as string}` : c.aggregateId;
  if (r.key!.toString('utf8') !== key) return { bad: 'KEY_MISMATCH', why: `key ≠ ${tenant ? 'tenantId:aggregateId' : 'aggregateId'}` };
  return { good: c as unknown as Command };
}

export interface Event {
  eventId: string;
  eventType: string;
  eventVersion: number;
  aggregateType: string;
  aggregateId: string;
  aggregateVersion: number;
  timestamp: string;
  userId?: string;
  correlationId?: string;
  causationId?: string;
  tenantId?: string | null;
  data: Obj;
}

/**
 * An event as a projection admits it, up to its version check; `maxEventVersion`: the newest eventVersion per type
 * after upcasting (a type not listed has no limit).
 */
export function classifyEvent(r: VRecord, maxRecordBytes: number, maxEventVersion: Map<string, number>): Verdict<Event> {
  const d = decodeRecord(r, maxRecordBytes);
  if ('bad' in d) return d;
  const e = d.good;
  const invalid = (why: string) => ({ bad: 'ENVELOPE_INVALID', why });
  if (!isObj(e)) return invalid('not an object');
  if (![e.eventId, e.eventType, e.aggregateType, e.aggregateId, e.timestamp].every(nonEmpty)) return invalid('required strings');
  if (!intAtLeast(e.eventVersion, 1) || !intAtLeast(e.aggregateVersion, 1)) return invalid('versions');
  if (![e.userId, e.correlationId, e.causationId, e.tenantId].every(optString)) return invalid('optional strings');
  if (!isObj(e.data)) return invalid('data');
  const key = e.tenantId ? `${e.tenantId as string}:${e.aggregateId as string}` : e.aggregateId;
  if (r.key!.toString('utf8') !== key) return { bad: 'KEY_MISMATCH', why: `key ≠ ${e.tenantId ? 'tenantId:aggregateId' : 'aggregateId'}` };
  const type = e.eventType as string;
  const max = maxEventVersion.get(type);
  if (max !== undefined && (e.eventVersion as number) > max) return { bad: 'EVENT_VERSION_UNSUPPORTED', why: `${type} v${String(e.eventVersion)}` };
  return { good: e as unknown as Event };
}
