/** Classifies kafkajs errors for the runtime: is this fencing, a rebalance, or worth retrying? */
import { retry } from './retry.ts';

interface KafkaJsLike {
  type?: string;
  name?: string;
  /** a protocol error code (kafkajs), a FoldstreamError's code, or a Node system error's (ECONNREFUSED) */
  code?: unknown;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/** All protocol error types in the chain (kafkajs wraps retried errors as causes). */
export function errorTypes(e: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 10; depth++) {
    const k = cur as KafkaJsLike;
    if (k.type) out.push(k.type);
    if (k.name) out.push(k.name);
    if (typeof k.code === 'string') out.push(k.code);
    cur = k.cause ?? k.originalError;
  }
  return out;
}

/** The first Kafka protocol error code in the chain (kafkajs names some codes differently from Kafka: use numbers). */
export function errorCode(e: unknown): number | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 10; depth++) {
    const k = cur as KafkaJsLike;
    if (typeof k.code === 'number') return k.code;
    cur = k.cause ?? k.originalError;
  }
  return undefined;
}

/**
 * 47 INVALID_PRODUCER_EPOCH, 49 INVALID_PRODUCER_ID_MAPPING, 90 PRODUCER_FENCED (unknown to kafkajs). Not 53
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED: that is a missing ACL, not another owner (authorizationDenied reports it).
 */
const FENCING_CODES = new Set([47, 49, 90]);
/** 14 COORDINATOR_LOAD_IN_PROGRESS, 15 COORDINATOR_NOT_AVAILABLE, 16 NOT_COORDINATOR */
export const COORDINATOR_CODES: ReadonlySet<number> = new Set([14, 15, 16]);

const CONNECTION = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSLockTimeout', 'KafkaJSNoBrokerAvailableError', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** The connection failed or a request timed out: whether the broker did what was asked is unknown. */
export function isConnectionError(e: unknown): boolean {
  return errorTypes(e).some((t) => CONNECTION.has(t));
}

/**
 * The request never left this process: the connection was refused or was not open when it was to be queued. Unlike
 * other connection errors, the broker certainly did not act on it.
 */
export function wasNotSent(e: unknown): boolean {
  if (errorTypes(e).includes('ECONNREFUSED')) return true;
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 10; depth++) {
    const k = cur as KafkaJsLike & { message?: string };
    if (k.name === 'KafkaJSConnectionError' && k.message === 'Not connected') return true;
    cur = k.cause ?? k.originalError;
  }
  return false;
}

const FENCING = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);
const REBALANCE = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/** Another producer with our transactional id has a newer epoch: this instance no longer owns the task. */
export function isFencingError(e: unknown): boolean {
  const code = errorCode(e);
  return (code !== undefined && FENCING_CODES.has(code)) || errorTypes(e).some((t) => FENCING.has(t));
}

const GENERATION_FENCING = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);
/** 22 ILLEGAL_GENERATION, 25 UNKNOWN_MEMBER_ID, 82 FENCED_INSTANCE_ID */
const GENERATION_FENCING_CODES = new Set([22, 25, 82]);

/** A generation-fenced TxnOffsetCommit (KIP-447): the group moved on since the transaction began. */
export function isGenerationFencingError(e: unknown): boolean {
  const code = errorCode(e);
  return (code !== undefined && GENERATION_FENCING_CODES.has(code)) || errorTypes(e).some((t) => GENERATION_FENCING.has(t));
}

export type DeniedResource = 'topic' | 'group' | 'transactionalId' | 'cluster';

const DENIED: Record<string, DeniedResource> = {
  TOPIC_AUTHORIZATION_FAILED: 'topic',
  GROUP_AUTHORIZATION_FAILED: 'group',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'transactionalId',
  CLUSTER_AUTHORIZATION_FAILED: 'cluster',
};

/** The kind of resource the broker refused for lack of an ACL, if that is what the error is. */
export function authorizationDenied(e: unknown): DeniedResource | undefined {
  for (const t of errorTypes(e)) if (DENIED[t]) return DENIED[t];
  return undefined;
}

export function isRebalanceError(e: unknown): boolean {
  return errorTypes(e).some((t) => REBALANCE.has(t));
}

/**
 * The group coordinator is moving, loading or not there yet (a fresh broker creates `__consumer_offsets` on first
 * use). kafkajs names codes 14-16 GROUP_LOAD_IN_PROGRESS, GROUP_COORDINATOR_NOT_AVAILABLE and
 * NOT_COORDINATOR_FOR_GROUP, but its transactional sendOffsets retries only COORDINATOR_LOAD_IN_PROGRESS,
 * COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR, so it gives up on exactly these errors: our callers retry them.
 */
const COORDINATOR = new Set(['NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'GROUP_LOAD_IN_PROGRESS']);

export function isCoordinatorError(e: unknown): boolean {
  return errorTypes(e).some((t) => COORDINATOR.has(t));
}

/** Runs `fn` again while it fails with a coordinator error, for up to `timeoutMs`. */
export function retryOnCoordinatorError<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  return retry(fn, { retriable: isCoordinatorError, timeoutMs, maxPauseMs: 2_000 });
}
