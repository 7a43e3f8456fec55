/**
 * The orders workload's projection module (`type: projection` with `module:`, test/chaos/workloads/orders.ts): one
 * view per order of a tenant, from the events of the declarative `orders` aggregate, with ItemAdded read at
 * eventVersion 2 (the module upcaster item-added-v2.ts lifts the aggregate's v1). The verifier restates these rules on
 * its own (test/chaos/verify/model-orders.ts); keep the two in step.
 *
 *   OrderPlaced    → { tenant, order, customer, status: 'open', lines: 0, units: 0, total: 0, skus: [], version }
 *   ItemAdded v2   → lines + 1, units + quantity, total + unitPrice × quantity, sku appended to skus
 *   OrderShipped   → status 'shipped'
 *   RefundIssued   → refunded: amount
 *   OrderCancelled → null: the view is deleted (a tombstone); an order placed again starts a new one
 * Every view carries the aggregateVersion of the event it last applied as `version`.
 */
import type { EventEnvelope } from '../../../src/serde/envelope.ts';

type View = Record<string, unknown>;

export const eventTypes = ['OrderPlaced', 'ItemAdded', 'OrderShipped', 'RefundIssued', 'OrderCancelled'];

export function project(view: View | undefined, event: EventEnvelope): View | null | undefined {
  const version = event.aggregateVersion;
  const d = event.data as Record<string, unknown>;
  switch (event.eventType) {
    case 'OrderPlaced':
      return { tenant: event.tenantId, order: event.aggregateId, customer: d.customer, status: 'open', lines: 0, units: 0, total: 0, skus: [], version };
    case 'ItemAdded': {
      // a v1 event that skipped the upcaster has no unitPrice or quantity: refuse it rather than count it as 0
      if (!Number.isSafeInteger(d.unitPrice) || !Number.isSafeInteger(d.quantity)) throw new Error(`ItemAdded v${event.eventVersion} without unitPrice and quantity`);
      const v = view ?? {};
      const [unitPrice, quantity] = [d.unitPrice as number, d.quantity as number];
      return {
        ...v,
        lines: ((v.lines as number) ?? 0) + 1,
        units: ((v.units as number) ?? 0) + quantity,
        total: ((v.total as number) ?? 0) + unitPrice * quantity,
        skus: [...((v.skus as string[]) ?? []), d.sku],
        version,
      };
    }
    case 'OrderShipped':
      return { ...view, status: 'shipped', version };
    case 'RefundIssued':
      return { ...view, refunded: d.amount, version };
    case 'OrderCancelled':
      return null;
    default:
      return undefined;
  }
}
