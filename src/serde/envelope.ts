/**
 * The event, command and reply envelopes of DESIGN §6 and docs/wire-formats.md, and their validation on read: a
 * record that decodes but lacks a field or has one of the wrong type is bad input (ENVELOPE_INVALID), named precisely
 * so that whoever produced it can fix it. Unknown fields are kept: readers ignore what they do not know.
 */

export type Data = Record<string, unknown>;

export interface EventEnvelope<D = Data> {
  eventId: string;
  eventType: string;
  eventVersion: number;
  aggregateType: string;
  aggregateId: string;
  aggregateVersion: number;
  /** ISO-8601 */
  timestamp: string;
  userId?: string;
  correlationId?: string;
  causationId?: string;
  /** present under tenant partitioning; the record key is then `tenantId:aggregateId` */
  tenantId?: string;
  data: D;
}

export interface CommandEnvelope<D = Data> {
  commandId: string;
  commandType: string;
  aggregateId: string;
  /** the version the sender last saw; 0 for an aggregate that does not exist yet */
  expectedVersion?: number;
  userId?: string;
  timestamp?: string;
  correlationId?: string;
  tenantId?: string;
  data: D;
}

export type ReplyStatus = 'accepted' | 'rejected' | 'conflict';

export interface Reply {
  commandId: string;
  status: ReplyStatus;
  /** why a command was rejected or conflicted */
  reason?: string;
  /** DomainError code of a rejection, CONCURRENCY_CONFLICT of a conflict */
  code?: string;
  aggregateId: string;
  /** the aggregate's version after the command (unchanged unless accepted with events) */
  aggregateVersion: number;
  eventIds: string[];
}

type Rule = 'string' | 'string?' | 'version' | 'expectedVersion' | 'count' | 'object' | 'status' | 'strings' | 'time?';

const EVENT_FIELDS: [string, Rule][] = [
  ['eventId', 'string'],
  ['eventType', 'string'],
  ['eventVersion', 'version'],
  ['aggregateType', 'string'],
  ['aggregateId', 'string'],
  ['aggregateVersion', 'version'],
  ['timestamp', 'string'],
  ['userId', 'string?'],
  ['correlationId', 'string?'],
  ['causationId', 'string?'],
  ['tenantId', 'string?'],
  ['data', 'object'],
];

const COMMAND_FIELDS: [string, Rule][] = [
  ['commandId', 'string'],
  ['commandType', 'string'],
  ['aggregateId', 'string'],
  ['expectedVersion', 'expectedVersion'],
  ['userId', 'string?'],
  ['timestamp', 'time?'],
  ['correlationId', 'string?'],
  ['tenantId', 'string?'],
  ['data', 'object'],
];

const REPLY_FIELDS: [string, Rule][] = [
  ['commandId', 'string'],
  ['status', 'status'],
  ['aggregateId', 'string'],
  ['aggregateVersion', 'count'],
  ['eventIds', 'strings'],
  ['reason', 'string?'],
  ['code', 'string?'],
];

const REPLY_STATUSES: readonly string[] = ['accepted', 'rejected', 'conflict'] satisfies ReplyStatus[];

export function isPlainObject(v: unknown): v is Data {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (typeof v === 'object') return 'an object';
  // JSON has no Infinity or NaN (a JSON 1e400 parses to Infinity) and would print them as null
  if (typeof v === 'number' && !Number.isFinite(v)) return `number ${String(v)}`;
  return `${typeof v} ${JSON.stringify(v)}`.slice(0, 80);
}

/**
 * An ISO-8601 date-time with its offset (`Z` or `±hh:mm`): what events carry as their `timestamp`. A date alone, a
 * local time without an offset (whose meaning depends on the reader's zone) or anything else Date.parse happens to
 * read ("yesterday" is NaN, "1 Jan 2026" is not) is refused.
 */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/** Whether a string is an ISO-8601 date-time with an offset that denotes a real time. */
export function isIsoDateTime(v: string): boolean {
  if (!ISO_DATE_TIME.test(v) || !Number.isFinite(Date.parse(v))) return false;
  // Date.parse rolls 2026-02-30 over into March: the calendar date must exist as written
  const [y, m, d] = v.slice(0, 10).split('-').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

function fieldProblem(value: Data, field: string, rule: Rule): string | undefined {
  const v = value[field];
  // expectedVersion null must not turn optimistic concurrency off unnoticed: a field left out is "no check", a null
  // (a serialised nullable field) is a mistake
  if (rule === 'expectedVersion' && v === null) return `"${field}" must be an integer of at least 0 (leave the field out for no version check), got null`;
  const optional = rule.endsWith('?') || rule === 'expectedVersion';
  // JSON producers often write null for "not set"
  if (optional && (v === undefined || v === null)) return undefined;
  if (v === undefined) return `missing field "${field}"`;
  switch (rule) {
    case 'string':
    case 'string?':
      return typeof v === 'string' && (optional || v.length > 0) ? undefined : `"${field}" must be a non-empty string, got ${describeValue(v)}`;
    case 'version':
      return Number.isSafeInteger(v) && (v as number) >= 1 ? undefined : `"${field}" must be an integer of at least 1, got ${describeValue(v)}`;
    case 'expectedVersion':
    case 'count':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : `"${field}" must be an integer of at least 0, got ${describeValue(v)}`;
    case 'object':
      return isPlainObject(v) ? undefined : `"${field}" must be an object, got ${describeValue(v)}`;
    case 'status':
      return REPLY_STATUSES.includes(v as string) ? undefined : `"${field}" must be one of ${REPLY_STATUSES.join(', ')}, got ${describeValue(v)}`;
    case 'strings':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : `"${field}" must be a list of strings, got ${describeValue(v)}`;
    case 'time?':
      return typeof v === 'string' && isIsoDateTime(v)
        ? undefined
        : `"${field}" must be an ISO-8601 date-time with an offset, such as "2026-01-01T12:00:00.000Z" (or be left out: the record's time), got ${describeValue(v)}`;
  }
}

function check(what: string, value: unknown, fields: [string, Rule][]): string | undefined {
  if (!isPlainObject(value)) return `${what} must be an object, got ${describeValue(value)}`;
  const problems = fields.flatMap(([f, rule]) => fieldProblem(value, f, rule) ?? []);
  return problems.length ? `${what}: ${problems.join('; ')}` : undefined;
}

/** Why a decoded value is not an event envelope, or undefined when it is one. */
export function eventProblem(value: unknown): string | undefined {
  return check('event envelope', value, EVENT_FIELDS);
}

/** Why a decoded value is not a command envelope, or undefined when it is one. */
export function commandProblem(value: unknown): string | undefined {
  return check('command envelope', value, COMMAND_FIELDS);
}

/** Why a decoded value is not a reply, or undefined when it is one. */
export function replyProblem(value: unknown): string | undefined {
  return check('reply', value, REPLY_FIELDS);
}

/** The record key an aggregate's records carry (DESIGN §6): `tenantId:aggregateId` when there is a tenant. */
export function aggregateKey(aggregateId: string, tenantId: string | undefined | null): string {
  return tenantId ? `${tenantId}:${aggregateId}` : aggregateId;
}
