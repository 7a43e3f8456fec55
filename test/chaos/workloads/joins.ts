/**
 * The windows-and-joins workload: customers' OrderPlaced events on one topic and their PaymentCharged events on
 * another, both keyed by customer (the aggregate). Two processors, both declared in YAML:
 *   - `spend`: a window processor over the orders: per customer and hour (tumbling, graceMs 10 minutes, retention two
 *     days), the orders counted and their amounts summed, every update sent (`emit: update`); an order dated more
 *     than the grace behind the partition's stream time is late and dead-lettered (`late: dlq`).
 *   - `paid`: a stream-stream join of the orders with the payments of the same customer within ten minutes after the
 *     order (graceMs two days: nothing is late, whichever topic a task reads ahead after a kill), each pair once.
 * Bad records go to the orders topic, which both read: each processor must dead-letter them with their reasons.
 * Three kinds of the corpus are not bad for these processors, by design: neither checks that the key is the
 * aggregateId (a key-mismatch record is windowed and joined under its record key), neither has a maximum eventVersion
 * (too-new-version), and both ignore an unknown event type (counted, not dead-lettered). Those records are marked
 * `chaos.unusual: <kind>` instead of `chaos.bad`, so the verifier's cross-check expects them processed (or ignored),
 * not dead-lettered. The verifier's model is test/chaos/verify/model-joins.ts.
 */
import { BAD_KIND_HEADER, envelopeSpoilable, json, spoil, type BadKind } from '../corpus.ts';

/** Header of a record of a corpus kind that windows and joins accept (see above). */
export const UNUSUAL_KIND_HEADER = 'chaos.unusual';
const ACCEPTED: ReadonlySet<BadKind> = new Set(['key-mismatch', 'too-new-version', 'unknown-type']);
import type { Rng } from '../rng.ts';
import { processingYaml, topicYaml, type GenRecord, type TopologyParams, type Workload } from './workload.ts';

export const joinsTopics = (app: string) => ({
  orders: `${app}-orders`,
  payments: `${app}-payments`,
  spend: `${app}-spend-hourly`,
  paid: `${app}-orders-paid`,
});

/** Event times: deterministic, so a re-run of the same seed writes the same bytes. */
export const JOINS_BASE_TIME = Date.UTC(2026, 10, 27);
/** Event time between two consecutive records of the generator. */
const STEP_MS = 2000;
const MIN = 60_000;

export const joinsWorkload: Workload = {
  name: 'joins',
  inputTopics: (app) => [
    { alias: 'orders', name: joinsTopics(app).orders, config: { 'retention.ms': '-1' } },
    { alias: 'payments', name: joinsTopics(app).payments, config: { 'retention.ms': '-1' } },
  ],
  processors: (app) => [
    { processor: 'spend', inputs: [joinsTopics(app).orders] },
    { processor: 'paid', inputs: [joinsTopics(app).orders, joinsTopics(app).payments] },
  ],
  topologyYaml(p: TopologyParams): string {
    const t = joinsTopics(p.app);
    return `app: ${p.app}
kafka: { brokers: "${p.brokers.join(',')}", clientId: ${p.app} }
${processingYaml(p)}http: { port: 0, host: 127.0.0.1 }
topics:
${topicYaml('orders', t.orders, p, { 'retention.ms': '-1' })}${topicYaml('payments', t.payments, p, { 'retention.ms': '-1' })}${topicYaml('spend', t.spend, p)}${topicYaml('paid', t.paid, p)}processors:
  - name: spend
    type: window
    input: orders
    eventTypes: [OrderPlaced]
    window: { kind: tumbling, sizeMs: 3600000, graceMs: 600000, retentionMs: 172800000 }
    emit: update
    late: dlq
    aggregate: { orders: count, amount: { sum: data.amount } }
    output: spend
  - name: paid
    type: join
    kind: stream-stream
    input: orders
    right: payments
    eventTypes: { left: [OrderPlaced], right: [PaymentCharged] }
    window: { beforeMs: 0, afterMs: 600000, graceMs: 172800000 }
    select: { order: left.data.orderId, payment: right.data.paymentId, amount: right.data.amount }
    output: paid
`;
  },
  source(rng: Rng, opts) {
    let seq = 0;
    let badSeq = 0;
    const versions = new Map<string, number>();
    const lastOrder = new Map<string, { orderId: string; time: number }>();
    const customer = (i: number) => `cust-${String(i).padStart(5, '0')}`;
    const event = (eventType: string, key: string, time: number, data: Record<string, unknown>, aggregateType: string) => {
      const v = (versions.get(`${aggregateType}/${key}`) ?? 0) + 1;
      versions.set(`${aggregateType}/${key}`, v);
      return { eventId: `${eventType}-${seq}`, eventType, eventVersion: 1, aggregateType, aggregateId: key, aggregateVersion: v, timestamp: new Date(time).toISOString(), data };
    };
    return {
      good(): GenRecord {
        seq++;
        const key = customer(rng.int(opts.keys));
        const now = JOINS_BASE_TIME + seq * STEP_MS;
        const last = lastOrder.get(key);
        if (last && rng.chance(0.4)) {
          // a payment, mostly within ten minutes after the customer's last order, some before it or later
          const time = Math.max(JOINS_BASE_TIME, last.time + Math.floor(rng.between(-2 * MIN, 14 * MIN)));
          return { topic: 'payments', key, value: json(event('PaymentCharged', key, time, { paymentId: `p-${seq}`, orderId: last.orderId, amount: 1 + rng.int(500) }, 'Payment')) };
        }
        // mostly in order; some a few minutes behind; a few far behind (late for the window's grace of 10 minutes)
        const r = rng.next();
        const time = Math.max(JOINS_BASE_TIME, r < 0.8 ? now : r < 0.97 ? now - Math.floor(rng.between(0, 8 * MIN)) : now - Math.floor(rng.between(20 * MIN, 90 * MIN)));
        const orderId = `o-${seq}`;
        lastOrder.set(key, { orderId, time });
        return { topic: 'orders', key, value: json(event('OrderPlaced', key, time, { orderId, amount: 1 + rng.int(1000) }, 'Customer')) };
      },
      bad(kind: BadKind): GenRecord {
        const key = customer(rng.int(opts.keys));
        badSeq++;
        const tpl: Record<string, unknown> = {
          eventId: `bad-event-${badSeq}`,
          eventType: 'OrderPlaced',
          eventVersion: 1,
          aggregateType: 'Customer',
          aggregateId: key,
          aggregateVersion: 1,
          timestamp: new Date(JOINS_BASE_TIME + seq * STEP_MS).toISOString(),
          data: { orderId: `bad-${badSeq}`, amount: 5 },
        };
        const { key: k, value } = spoil(kind, envelopeSpoilable(key, tpl, true, 'OrderShipped'), rng, opts.maxRecordBytes);
        const header = ACCEPTED.has(kind) ? UNUSUAL_KIND_HEADER : BAD_KIND_HEADER;
        return { topic: 'orders', key: k, value, ...(k === null ? { partition: rng.int(1 << 30) } : {}), headers: { [header]: kind } };
      },
    };
  },
};
