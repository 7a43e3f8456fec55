/**
 * The orders workload's upcaster module (`upcasters: [{ eventType: ItemAdded, fromVersion: 1, toVersion: 2, module }]`):
 * ItemAdded v1 { sku, price } becomes v2 { sku, unitPrice: price, quantity: 1 }. The aggregate writes v1; both
 * projections of the workload read v2, so every item they count went through here.
 */
import type { EventEnvelope } from '../../../src/serde/envelope.ts';

export function upcast(event: EventEnvelope): EventEnvelope {
  const { price, ...rest } = event.data as Record<string, unknown>;
  return { ...event, data: { ...rest, unitPrice: price, quantity: 1 } };
}
