/**
 * Event ids are name-based UUIDs (RFC 4122 version 5) of the event's place in its stream — events topic, aggregate
 * type, aggregate key, aggregate version — so processing a command again after an aborted transaction yields the same
 * ids, and an id never names two events, even when aggregates of several types with the same ids share an events
 * topic (an order o1 and its payment o1). Readers should treat it as opaque.
 */
import { createHash } from 'node:crypto';

/** foldstream's own namespace for version-5 UUIDs (itself a random UUID). */
const NAMESPACE = Buffer.from('3b8f3c8e5d2a4f0e9c41a7d6b2e9f015', 'hex');

export function uuidV5(name: string): string {
  const b = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function eventId(eventsTopic: string, aggregateType: string, key: string, aggregateVersion: number): string {
  return uuidV5(`${eventsTopic}\u0000${aggregateType}\u0000${key}\u0000${aggregateVersion}`);
}
