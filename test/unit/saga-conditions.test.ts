// Regression (issue 14, defect 10): a flow step completed (or failed) on any correlated event of its type, whatever
// aggregate it came from — a deposit to an unrelated account carrying a transfer's id completed the transfer. A
// `completeOn` / `failOn` entry now takes a `when:` condition over { sagaId, start, event, state }; the orders example
// uses it so that only the aggregate a step's command went to can answer it.
import test from 'ava';
import { join } from 'node:path';
import { sagaSpec, TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';

const fulfilment = sagaSpec({ topology: join(ROOT, 'examples/orders/topology.yaml'), processor: 'order-fulfilment' });
const placed = { eventType: 'OrderPlaced', aggregateType: 'Order', aggregateId: 'o1', data: { orderId: 'o1', sku: 'sku-1', quantity: 2, amount: 100 } };
const reserved = (sku: string) => ({ eventType: 'StockReserved', aggregateType: 'Stock', aggregateId: sku, data: { orderId: 'o1', quantity: 2 } });
const unavailable = (sku: string) => ({ eventType: 'StockUnavailable', aggregateType: 'Stock', aggregateId: sku, data: { orderId: 'o1', quantity: 2, available: 0 } });
const charged = (payment: string) => ({ eventType: 'PaymentCharged', aggregateType: 'Payment', aggregateId: payment, data: { orderId: 'o1', amount: 100 } });

test('an answer from another aggregate carrying the saga id does not complete the step; the one from the right aggregate does', async (t) => {
  // the spec's then* throw a diff when the saga did otherwise
  await t.notThrowsAsync(fulfilment.given(placed).when(reserved('sku-other')).thenCommands([]));
  await t.notThrowsAsync(fulfilment.given(placed, reserved('sku-other')).when(reserved('sku-1')).thenCommands([{ commandType: 'ChargePayment', aggregateId: 'o1' }]));
  await t.notThrowsAsync(fulfilment.given(placed, reserved('sku-1')).when(charged('someone-else')).thenCommands([]));
  await t.notThrowsAsync(fulfilment.given(placed, reserved('sku-1'), charged('someone-else')).when(charged('o1')).thenCommands([{ commandType: 'ConfirmOrder', aggregateId: 'o1' }]));
});

test('a failure from another aggregate does not fail the saga', async (t) => {
  await t.notThrowsAsync(fulfilment.given(placed).when(unavailable('sku-other')).thenStatus('running'));
  await t.notThrowsAsync(fulfilment.given(placed).when(unavailable('sku-1')).thenStatus('failed'));
});

test('a `when` that does not parse is reported by validate at its line and column', async (t) => {
  const d = TopologyTestDriver.fromYaml(
    `app: w
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: w-events, partitions: 1 }
  commands: { name: w-commands, partitions: 1 }
processors:
  - name: s
    type: saga
    input: events
    output: { commands: commands }
    startOn: Started
    flow:
      - name: a
        send: { type: A, aggregateId: sagaId }
        completeOn: [Done, { type: Aed, when: "event.(aggregateId" }]
`,
    ROOT,
  );
  const e = await t.throwsAsync(d);
  t.regex(e!.message, /topology\.yaml:15:\d+ \(processors\[0\]\.flow\[0\]\.completeOn\[1\]\.when\) JSONata expression "event\.\(aggregateId" does not parse/);
});
