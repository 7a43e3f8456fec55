/** Upcasting and the newest supported eventVersion, as stages before a processor (DESIGN §6). */
import { eventProblem, isPlainObject, type EventEnvelope } from '../../serde/envelope.ts';
import type { Stage } from '../spec.ts';
import { upcast, type Upcasters } from './upcasters.ts';

/** A custom processor's input may be anything; only what looks like an event is upcast or version-checked there. */
function looksLikeEvent(v: unknown): v is EventEnvelope {
  return isPlainObject(v) && typeof v.eventType === 'string' && Number.isSafeInteger(v.eventVersion) && isPlainObject(v.data);
}

/** `strict`: the input was validated as an envelope and must still be one after upcasting. */
export function upcastStage(upcasters: Upcasters, strict: boolean): Stage {
  return async (record, ctx) => {
    if (!looksLikeEvent(record.value)) return { record };
    let lifted = false;
    const event = await upcast(upcasters, record.value, (u) => {
      ctx.count('upcasts', { event_type: u.eventType, from_version: String(u.fromVersion), to_version: String(u.toVersion) });
      lifted = true;
    });
    if (!lifted) return { record };
    const problem = strict ? eventProblem(event) : undefined;
    if (problem) return { reject: { code: 'ENVELOPE_INVALID', message: `after upcasting: ${problem}` } };
    return { record: { ...record, value: event } };
  };
}

/** Newer events than a processor declares it understands go to the DLQ rather than being misread. */
export function eventVersionStage(maxEventVersion: Record<string, number>): Stage {
  return (record) => {
    const e = record.value;
    if (!looksLikeEvent(e)) return { record };
    const max = maxEventVersion[e.eventType];
    if (max === undefined || e.eventVersion <= max) return { record };
    return {
      reject: {
        code: 'EVENT_VERSION_UNSUPPORTED',
        message: `${e.eventType} has eventVersion ${e.eventVersion}; this processor supports up to ${max} (maxEventVersion), after upcasting`,
      },
    };
  };
}
