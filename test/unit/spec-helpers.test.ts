// The given/when/then helpers fail loudly and usefully: a wrong expectation throws an AssertionError (any test runner
// shows it) whose message names the processor, the command or view, what happened instead, and a YAML diff.
import test from 'ava';
import { AssertionError } from 'node:assert';
import { join } from 'node:path';
import { aggregateSpec, projectionSpec, sagaSpec, SpecAssertionError } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';

const topology = join(ROOT, 'topology.yaml');
const users = aggregateSpec({ topology, processor: 'users', aggregateId: 'u1' });
const userView = projectionSpec({ topology, processor: 'user-view' });
const created = { type: 'UserCreated', eventVersion: 2, data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } };
const updateEmail = { commandType: 'UpdateEmail', data: { email: 'b@x.example' } };

/** The message of the error a failing spec throws, checking it is an AssertionError. */
async function failure(t: { fail(m: string): void }, run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof AssertionError) || !(e instanceof SpecAssertionError)) throw e;
    return e.message;
  }
  t.fail('the spec passed');
  return '';
}

test('wrong events: the message names the command and shows the differing field as a diff', async (t) => {
  const message = await failure(t, () =>
    users.given(created).when(updateEmail).thenEvents([{ type: 'EmailChanged', data: { oldEmail: 'ann@x.example', newEmail: 'c@x.example' } }]),
  );
  t.is(
    message,
    ['users: UpdateEmail u1: the events differ', '- expected', '+ actual', '  - type: EmailChanged', '    data:', '      oldEmail: ann@x.example', '-     newEmail: c@x.example', '+     newEmail: b@x.example'].join('\n'),
  );
});

test('events expected from a command that was rejected: the message gives the rejection', async (t) => {
  const message = await failure(t, () => users.given(created).when({ commandType: 'CreateUser', data: { email: 'x@x.example' } }).thenEvents([created]));
  t.regex(message, /^users: CreateUser u1: expected it accepted with events \["UserCreated"\], but it was rejected \(USER_EXISTS\): user u1 already exists\n/);
});

test('a wrong rejection code: the diff shows the code the decider gave', async (t) => {
  const message = await failure(t, () => users.given(created).when({ commandType: 'CreateUser', data: { email: 'x@x.example' } }).thenRejected({ code: 'USER_GONE' }));
  t.is(message, ['users: CreateUser u1: rejected, but not as expected', '- expected', '+ actual', '- code: USER_GONE', '+ code: USER_EXISTS'].join('\n'));
});

test('a rejection expected where the command was accepted: the message lists the events it caused', async (t) => {
  const message = await failure(t, () => users.given(created).when(updateEmail).thenRejected());
  t.regex(message, /^users: UpdateEmail u1: expected a rejection, but it was accepted with events \[EmailChanged\]/);
});

test('a conflict expected where expectedVersion was current: the message says it was accepted', async (t) => {
  const message = await failure(t, () => users.given(created).when({ ...updateEmail, expectedVersion: 1 }).thenConflict());
  t.regex(message, /^users: UpdateEmail u1: expected a conflict, but it was accepted\n- expected\n\+ actual\n- status: conflict\n\+ status: accepted/);
  const noVersion = await failure(t, () => users.given(created).when(updateEmail).thenConflict());
  t.regex(noVersion, /expected a conflict \(the command has no expectedVersion\)/);
});

test('a conflict at another version: the diff shows the version', async (t) => {
  const message = await failure(t, () => users.given(created).when({ ...updateEmail, expectedVersion: 0 }).thenConflict({ aggregateVersion: 3 }));
  t.regex(message, /expected a conflict, but at another version\n[^]*- aggregateVersion: 3\n\+ aggregateVersion: 1/);
});

test('a wrong state: the diff shows the field, and the message says when the command was not accepted', async (t) => {
  const message = await failure(t, () =>
    users.given(created).when({ commandType: 'UpgradeStatus', data: { status: 'GOLD' } }).thenState({ exists: true, email: 'ann@x.example', fullName: 'Ann', status: 'SILVER' }),
  );
  t.regex(message, /^users: UpgradeStatus u1: the state differs\n[^]*- status: SILVER\n\+ status: GOLD$/);
  const rejected = await failure(t, () => users.given(created).when({ commandType: 'UpgradeStatus', data: { status: 'BRONZE' } }).thenState({ status: 'BRONZE' }));
  t.regex(rejected, /the state differs \(the command was rejected: unknown status "BRONZE"/);
});

test('a command that goes to the dead-letter topic: the message gives its code instead of a reply', async (t) => {
  const message = await failure(t, () => users.when({ commandType: 'CreateUser', data: { email: 'a@x.example', blob: 'x'.repeat(1_100_000) } }).thenEvents([]));
  t.regex(message, /^users: CreateUser u1 got no reply: it went to the dead-letter topic as RECORD_TOO_LARGE: record is \d+ bytes/);
});

test('a wrong view: the diff shows the differing field, and events that went to the dead-letter topic are listed', async (t) => {
  const message = await failure(t, () =>
    userView
      .given(
        { eventType: 'UserCreated', aggregateId: 'u1', eventVersion: 2, data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } },
        { eventType: 'StatusUpgraded', aggregateId: 'u1', eventVersion: 5, data: { status: 'GOLD' } },
      )
      .thenView('u1', { id: 'u1', email: 'ann@x.example', fullName: 'Ann', status: 'GOLD', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', statusHistory: ['GOLD'] }),
  );
  t.regex(message, /^user-view: the view of "u1" differs\n1 event\(s\) went to the dead-letter topic:\n {2}EVENT_VERSION_UNSUPPORTED \(u1\): StatusUpgraded has eventVersion 5/);
  t.regex(message, /- status: GOLD\n\+ status: ACTIVE\n[^]*- statusHistory:\n-\s+- GOLD/);
});

test('a view expected where there is none: the diff shows null', async (t) => {
  const message = await failure(t, () => userView.given().thenView('u9', { id: 'u9' }));
  t.is(message, ['user-view: the view of "u9" differs', '- expected', '+ actual', '- id: u9', '+ null'].join('\n'));
});

test('a passing spec resolves to its outcome: reply, events, version and state', async (t) => {
  const o = await users.given(created).when(updateEmail).thenEvents([{ type: 'EmailChanged', data: { oldEmail: 'ann@x.example', newEmail: 'b@x.example' } }]);
  t.like(o, { reply: { status: 'accepted', aggregateVersion: 2 }, version: 2, state: { email: 'b@x.example' } });
  t.is(o.events[0]?.causationId, o.command.commandId);
});

// sagaSpec: the saga alone (no aggregate answers its commands), given events it has seen, when an event or time
const fulfilment = sagaSpec({ topology: join(ROOT, 'examples/orders/topology.yaml'), processor: 'order-fulfilment' });
const placed = { eventType: 'OrderPlaced', aggregateType: 'Order', aggregateId: 'o1', data: { orderId: 'o1', sku: 'sku-1', quantity: 2, amount: 100 } };
const reserved = { eventType: 'StockReserved', aggregateType: 'Stock', aggregateId: 'sku-1', data: { orderId: 'o1', quantity: 2 } };

test('sagaSpec: each answer moves the saga one step on, and only that step\'s command goes out', async (t) => {
  await fulfilment.when(placed).thenCommands([{ commandType: 'ReserveStock', aggregateId: 'sku-1', data: { orderId: 'o1', quantity: 2 }, topic: 'inventory-commands' }]);
  const o = await fulfilment.given(placed).when(reserved).thenCommands([{ commandType: 'ChargePayment', aggregateId: 'o1', data: { amount: 100 } }]);
  t.deepEqual(o.log.map((e) => e.eventType), ['SagaStepCompleted']);
  await fulfilment.given(placed).when(reserved).thenStatus('running');
  t.like(o.sagas.get('o1')!.state, { step: 1, start: { eventType: 'OrderPlaced', aggregateId: 'o1', data: placed.data } });
});

test('sagaSpec: a declined payment releases the stock and cancels the order; a timeout compensates the step that timed out', async (t) => {
  const declined = { eventType: 'PaymentDeclined', aggregateType: 'Payment', aggregateId: 'o1', data: { orderId: 'o1', amount: 100 } };
  await fulfilment.given(placed, reserved).when(declined).thenCommands([
    { commandType: 'ReleaseStock', aggregateId: 'sku-1' },
    { commandType: 'CancelOrder', aggregateId: 'o1', data: { reason: 'PaymentDeclined at step "charge-payment"' } },
  ]);
  await fulfilment.given(placed, reserved).when(declined).thenLog(['SagaFailed', 'SagaCompensated']);
  await fulfilment.given(placed).whenTimeElapses(29_000).thenCommands([]);
  const o = await fulfilment.given(placed).whenTimeElapses(31_000).thenCommands([{ commandType: 'ReleaseStock' }, { commandType: 'CancelOrder' }]);
  t.like(o.sagas.get('o1'), { status: 'compensated' });
});

test('sagaSpec: a wrong expectation names the saga and the step, and shows the commands sent', async (t) => {
  const message = await failure(t, () => fulfilment.given(placed).when(reserved).thenCommands([{ commandType: 'ConfirmOrder' }]));
  t.regex(message, /order-fulfilment: StockReserved of sku-1: the commands sent differ/);
  t.regex(message, /ChargePayment/);
  const status = await failure(t, () => fulfilment.given(placed).when(reserved).thenStatus('completed'));
  t.regex(status, /the saga's status differs/);
  t.regex(status, /running/);
  const state = await failure(t, () => fulfilment.given(placed).when(reserved).thenState({ step: 2 }));
  t.regex(state, /the saga's state differs/);
});
