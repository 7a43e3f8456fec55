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

type Rule = 'string' | 'string?' | 'version' | 'version?' | 'count' | 'object' | 'status' | 'strings';

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
  ['expectedVersion', 'version?'],
  ['userId', 'string?'],
  ['timestamp', 'string?'],
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

function fieldProblem(value: Data, field: string, rule: Rule): string | undefined {
  const v = value[field];
  const optional = rule.endsWith('?');
  // JSON producers often write null for "not set"
  if (optional && (v === undefined || v === null)) return undefined;
  if (v === undefined) return `missing field "${field}"`;
  switch (rule) {
    case 'string':
    case 'string?':
      return typeof v === 'string' && (optional || v.length > 0) ? undefined : `"${field}" must be a non-empty string, got ${describeValue(v)}`;
    case 'version':
      return Number.isSafeInteger(v) && (v as number) >= 1 ? undefined : `"${field}" must be an integer of at least 1, got ${describeValue(v)}`;
    case 'version?':
    case 'count':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : `"${field}" must be an integer of at least 0, got ${describeValue(v)}`;
    case 'object':
      return isPlainObject(v) ? undefined : `"${field}" must be an object, got ${describeValue(v)}`;
    case 'status':
      return REPLY_STATUSES.includes(v as string) ? undefined : `"${field}" must be one of ${REPLY_STATUSES.join(', ')}, got ${describeValue(v)}`;
    case 'strings':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : `"${field}" must be a list of strings, got ${describeValue(v)}`;
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
