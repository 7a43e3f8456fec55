/**
 * The error catalogue. Every error foldstream raises has a stable `code` (documented in docs/errors.md, and a test
 * fails when a code is missing there), a message that says what was wrong and where, a `hint` that says what to do,
 * and, where there is one, the `cause`. `canRetry` tells the runtime whether retrying the same work can succeed.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'the topology file is not valid',
  MODULE_INVALID: 'a processor module could not be loaded or lacks an export',
  TOPIC_MISMATCH: 'a topic on the broker differs from its declaration',
  DESERIALIZATION_FAILED: 'a record could not be decoded',
  ENVELOPE_INVALID: 'a record decoded but is not a valid event or command envelope',
  KEY_MISSING: 'a record has a null key where one is required',
  KEY_MISMATCH: 'a record key differs from the key its envelope implies',
  RECORD_TOO_LARGE: 'a record is larger than processing.maxRecordBytes',
  EVENT_VERSION_UNSUPPORTED: 'an event is newer than the processor supports',
  EVENT_TYPE_UNKNOWN: 'an event type has no rule in the processor',
  HANDLER_FAILED: 'processor code threw an error that is not a domain error',
  DOMAIN_REJECTED: 'a command was rejected by the domain',
  CONCURRENCY_CONFLICT: "a command's expectedVersion differs from the aggregate's version",
  COMMAND_ID_REUSED: 'a commandId the aggregate has seen came with another command (type or data)',
  STORE_UNDECLARED: 'processor code asked for a store it did not declare',
  STORE_CORRUPT: 'a state store could not be opened or read',
  STORE_LOCKED: 'a state store is held open by another handle or process',
  CHANGELOG_TRANSACTION_OPEN: "a transaction without its markers lies beyond what a task's store could restore",
  OUTPUT_UNDECLARED: 'processor code forwarded to a topic that is not declared',
  PRODUCER_FENCED: 'another instance took over this task; this one stops working on it',
  GROUP_INSTANCE_FENCED: 'another live instance joined a consumer group with the same group.instance.id (static membership)',
  GENERATION_FENCED: "the consumer group moved to a new generation since the runner's transaction began; it is aborted",
  TRANSACTION_FAILED: 'a transaction could not be committed; the task is re-initialised',
  TASK_FAILED: 'a task stopped because its error policy is `fail`',
  KAFKA_UNAVAILABLE: 'the Kafka cluster could not be reached',
  WINDOW_RECORD_LATE: 'a record came after every window it belongs to had closed (a window processor with late: dlq)',
  JOIN_RECORD_LATE: 'a record of a stream-stream join came more than graceMs behind its stream time (a join with late: dlq)',
  KAFKA_AUTHENTICATION_FAILED: 'the broker (or the OAuth token endpoint) refused the credentials of the topology',
  KAFKA_AUTHORIZATION_FAILED: 'the broker refused an operation on a resource: an ACL is missing',
  HISTORY_INCOMPLETE: "an aggregate's events on its topic have a gap, so its history cannot be rebuilt",
  REPLAY_REFUSED: "a projection's views cannot be rebuilt by a selective replay",
  DLQ_REDRIVE_REFUSED: 'a dead letter cannot be sent back to its source topic without damaging data',
  REBUILD_UNSAFE: "an aggregate's stores and its events topic disagree, or a task's input position is unknown: a rebuild would lose or repeat work",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetails {
  hint?: string;
  cause?: unknown;
  canRetry?: boolean;
}

export class FoldstreamError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly canRetry: boolean;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FoldstreamError';
    this.code = code;
    this.hint = details.hint;
    this.canRetry = details.canRetry ?? false;
  }

  /** One line for logs and the CLI: what, where, and what to do. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}. ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

/** One problem in a topology file, pointing at the YAML node it is about. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** path in the document, e.g. processors[1].input */
  path: string;
  message: string;
  suggestion?: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.col}`;
  const at = p.path ? ` (${p.path})` : '';
  return `${where}${at} ${p.message}${p.suggestion ? `; ${p.suggestion}` : ''}`;
}

export class ConfigError extends FoldstreamError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const n = problems.length;
    super('CONFIG_INVALID', `${n} problem${n === 1 ? '' : 's'} in the topology:\n${problems.map(formatProblem).join('\n')}`, {
      hint: 'Fix each problem at the file:line:col shown; `foldstream validate <file>` checks without connecting to Kafka.',
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Thrown by domain code (aggregate `decide`) to reject a command: becomes a `rejected` reply, never a retry. */
export class DomainError extends Error {
  readonly code: string;
  constructor(message: string, code = 'DOMAIN_REJECTED') {
    super(message);
    this.name = 'DomainError';
    this.code = code;
  }
}

export function isDomainError(e: unknown): e is DomainError {
  return e instanceof DomainError || (e instanceof Error && e.name === 'DomainError');
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
