/** Classifies kafkajs errors for the runtime: is this fencing, a rebalance, or worth retrying? */

interface KafkaJsLike {
  type?: string;
  name?: string;
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
    cur = k.cause ?? k.originalError;
  }
  return out;
}

const FENCING = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
const REBALANCE = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/** Another producer with our transactional id has a newer epoch: this instance no longer owns the task. */
export function isFencingError(e: unknown): boolean {
  return errorTypes(e).some((t) => FENCING.has(t));
}

export function isRebalanceError(e: unknown): boolean {
  return errorTypes(e).some((t) => REBALANCE.has(t));
}
