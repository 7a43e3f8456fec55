/**
 * The `commands` store of an aggregate (docs/wire-formats.md): the reply to every command it handled, so that a retry
 * gets its first reply and has no second effect. A commandId is one aggregate's: the key is the aggregate's key and the
 * commandId, so the same id sent to another aggregate is another command (whether two ids collide never depends on
 * which aggregates share a partition), and the value carries a fingerprint of the command, so the same id sent to the
 * same aggregate with another command is told apart from a retry.
 *
 * Stores written before this layout keyed the reply by the bare commandId and had no fingerprint. They are read as
 * they are: such an entry answers a command with its id only when it is this aggregate's (its aggregateId, and when
 * the reply names events, the id of its last event, which derives from the aggregate's key); it cannot tell a retry
 * from a reuse, so it answers as a retry, as the old code did. New entries are never written in the old layout, and
 * the old ones leave with the retention.
 */
import { createHash } from 'node:crypto';
import type { CommandEnvelope, Reply } from '../../serde/envelope.ts';

/** Value of the `commands` store: the reply as sent, and (since the per-aggregate layout) the command's fingerprint. */
export type RememberedReply = Reply & { fingerprint?: string };

/** Value of the `command-expiry` index: the `commands` key and the wall-clock time it was handled (old stores: the commandId). */
export type CommandExpiry = string | { key: string; handledAt: number };

/** Key of a command in the `commands` store: JSON `[aggregate key, commandId]`, which no two pairs share. */
export const rememberedKey = (aggregateKey: string, commandId: string) => JSON.stringify([aggregateKey, commandId]);

/** Whether a `commands` key is of the old layout (a bare commandId), not a `[aggregate key, commandId]` pair. */
export function isLegacyKey(key: string): boolean {
  if (!key.startsWith('["')) return true;
  try {
    const v: unknown = JSON.parse(key);
    return !(Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string');
  } catch {
    return true;
  }
}

/**
 * What makes a command the same command again: its type and its data (key order aside, as a client that re-encodes a
 * retry may reorder fields). Not its timestamp, userId or correlationId, which a retry may carry anew (the command
 * gateway stamps the time of each POST), nor its expectedVersion (a retry carries the one it first carried).
 */
export function fingerprint(c: CommandEnvelope): string {
  return createHash('sha256').update(canonical([c.commandType, c.data])).digest('base64url').slice(0, 22);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Date)) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

/** The reply as it was sent (without what the store keeps beside it). */
export function sentReply(r: RememberedReply): Reply {
  const { fingerprint: _, ...reply } = r;
  return reply;
}
