// The command gateway's parts with no broker: which aggregate a command type goes to, the envelope built from a
// request body (and the 400 messages), and the reply watcher finding replies from the offset noted before sending.
import test from 'ava';
import { commandFromBody, routeCommand, type GatewayAggregate } from '../../src/http/command-gateway.ts';
import { ReplyWatcher } from '../../src/http/reply-watcher.ts';
import type { FetchedRecord, PartitionReader } from '../../src/kafka/types.ts';
import type { AggregateInfo } from '../../src/processors/spec.ts';
import { memoryLogger } from '../helpers/log.ts';

const agg = (name: string, commandTypes: string[] | undefined, extra: Partial<AggregateInfo> = {}): GatewayAggregate => ({
  name,
  aggregate: {
    aggregateType: name.toUpperCase(),
    history: false,
    tenant: false,
    commandTypes,
    commandsTopic: `${name}-commands`,
    repliesTopic: `${name}-replies`,
    initialState: () => ({}),
    evolve: async (s) => s,
    upcasters: new Map(),
    ...extra,
  },
});

const status = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return { status: (e as { status: number }).status, error: (e as Error).message };
  }
  return undefined;
};

test('a command type goes to the declarative aggregate that declares it, else to the only module aggregate', (t) => {
  const all = [agg('orders', ['PlaceOrder']), agg('stock', ['Reserve']), agg('users', undefined)];
  t.is(routeCommand('Reserve', all, null).name, 'stock');
  t.is(routeCommand('CreateUser', all, null).name, 'users');
  t.is(routeCommand('CreateUser', [agg('users', undefined)], null).name, 'users');
});

test('?aggregate= chooses by processor name or aggregateType, and says what a declarative aggregate handles', (t) => {
  const all = [agg('orders', ['PlaceOrder']), agg('users', undefined)];
  t.is(routeCommand('Anything', all, 'users').name, 'users');
  t.is(routeCommand('PlaceOrder', all, 'ORDERS').name, 'orders');
  t.like(status(() => routeCommand('Cancel', all, 'orders')), { status: 400, error: 'aggregate "orders" handles no command Cancel; it handles PlaceOrder' });
  t.like(status(() => routeCommand('X', all, 'nope')), { status: 404 });
});

test('an ambiguous or unroutable command type is an answer that says to pass ?aggregate=', (t) => {
  t.like(status(() => routeCommand('A', [agg('one', ['A']), agg('two', ['A'])], null)), { status: 400, error: 'several aggregates declare command A: choose one with ?aggregate=<processor>' });
  t.regex(status(() => routeCommand('B', [agg('m1', undefined), agg('m2', undefined)], null))!.error, /\?aggregate=<processor>/);
  t.like(status(() => routeCommand('B', [agg('one', ['A'])], null)), { status: 404, error: 'no aggregate handles command B' });
});

test('the envelope carries the body\'s fields, a generated commandId and the time; the problems are named together', (t) => {
  const now = Date.parse('2026-11-27T10:00:00Z');
  const c = commandFromBody('CreateUser', { aggregateId: 'u1', data: { email: 'a@b' }, expectedVersion: 0, userId: 'admin', correlationId: 'corr' }, false, now);
  t.like(c, { commandType: 'CreateUser', aggregateId: 'u1', data: { email: 'a@b' }, expectedVersion: 0, userId: 'admin', correlationId: 'corr', timestamp: '2026-11-27T10:00:00.000Z' });
  t.regex(c.commandId, /^[0-9a-f-]{36}$/);
  t.is(commandFromBody('X', { aggregateId: 'u1', commandId: 'mine' }, false, now).commandId, 'mine');
  t.deepEqual(commandFromBody('X', { aggregateId: 'u1' }, false, now).data, {});
  t.like(status(() => commandFromBody('X', { aggregateId: '', expectedVersion: 1.5, extra: 1 }, false, now)), {
    status: 400,
    error:
      'command X: unknown field "extra" (allowed: aggregateId, data, expectedVersion, commandId, userId, correlationId, tenantId; command fields go in "data"); "aggregateId" must be a non-empty string, got string ""; "expectedVersion" must be an integer of at least 0 (0: the aggregate does not exist yet; leave it out for no check), got number 1.5',
  });
  // issue 14, defect 5: null was read as "no check", so a serialised nullable field turned the check off
  t.like(status(() => commandFromBody('X', { aggregateId: 'u1', expectedVersion: null }, false, now)), {
    status: 400,
    error: 'command X: "expectedVersion" must be an integer of at least 0 (0: the aggregate does not exist yet; leave it out for no check), got null',
  });
  t.like(status(() => commandFromBody('X', { aggregateId: 'u1' }, true, now)), { error: 'command X: missing field "tenantId" (the aggregate is partitioned by tenant)' });
  t.is(commandFromBody('X', { aggregateId: 'u1', tenantId: 't1' }, true, now).tenantId, 't1');
});

/**
 * A replies partition in memory; read() returns what is there from an offset, as the changelog reader does. Each
 * record is a commandId, or `key/commandId` (the key defaults to `a`).
 */
function fakeReader(records: string[]): PartitionReader & { reads: bigint[] } {
  const reads: bigint[] = [];
  return {
    reads,
    async read(topic, partition, from, onRecords) {
      reads.push(from);
      const out: FetchedRecord[] = records.slice(Number(from)).map((r, i) => {
        const [key, id] = r.includes('/') ? (r.split('/') as [string, string]) : ['a', r];
        return {
          topic,
          partition,
          offset: String(Number(from) + i),
          timestamp: 0,
          key: Buffer.from(key),
          value: Buffer.from(JSON.stringify({ commandId: id, status: 'accepted', aggregateId: key, aggregateVersion: i + 1, eventIds: [] })),
          headers: {},
        };
      });
      if (out.length) await onRecords(out);
      else await new Promise((r) => setTimeout(r, 5));
      return BigInt(Math.max(records.length, Number(from)));
    },
    async close() {},
  };
}

test('the reply watcher finds a reply at or after the offset noted before sending, even one its loop had passed', async (t) => {
  const reader = fakeReader(['c0', 'c1', 'c2']);
  const w = new ReplyWatcher(reader, 'replies', 'json', memoryLogger());
  t.teardown(() => w.close());
  // the second sender's waiter registers first, from offset 2; the first sender noted offset 1
  t.like(await w.wait('a', 'c2', 0, 2n, 1000), { commandId: 'c2' });
  t.like(await w.wait('a', 'c1', 0, 1n, 1000), { commandId: 'c1' });
  t.is(await w.wait('a', 'never', 0, 3n, 50), undefined);
});

// issue 14, defect 2: commandIds are per aggregate, so two aggregates of one partition may both have a command c1
test("the reply watcher gives a waiter the reply of its own aggregate's command, not another aggregate's with the same commandId", async (t) => {
  const w = new ReplyWatcher(fakeReader(['a/c1', 'b/c1']), 'replies', 'json', memoryLogger());
  t.teardown(() => w.close());
  t.like(await w.wait('b', 'c1', 0, 0n, 1000), { commandId: 'c1', aggregateId: 'b' });
  t.like(await w.wait('a', 'c1', 0, 0n, 1000), { commandId: 'c1', aggregateId: 'a' });
  t.is(await w.wait('c', 'c1', 0, 0n, 50), undefined);
});

test('a closed reply watcher answers every waiter at once with no reply', async (t) => {
  const w = new ReplyWatcher(fakeReader([]), 'replies', 'json', memoryLogger());
  const waiting = w.wait('a', 'c', 0, 0n, 60_000);
  await w.close();
  t.is(await waiting, undefined);
});

test('the reply watcher passes over records that are not replies, logs each once with its offset, and still finds the reply after them', async (t) => {
  const bad: Array<[string, Buffer | null]> = [
    ['not JSON', Buffer.from('{"commandId": "c1",')],
    ['no status', Buffer.from(JSON.stringify({ commandId: 'c1', aggregateId: 'a', aggregateVersion: 1, eventIds: [] }))],
    ['an unknown status', Buffer.from(JSON.stringify({ commandId: 'c1', status: 'maybe', aggregateId: 'a', aggregateVersion: 1, eventIds: [] }))],
    ['eventIds not strings', Buffer.from(JSON.stringify({ commandId: 'c1', status: 'accepted', aggregateId: 'a', aggregateVersion: 1, eventIds: [7] }))],
    ['a null value', null],
  ];
  const good = Buffer.from(JSON.stringify({ commandId: 'c1', status: 'rejected', code: 'NOPE', reason: 'no', aggregateId: 'a', aggregateVersion: 0, eventIds: [] }));
  const values = [...bad.map(([, v]) => v), good];
  let served = false;
  const reader: PartitionReader = {
    async read(_topic, partition, from, onRecords) {
      if (served) {
        await new Promise((r) => setTimeout(r, 5));
        return from;
      }
      served = true;
      await onRecords(values.map((value, i): FetchedRecord => ({ topic: 'replies', partition, offset: String(i), timestamp: 0, key: Buffer.from('a'), value, headers: {} })));
      return BigInt(values.length);
    },
    async close() {},
  };
  const log = memoryLogger();
  const w = new ReplyWatcher(reader, 'replies', 'json', log);
  t.teardown(() => w.close());
  t.like(await w.wait('a', 'c1', 0, 0n, 1000), { commandId: 'c1', status: 'rejected', code: 'NOPE' });
  const invalid = log.events('gateway.reply_invalid');
  t.deepEqual(invalid.map((e) => e.offset), ['0', '1', '2', '3', '4']);
  t.regex(String(invalid[1]!.error), /missing field "status"/);
  t.regex(String(invalid[2]!.error), /"status" must be one of accepted, rejected, conflict, got string "maybe"/);
  t.regex(String(invalid[3]!.error), /"eventIds" must be a list of strings/);
});
