// Event-sourcing features through the runtime on the real broker, not only through the TopologyTestDriver: a
// declarative aggregate, tenant partitioning and a partitioner module, a module projection and a projection chained
// on it, filter/map/route steps, throwing handlers under the dlq, skip and fail policies, the history store and
// msgpack envelopes. Each test runs an App of its own (topology under test/fixtures/features/, every name derived
// from a unique app name), feeds it records with an ordinary producer, waits until the groups consumed them, and
// reads the outputs back with read_committed. The expected outputs come from hand-written models of the rules, not
// from foldstream; where the inputs are deterministic, the same inputs also go through the TopologyTestDriver,
// which must give the same records (per partition and key, in order) and the same stores.
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr, unpack } from 'msgpackr';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope as Envelope, Reply } from '../../src/serde/envelope.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { loadTopology, type LoadedTopology } from '../../src/topology/load.ts';
import { changelogTopic, dlqTopic, groupId, internalTopics } from '../../src/topology/names.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { changelogState, sortedObject } from '../helpers/counting-app.ts';
import { BROKERS, byKey, deleteTopics, kafka, readAll, unique, withAdmin, type ReadRecord, type Seen } from '../helpers/kafka.ts';
import { memoryLogger, type MemoryLogger } from '../helpers/log.ts';
import { metricValue, waitFor } from '../helpers/processes.ts';
import { prng } from '../helpers/prng.ts';
import { command, type Command } from '../helpers/user-model.ts';
import { readUntil, waitForConsumed } from '../helpers/users-app.ts';

const FEATURES = join(FIXTURES, 'features');

// ---------------------------------------------------------------------------------------------------------------
// Harness: an App per test, inputs produced (and piped into a driver), outputs read back and compared.

interface Feature {
  name: string;
  app: App;
  loaded: LoadedTopology;
  log: MemoryLogger;
  /** topic name of an alias */
  topic(alias: string): string;
  group(processor: string): string;
  dlq(processor: string): string;
  changelog(processor: string, store: string): string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** waits until the processor's group consumed every committed record of its input (alias) */
  consumed(processor: string, input: string): Promise<void>;
}

/** Runs `body` against a started App of the fixture topology; stops it and deletes its topics afterwards. */
async function withFeature(fixture: string, prefix: string, body: (f: Feature) => Promise<void>): Promise<void> {
  const name = unique(prefix);
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const loaded = loadTopology(join(FEATURES, fixture), { env: { ...process.env, APP: name, KAFKA_BROKERS: BROKERS.join(',') } });
  const t = loaded.topology;
  const log = memoryLogger();
  const app = new App(loaded, { log, stateDir: join(dir, 'state'), httpPort: 0 });
  const topic = (alias: string) => t.topics[alias]!.name;
  try {
    await app.start();
    await body({
      name,
      app,
      loaded,
      log,
      topic,
      group: (p) => groupId(name, p),
      dlq: (p) => dlqTopic(name, p),
      changelog: (p, s) => changelogTopic(name, p, s),
      metric: async (metric, labels = {}) => metricValue(await app.registry.metrics(), metric, labels),
      consumed: (p, input) => waitForConsumed(groupId(name, p), topic(input), 120_000),
    });
  } finally {
    await app.stop();
    await deleteTopics([...Object.values(t.topics).map((x) => x.name), ...internalTopics(t).map((x) => x.name)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Input {
  /** topic alias */
  topic: string;
  key: string | null;
  value: Buffer | null;
  timestamp: number;
  /** default: murmur2 of the key, as producers do */
  partition?: number;
  headers?: Record<string, string>;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Recent record times: the broker's time-based retention must not delete what the test reads back. */
const baseTime = () => Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

function partitionOf(loaded: LoadedTopology, r: Input): number {
  return r.partition ?? partitionForKey(r.key!, loaded.topology.topics[r.topic]!.partitions);
}

/** Produces the inputs in order with an idempotent (not transactional) producer, as any client would. */
async function produce(f: Feature, inputs: Input[]): Promise<void> {
  const producer = kafka('features-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < inputs.length; ) {
      const alias = inputs[i]!.topic;
      let j = i;
      while (j < inputs.length && inputs[j]!.topic === alias && j - i < 200) j++;
      const messages = inputs.slice(i, j).map((r) => ({
        key: r.key,
        value: r.value,
        partition: partitionOf(f.loaded, r),
        timestamp: String(r.timestamp),
        headers: r.headers ?? {},
      }));
      await producer.send({ topic: f.topic(alias), acks: -1, messages });
      i = j;
    }
  } finally {
    await producer.disconnect();
  }
}

/** The same inputs through the TopologyTestDriver. */
async function drive(loaded: LoadedTopology, inputs: Input[]): Promise<TopologyTestDriver> {
  // the driver's wall clock near the runtime's: stream time counts at most processing.maxClockSkewMs ahead of it
  const driver = await TopologyTestDriver.fromLoaded(loaded, { wallClock: Date.now() });
  for (const r of inputs) {
    await driver.pipe(r.topic, r.key, r.value, { raw: true, partition: partitionOf(loaded, r), timestamp: r.timestamp, headers: r.headers ?? {} });
  }
  return driver;
}

function codecOf(loaded: LoadedTopology, topic: string): string {
  const declared = Object.values(loaded.topology.topics).find((x) => x.name === topic);
  if (declared) return declared.codec;
  return internalTopics(loaded.topology).find((x) => x.name === topic)?.purpose === 'dlq' ? 'raw' : 'json';
}

function decodeValue(codec: string, bytes: Buffer | null): unknown {
  if (bytes === null) return null;
  if (codec === 'raw') return bytes.toString('base64');
  if (codec === 'msgpack') return unpack(bytes);
  return JSON.parse(bytes.toString('utf8'));
}

const inOrder = (records: ReadRecord[]) => [...records].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));

/** The records of one topic, in partition and offset order, decoded. */
function seen(loaded: LoadedTopology, records: ReadRecord[], topic: string): Seen[] {
  const codec = codecOf(loaded, topic);
  return inOrder(records.filter((r) => r.topic === topic)).map((r) => ({
    partition: r.partition,
    key: r.key,
    value: decodeValue(codec, r.value),
    headers: r.headers,
    timestamp: r.timestamp,
  }));
}

/** The driver wrote what the runtime wrote, on every given topic, and holds what every changelog says. */
async function driverAgrees(t: ExecutionContext, f: Feature, driver: TopologyTestDriver, runtime: ReadRecord[], topics: string[]): Promise<void> {
  for (const topic of topics) {
    const fromDriver = driver.output(topic).map((r) => ({
      partition: r.partition,
      key: r.key,
      value: Buffer.isBuffer(r.value) ? r.value.toString('base64') : r.value,
      headers: r.headers,
      timestamp: r.timestamp,
    }));
    t.deepEqual(byKey(fromDriver), byKey(seen(f.loaded, runtime, topic)), `driver and runtime agree on ${topic}`);
  }
  for (const it of internalTopics(f.loaded.topology).filter((x) => x.purpose === 'changelog')) {
    const processor = it.stage ? `${it.processor}-${it.stage}` : it.processor;
    // the command-expiry index notes the wall-clock time each command was handled, which differs by nature
    const comparable = (m: Map<string, unknown>) =>
      it.store === 'command-expiry' ? new Map([...m].map(([k, v]) => [k, v !== null && typeof v === 'object' ? { ...v, handledAt: 'a wall-clock time' } : v])) : m;
    const inDriver = sortedObject(comparable(await driver.store(processor, it.store!)));
    t.deepEqual(inDriver, sortedObject(comparable(await changelogState(it.name))), `driver and runtime agree on the store ${processor}.${it.store}`);
  }
}

/** A key whose murmur2 partition (of `partitions`) is `partition`. */
function keyIn(prefix: string, partition: number, partitions: number, taken: string[] = []): string {
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    if (partitionForKey(k, partitions) === partition && !taken.includes(k)) return k;
  }
}

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const VERSION = 'foldstream.view.version';

// ---------------------------------------------------------------------------------------------------------------
// 1, 2 (tenant), 3, 4, 5 (steps in front of an aggregate), 7, 8: accounts.yaml.

interface AccountState {
  open: boolean;
  balance: number;
  owner?: string;
}

interface Draft {
  eventType: string;
  eventVersion: number;
  data: Record<string, unknown>;
}

interface Decision {
  status: 'accepted' | 'rejected';
  code?: string;
  reason?: string;
  aggregateVersion: number;
  events: Draft[];
}

/** The rules of accounts.yaml, written again: per key (tenantId:aggregateId) the version and the state. */
class AccountModel {
  readonly accounts = new Map<string, { version: number; state: AccountState }>();
  private readonly decisions = new Map<string, Decision>();

  apply(key: string, c: Command): Decision {
    const earlier = this.decisions.get(c.commandId);
    if (earlier) return earlier;
    const d = this.decide(key, c);
    this.decisions.set(c.commandId, d);
    return d;
  }

  private decide(key: string, c: Command): Decision {
    const stored = this.accounts.get(key);
    const version = stored?.version ?? 0;
    const s: AccountState = stored?.state ?? { open: false, balance: 0 };
    const reject = (code: string, reason: string): Decision => ({ status: 'rejected', code, reason, aggregateVersion: version, events: [] });
    const data = c.data as { owner?: string; initial?: number; amount?: number };
    const events: Draft[] = [];
    switch (c.commandType) {
      case 'Open':
        if (s.open) return reject('ALREADY_OPEN', 'account is open already');
        // the map step upper-cases the owner before the aggregate sees the command
        events.push({ eventType: 'Opened', eventVersion: 1, data: { owner: data.owner!.toUpperCase() } });
        if ((data.initial ?? 0) > 0) events.push({ eventType: 'Deposited', eventVersion: 1, data: { amount: data.initial } });
        break;
      case 'Deposit':
        if (!s.open) return reject('NOT_OPEN', 'no such account');
        events.push({ eventType: 'Deposited', eventVersion: 1, data: { amount: data.amount } });
        break;
      case 'Withdraw':
        if (!s.open) return reject('NOT_OPEN', 'no such account');
        if (data.amount! > s.balance) return reject('INSUFFICIENT_FUNDS', 'insufficient funds');
        events.push({ eventType: 'Withdrawn', eventVersion: 2, data: { amount: data.amount, left: s.balance - data.amount! } });
        break;
      case 'Close':
        if (!s.open) return reject('NOT_OPEN', 'no such account');
        if (s.balance !== 0) return reject('NOT_EMPTY', 'the balance is not zero');
        events.push({ eventType: 'Closed', eventVersion: 1, data: {} });
        break;
      default:
        throw new Error(`the model has no command ${c.commandType}`);
    }
    let state = { ...s };
    for (const e of events) {
      const amount = e.data.amount as number;
      if (e.eventType === 'Opened') state = { ...state, open: true, owner: e.data.owner as string };
      if (e.eventType === 'Deposited') state = { ...state, balance: state.balance + amount };
      if (e.eventType === 'Withdrawn') state = { ...state, balance: state.balance - amount };
      if (e.eventType === 'Closed') state = { ...state, open: false };
    }
    this.accounts.set(key, { version: version + events.length, state });
    return { status: 'accepted', aggregateVersion: version + events.length, events };
  }
}

type BalanceView = { owner: string; tenant: string; balance: number; movements: number; last?: number };

/** The balances view of test/fixtures/features/balance-projection.ts, written again. */
function nextBalance(view: BalanceView | null, e: Envelope): BalanceView | null {
  const amount = (e.data.amount as number | undefined) ?? 0;
  switch (e.eventType) {
    case 'Opened':
      return { owner: e.data.owner as string, tenant: e.tenantId!, balance: 0, movements: 0 };
    case 'Deposited':
      return { ...view!, balance: view!.balance + amount, movements: view!.movements + 1, last: amount };
    case 'Withdrawn':
      return { ...view!, balance: view!.balance - amount, movements: view!.movements + 1, last: -amount };
    default:
      return null; // Closed
  }
}

/** The chained tiers view (accounts.yaml, `tiers`) after one balances view record. */
function nextTier(tier: Record<string, unknown> | null, key: string, balance: BalanceView | null): Record<string, unknown> | null {
  if (balance === null) return null;
  return { account: key, owner: balance.owner, tier: balance.balance >= 100 ? 'gold' : 'basic', updates: ((tier?.updates as number | undefined) ?? 0) + 1 };
}

function accountInputs(base: number): { inputs: Input[]; commands: { key: string; command: Command }[] } {
  const rnd = prng(20260611);
  const list: Command[] = [];
  const acme = (type: string, data: Record<string, unknown>) => list.push(command(type, 'a1', data, { tenantId: 'acme' }));
  // one account through every rule, so each outcome occurs whatever the random part does
  acme('Withdraw', { amount: 5 }); // NOT_OPEN
  acme('Open', { owner: 'ann', initial: 120 }); // Opened + Deposited
  acme('Open', { owner: 'someone' }); // ALREADY_OPEN
  acme('Withdraw', { amount: 500 }); // INSUFFICIENT_FUNDS
  acme('Noise', {}); // filtered before the aggregate: no reply
  acme('Withdraw', { amount: 120 }); // left 0
  acme('Close', {});
  acme('Deposit', { amount: 5 }); // NOT_OPEN: closed
  acme('Open', { owner: 'ann' }); // reopened, no Deposited
  acme('Deposit', { amount: 30 });
  acme('Close', {}); // NOT_EMPTY
  // the same aggregate id in another tenant is another aggregate
  list.push(command('Open', 'a1', { owner: 'gus', initial: 7 }, { tenantId: 'globex' }));
  const tenants = ['acme', 'globex'];
  const ids = ['a1', 'a2', 'b7'];
  const owners = ['ann', 'bob', 'cy', 'dee'];
  for (let i = 0; i < 70; i++) {
    const tenantId = tenants[Math.floor(rnd() * tenants.length)]!;
    const id = ids[Math.floor(rnd() * ids.length)]!;
    const x = rnd();
    const amount = 1 + Math.floor(rnd() * 150);
    if (x < 0.2) list.push(command('Open', id, rnd() < 0.5 ? { owner: owners[i % 4], initial: amount } : { owner: owners[i % 4] }, { tenantId }));
    else if (x < 0.5) list.push(command('Deposit', id, { amount }, { tenantId }));
    else if (x < 0.8) list.push(command('Withdraw', id, { amount }, { tenantId }));
    else if (x < 0.92) list.push(command('Close', id, {}, { tenantId }));
    else list.push(command('Noise', id, {}, { tenantId }));
  }
  list.push(list[1]!); // the Open of acme:a1 again, same commandId: its first reply again, no event
  const commands = list.map((c) => ({ key: `${c.tenantId}:${c.aggregateId}`, command: c }));
  const inputs: Input[] = commands.map(({ key, command: c }, i) => ({ topic: 'commands', key, value: json(c), timestamp: base + i * 10 }));
  // two commands the tenant partitioning refuses: no tenantId, and a key without the tenant
  inputs.splice(20, 0, { topic: 'commands', key: 'a2', value: json(command('Open', 'a2', { owner: 'x' })), timestamp: base + 195, headers: { bad: 'ENVELOPE_INVALID' } });
  inputs.splice(40, 0, { topic: 'commands', key: 'a2', value: json(command('Open', 'a2', { owner: 'x' }, { tenantId: 'acme' })), timestamp: base + 395, headers: { bad: 'KEY_MISMATCH' } });
  return { inputs, commands };
}

test('a declarative aggregate partitioned by tenant, behind filter and map steps, with history and msgpack events; a module projection and a projection chained on it', async (t) => {
  const base = baseTime();
  const { inputs, commands } = accountInputs(base);
  await withFeature('accounts.yaml', 'feat-acc', async (f) => {
    await produce(f, inputs);
    await f.consumed('accounts', 'commands');
    await f.consumed('balances', 'events');
    await f.consumed('tiers', 'balances');
    const topics = [f.topic('replies'), f.topic('events'), f.topic('balances'), f.topic('tiers'), f.dlq('accounts'), f.dlq('balances'), f.dlq('tiers')];
    const runtime = await readAll(topics);
    const of = (alias: string) => inOrder(runtime.filter((r) => r.topic === f.topic(alias)));

    // the model: replies and events per key, in command order
    const model = new AccountModel();
    const expectedReplies = new Map<string, Omit<Reply, 'eventIds'>[]>();
    const expectedEvents = new Map<string, Omit<Envelope, 'eventId'>[]>();
    const replied = new Set<string>();
    let noise = 0;
    const counts = { accepted: 0, rejected: 0, duplicate: 0 };
    for (const [i, { key, command: c }] of commands.entries()) {
      if (c.commandType === 'Noise') {
        noise++;
        continue;
      }
      const before = model.accounts.get(key)?.version ?? 0;
      const d = model.apply(key, c);
      const duplicate = replied.has(c.commandId);
      replied.add(c.commandId);
      counts[duplicate ? 'duplicate' : d.status]++;
      const why = d.code ? { reason: d.reason!, code: d.code } : {};
      expectedReplies.set(key, [...(expectedReplies.get(key) ?? []), { commandId: c.commandId, status: d.status, ...why, aggregateId: c.aggregateId, aggregateVersion: d.aggregateVersion }]);
      if (duplicate) continue;
      const timestamp = new Date(base + i * 10).toISOString();
      const stamped = d.events.map((e, k) => ({
        ...e,
        aggregateType: 'Account',
        aggregateId: c.aggregateId,
        aggregateVersion: before + k + 1,
        tenantId: c.tenantId!,
        timestamp,
        correlationId: c.commandId,
        causationId: c.commandId,
      }));
      expectedEvents.set(key, [...(expectedEvents.get(key) ?? []), ...stamped]);
    }
    // the run covers what it claims to
    t.deepEqual(
      [...new Set([...expectedReplies.values()].flat().map((r) => r.code ?? r.status))].sort(),
      ['ALREADY_OPEN', 'INSUFFICIENT_FUNDS', 'NOT_EMPTY', 'NOT_OPEN', 'accepted'],
    );

    // events: keyed tenantId:aggregateId, in the partition murmur2 gives that key, msgpack on the wire, as the model says
    const events = of('events');
    t.true(events.length > 20);
    const eventsByKey = new Map<string, Envelope[]>();
    for (const r of events) {
      t.is(r.partition, partitionForKey(r.key!, 6), `the event of ${r.key} is in murmur2's partition`);
      t.true(r.value![0] !== 0x7b && ((r.value![0]! & 0xf0) === 0x80 || r.value![0] === 0xde), 'a msgpack map, not JSON');
      const e = unpack(r.value!) as Envelope;
      t.is(r.key, `${e.tenantId}:${e.aggregateId}`);
      t.regex(e.eventId, UUID_V5);
      eventsByKey.set(r.key!, [...(eventsByKey.get(r.key!) ?? []), e]);
    }
    t.true(events.some((r) => r.partition !== partitionForKey(r.key!, 4)), 'some events are in another partition than their command');
    const withoutIds = (es: Envelope[]) => es.map(({ eventId: _, ...rest }) => rest);
    t.deepEqual(
      sortedObject(new Map([...eventsByKey].map(([k, es]) => [k, withoutIds(es)]))),
      sortedObject(expectedEvents),
      'the events per key are those of the model',
    );
    t.true(eventsByKey.has('acme:a1') && eventsByKey.has('globex:a1'), 'one aggregate id, two tenants, two aggregates');

    // replies: per key in command order, with the ids of the events each command caused; none for filtered commands
    for (const r of of('replies')) t.is(r.partition, partitionForKey(r.key!, 4), `the reply to ${r.key} is in murmur2's partition`);
    const replies = of('replies').map((r) => [r.key!, JSON.parse(String(r.value)) as Reply] as const);
    const repliesByKey = new Map<string, Reply[]>();
    for (const [key, r] of replies) repliesByKey.set(key, [...(repliesByKey.get(key) ?? []), r]);
    t.deepEqual(
      sortedObject(new Map([...repliesByKey].map(([k, rs]) => [k, rs.map(({ eventIds: _, ...rest }) => rest)]))),
      sortedObject(expectedReplies),
      'the replies per key are those of the model',
    );
    const allEvents = [...eventsByKey.values()].flat();
    for (const [, r] of replies) t.deepEqual(r.eventIds, allEvents.filter((e) => e.causationId === r.commandId).map((e) => e.eventId), `eventIds of ${r.commandId}`);

    // the commands the tenant partitioning refuses are dead letters
    const deadLetters = inOrder(runtime.filter((r) => r.topic === f.dlq('accounts')));
    t.deepEqual(deadLetters.map((r) => [r.headers['foldstream.error.code'], r.headers.bad]), [['ENVELOPE_INVALID', 'ENVELOPE_INVALID'], ['KEY_MISMATCH', 'KEY_MISMATCH']]);
    t.regex(deadLetters[0]!.headers['foldstream.error.message']!, /missing field "tenantId"/);

    // the state per key, and the history store: every event under <key>:<version, 10 digits>
    t.deepEqual(sortedObject(await changelogState(f.changelog('accounts', 'state'))), sortedObject(model.accounts), 'the state store holds the model state');
    const history = await changelogState(f.changelog('accounts', 'history'));
    const expectedHistory = new Map(allEvents.map((e) => [`${e.tenantId}:${e.aggregateId}:${String(e.aggregateVersion).padStart(10, '0')}`, e]));
    t.deepEqual(sortedObject(history), sortedObject(expectedHistory), 'the history store holds every event by key and version');

    // the module projection: one view per event, with its version; null (a tombstone) for a closed account
    const balances = of('balances');
    const expectedBalances: Record<string, [string, BalanceView | null][]> = {};
    const expectedTiers: Record<string, [string, Record<string, unknown> | null][]> = {};
    for (const [key, es] of eventsByKey) {
      let view: BalanceView | null = null;
      let tier: Record<string, unknown> | null = null;
      for (const e of es) {
        view = nextBalance(view, e);
        tier = nextTier(tier, key, view);
        (expectedBalances[key] ??= []).push([String(e.aggregateVersion), view]);
        (expectedTiers[key] ??= []).push([String(e.aggregateVersion), tier]);
      }
    }
    const views = (rs: ReadRecord[], partitions: number) => {
      const out: Record<string, [string, unknown][]> = {};
      for (const r of rs) {
        t.is(r.partition, partitionForKey(r.key!, partitions), `the view of ${r.key} is in murmur2's partition`);
        (out[r.key!] ??= []).push([r.headers[VERSION]!, r.value === null ? null : JSON.parse(String(r.value))]);
      }
      return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
    };
    t.deepEqual(views(balances, 3), Object.fromEntries(Object.entries(expectedBalances).sort(([a], [b]) => (a < b ? -1 : 1))), 'the balances views');
    t.true(balances.some((r) => r.value === null), 'a closed account deleted its view');
    // the chained projection: one view per upstream view record, with the upstream version
    t.deepEqual(views(of('tiers'), 2), Object.fromEntries(Object.entries(expectedTiers).sort(([a], [b]) => (a < b ? -1 : 1))), 'the tiers views');
    t.deepEqual(inOrder(runtime.filter((r) => r.topic === f.dlq('balances') || r.topic === f.dlq('tiers'))), []);

    // metrics
    for (const outcome of ['accepted', 'rejected', 'duplicate'] as const) {
      t.is(await f.metric('foldstream_command_outcomes_total', { processor: 'accounts', outcome }), counts[outcome], `command outcome ${outcome}`);
    }
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'accounts', outcome: 'dropped' }), noise, 'filtered commands are counted as dropped');
    t.is(await f.metric('foldstream_projection_events_total', { processor: 'balances', outcome: 'applied' }), allEvents.length);
    t.is(await f.metric('foldstream_projection_events_total', { processor: 'tiers', outcome: 'applied' }), balances.length);

    const driver = await drive(f.loaded, inputs);
    await driverAgrees(t, f, driver, runtime, topics);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2 (partitioner module): letters.yaml.

/** test/fixtures/modules/partition-by-letter.ts, written again. */
const letterPartition = (key: string, partitions: number) => (key.charCodeAt(0) - 'a'.charCodeAt(0)) % partitions;

test('a partitioner module places every event of an aggregate (commands in msgpack) in the partition it chooses; a partition it cannot use dead-letters the command', async (t) => {
  const base = baseTime();
  const words = ['apple', 'banana', 'cherry', 'fig', 'kiwi', 'zebra'];
  // the module's choice must differ from murmur2's for most keys, or the test could not tell them apart
  t.true(words.filter((w) => letterPartition(w, 6) !== partitionForKey(w, 6)).length >= 3);
  // 'Zed' has no letter partition (the module returns -1); a command after it in its partition is processed
  const after = keyIn('after', partitionForKey('Zed', 6), 6);
  const list: Command[] = [];
  for (let round = 1; round <= 3; round++) {
    for (const w of words) list.push(command('Touch', w, { n: round }));
    if (round === 2) list.push(command('Touch', 'Zed', { n: round }), command('Touch', after, { n: round }));
  }
  // commands in msgpack (the topic's codec), as plain msgpack any library writes
  const msgpack = new Packr({ useRecords: false });
  const inputs: Input[] = list.map((c, i) => ({ topic: 'commands', key: c.aggregateId, value: msgpack.pack(c), timestamp: base + i * 10 }));
  await withFeature('letters.yaml', 'feat-let', async (f) => {
    await produce(f, inputs);
    await f.consumed('letters', 'commands');
    const topics = [f.topic('events'), f.topic('replies'), f.dlq('letters')];
    const runtime = await readAll(topics);
    const events = inOrder(runtime.filter((r) => r.topic === f.topic('events'))).map((r) => ({ ...r, event: JSON.parse(String(r.value)) as Envelope }));
    const placed: Record<string, [number, number, unknown][]> = {};
    for (const r of events) (placed[r.key!] ??= []).push([r.partition, r.event.aggregateVersion, r.event.data.n]);
    const expected: Record<string, [number, number, unknown][]> = {};
    for (const w of [...words, after].sort()) expected[w] = (w === after ? [2] : [1, 2, 3]).map((n, i) => [letterPartition(w, 6), i + 1, n]);
    t.deepEqual(Object.fromEntries(Object.entries(placed).sort(([a], [b]) => (a < b ? -1 : 1))), expected, 'keyed by aggregate id, in the letter partition, in version order');

    const replies = inOrder(runtime.filter((r) => r.topic === f.topic('replies'))).map((r) => JSON.parse(String(r.value)) as Reply);
    t.is(replies.length, list.length - 1);
    t.true(replies.every((r) => r.status === 'accepted'));
    t.false(replies.some((r) => r.aggregateId === 'Zed'), 'a dead-lettered command gets no reply');
    const dlq = inOrder(runtime.filter((r) => r.topic === f.dlq('letters')));
    t.deepEqual(dlq.map((r) => [r.key, r.headers['foldstream.error.code']]), [['Zed', 'HANDLER_FAILED']]);
    t.regex(dlq[0]!.headers['foldstream.error.message']!, /partition\(\) of ".*partition-by-letter\.ts" returned -1 for key "Zed"; the topic has 6 partitions \(after 1 attempt\)$/);
    t.deepEqual(dlq[0]!.value, inputs.find((r) => r.key === 'Zed')!.value, 'the original (msgpack) bytes');
    t.deepEqual(unpack(dlq[0]!.value!), list.find((c) => c.aggregateId === 'Zed'));
    // nothing of the failed command was kept; an error that fails the same way every time is not retried
    const state = await changelogState(f.changelog('letters', 'state'));
    t.false(state.has('Zed'));
    t.deepEqual(state.get('kiwi'), { version: 3, state: { touches: 3 } });
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'letters', outcome: 'retried' }), 0);
    t.is(await f.metric('foldstream_dlq_records_total', { processor: 'letters', code: 'HANDLER_FAILED' }), 1);

    await driverAgrees(t, f, await drive(f.loaded, inputs), runtime, topics);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5: steps.yaml.

const userEvent = (eventType: string, id: string, version: number, email: string) => ({
  eventId: `e-${randomUUID()}`,
  eventType,
  eventVersion: 1,
  aggregateType: 'User',
  aggregateId: id,
  aggregateVersion: version,
  timestamp: '2026-06-01T00:00:00.000Z',
  data: { email },
});

test('filter, map and route steps in front of projections: filtered records are absent, mapped ones changed, routed ones on their topics', async (t) => {
  const base = baseTime();
  const sent = [
    userEvent('UserCreated', 'u1', 1, 'Ann@Example.COM'),
    userEvent('UserCreated', 'u2', 1, 'test@example.com'), // filtered by emails
    userEvent('EmailChanged', 'u1', 2, 'ANN@Other.example'),
    userEvent('UserCreated', 'u3', 1, 'Bo@Shop.example'),
    userEvent('EmailChanged', 'u2', 2, 'Real@Two.example'),
    userEvent('EmailChanged', 'u3', 2, 'test@example.com'), // filtered by emails
    userEvent('EmailChanged', 'u3', 3, 'bo@NEW.example'),
    userEvent('Pinged', 'u4', 1, 'Pat@x.example'), // no rule in emails: unknown type
  ];
  const inputs: Input[] = sent.map((e, i) => ({ topic: 'events', key: e.aggregateId, value: json(e), timestamp: base + i * 10, headers: { trace: `t${i}` } }));
  await withFeature('steps.yaml', 'feat-steps', async (f) => {
    await produce(f, inputs);
    await f.consumed('emails', 'events');
    await f.consumed('router', 'events');
    await f.consumed('changes', 'events');
    const topics = ['email-view', 'router-view', 'audit', 'signups', 'other', 'changes', 'changes-view'].map((a) => f.topic(a));
    const runtime = await readAll(topics);
    const read = (alias: string) => seen(f.loaded, runtime, f.topic(alias));
    const mapped = (e: ReturnType<typeof userEvent>) => ({ ...e, data: { email: e.data.email.toLowerCase(), domain: e.data.email.toLowerCase().split('@')[1] } });

    // emails: the filtered events changed nothing, the others arrive mapped
    const emailViews: Record<string, unknown[]> = {};
    for (const r of read('email-view')) (emailViews[r.key!] ??= []).push([r.partition, r.headers[VERSION], r.value]);
    t.deepEqual(emailViews, {
      u1: [
        [partitionForKey('u1', 4), '1', { email: 'ann@example.com', domain: 'example.com' }],
        [partitionForKey('u1', 4), '2', { email: 'ann@other.example', domain: 'other.example', changes: 1 }],
      ],
      u2: [[partitionForKey('u2', 4), '2', { email: 'real@two.example', domain: 'two.example', changes: 1 }]],
      u3: [
        [partitionForKey('u3', 4), '1', { email: 'bo@shop.example', domain: 'shop.example' }],
        [partitionForKey('u3', 4), '3', { email: 'bo@new.example', domain: 'new.example', changes: 1 }],
      ],
    });
    // audit: the UserCreated events that passed the filter, as mapped, with the input's key and headers
    const audit = read('audit');
    t.deepEqual(
      audit.map((r) => [r.key, r.partition, r.value, r.headers]).sort(),
      [sent[0]!, sent[3]!].map((e) => [e.aggregateId, partitionForKey(e.aggregateId, 2), mapped(e), { trace: `t${sent.indexOf(e)}` }]).sort(),
    );
    // router: every UserCreated to signups and everything else to other (its default), unchanged; its processor sees none
    t.deepEqual(
      read('signups').map((r) => [r.key, r.partition, r.value]).sort(),
      sent.filter((e) => e.eventType === 'UserCreated').map((e) => [e.aggregateId, partitionForKey(e.aggregateId, 3), e]).sort(),
    );
    const byId = (a: unknown, b: unknown) => ((a as { eventId: string }).eventId < (b as { eventId: string }).eventId ? -1 : 1);
    t.deepEqual(read('other').map((r) => r.value).sort(byId), sent.filter((e) => e.eventType !== 'UserCreated').sort(byId));
    t.deepEqual(read('router-view'), [], 'route without continue passes nothing on');
    // changes (no default, no continue): EmailChanged events to their topic in their key's partition, the rest dropped
    t.deepEqual(
      read('changes').map((r) => [r.key, r.partition, r.value]).sort(),
      sent.filter((e) => e.eventType === 'EmailChanged').map((e) => [e.aggregateId, partitionForKey(e.aggregateId, 4), e]).sort(),
    );
    t.deepEqual(read('changes-view'), [], 'neither routed nor unrouted records reach the processor');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'changes', outcome: 'dropped' }), sent.length);

    // dropped: the two filtered events, and the event of a type with no rule (ignored, counted as unknown_type too)
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'emails', outcome: 'dropped' }), 3);
    t.is(await f.metric('foldstream_projection_events_total', { processor: 'emails', outcome: 'unknown_type' }), 1);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'router', outcome: 'dropped' }), sent.length, 'routed away');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'router', outcome: 'processed' }), 0);

    await driverAgrees(t, f, await drive(f.loaded, inputs), runtime, topics);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 6: flaky.yaml (dlq, skip) and failing.yaml (fail). The flaky modules count attempts per commandId / eventId in
// module state, so these tests use ids of their own and no driver (it would share that state).

const namedEvent = (id: string, version: number, data: { failures?: number; name: string }) => ({
  eventId: `n-${randomUUID()}`,
  eventType: 'Named',
  eventVersion: 1,
  aggregateType: 'Thing',
  aggregateId: id,
  aggregateVersion: version,
  timestamp: '2026-06-01T00:00:00.000Z',
  data,
});

test('a throwing handler is retried with backoff in partition order, then dead-lettered (dlq, the default) or skipped (skip), each outcome counted', async (t) => {
  const base = baseTime();
  // things (flaky decider; processing.retry: 2 retries): x1's commands in one partition, y1 elsewhere or not
  const c1 = command('Do', 'x1', { failures: 1 }); // fails once, then succeeds
  const c2 = command('Do', 'x1', { failures: 99 }); // fails on every attempt: dead-lettered
  const c3 = command('Do', 'x1', { failures: 0 });
  const c4 = command('Do', 'y1', { failures: 0 });
  // skipper (flaky projection, onError skip)
  const e1 = namedEvent('k1', 1, { name: 'A' });
  const e2 = namedEvent('k1', 2, { failures: 99, name: 'B' }); // skipped
  const e3 = namedEvent('k1', 3, { failures: 1, name: 'C' });
  const e4 = namedEvent('k2', 1, { name: 'D' });
  // pairs: each Pair command emits First and Second; the partitioner throws once on each Second
  const p1 = command('Pair', 'p1', {});
  const p2 = command('Pair', 'p1', {});
  const inputs: Input[] = [
    ...[c1, c2, c3, c4].map((c, i) => ({ topic: 'commands', key: c.aggregateId, value: json(c), timestamp: base + i })),
    ...[e1, e2, e3, e4].map((e, i) => ({ topic: 'skip-events', key: e.aggregateId, value: json(e), timestamp: base + i })),
    ...[p1, p2].map((c, i) => ({ topic: 'pair-commands', key: c.aggregateId, value: json(c), timestamp: base + i })),
  ];
  await withFeature('flaky.yaml', 'feat-flaky', async (f) => {
    await produce(f, inputs);
    await f.consumed('things', 'commands');
    await f.consumed('skipper', 'skip-events');
    await f.consumed('pairs', 'pair-commands');
    const runtime = await readAll([f.topic('events'), f.topic('replies'), f.topic('skip-view'), f.topic('pair-events'), f.dlq('things'), f.dlq('skipper'), f.dlq('pairs')]);
    const of = (topic: string) => inOrder(runtime.filter((r) => r.topic === topic));

    // dlq: c1 succeeded on its retry and kept its place: its event is version 1, c3's version 2
    const events = of(f.topic('events')).map((r) => JSON.parse(String(r.value)) as Envelope);
    t.deepEqual(
      events.map((e) => [e.aggregateId, e.aggregateVersion, e.causationId, e.data]).sort(),
      [
        ['x1', 1, c1.commandId, { attempts: 2 }],
        ['x1', 2, c3.commandId, { attempts: 1 }],
        ['y1', 1, c4.commandId, { attempts: 1 }],
      ],
    );
    const replies = of(f.topic('replies')).map((r) => JSON.parse(String(r.value)) as Reply);
    t.deepEqual(replies.map((r) => [r.commandId, r.status, r.aggregateVersion]).sort(), [
      [c1.commandId, 'accepted', 1],
      [c3.commandId, 'accepted', 2],
      [c4.commandId, 'accepted', 1],
    ].sort(), 'no reply to the dead-lettered command');
    const dlq = of(f.dlq('things'));
    t.deepEqual(dlq.map((r) => [r.key, r.value?.toString(), r.headers['foldstream.error.code'], r.headers['foldstream.error.message']]), [
      ['x1', JSON.stringify(c2), 'HANDLER_FAILED', 'decider exploded on attempt 3 (after 3 attempts)'],
    ]);
    t.like(dlq[0]!.headers, { 'foldstream.source.topic': f.topic('commands'), 'foldstream.source.partition': String(partitionForKey('x1', 3)), 'foldstream.source.offset': '1', 'foldstream.processor': 'things' });
    t.deepEqual((await changelogState(f.changelog('things', 'state'))).get('x1'), { version: 2, state: { done: 2 } }, 'the failed attempts left no state');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'things', outcome: 'retried' }), 3, 'c1 once, c2 twice');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'things', outcome: 'dead_lettered', code: 'HANDLER_FAILED' }), 1);
    t.is(await f.metric('foldstream_dlq_records_total', { processor: 'things', code: 'HANDLER_FAILED' }), 1);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'things', outcome: 'processed' }), 3);
    t.is(await f.metric('foldstream_command_outcomes_total', { processor: 'things', outcome: 'accepted' }), 3);

    // skip: e2 is dropped after its retries, e3 (which needed a retry) and e4 are applied; nothing is dead-lettered
    t.deepEqual(
      of(f.topic('skip-view')).map((r) => [r.key, r.headers[VERSION], JSON.parse(String(r.value))]).sort(),
      [
        ['k1', '1', { name: 'A', attempts: 1 }],
        ['k1', '3', { name: 'C', attempts: 2 }],
        ['k2', '1', { name: 'D', attempts: 1 }],
      ],
    );
    t.deepEqual(of(f.dlq('skipper')), []);
    t.deepEqual((await changelogState(f.changelog('skipper', 'view'))).get('k1'), { view: { name: 'C', attempts: 2 }, version: 3 });
    t.deepEqual(
      f.log.events('record.skipped').map((l) => [l.processor, l.offset, l.code, l.error]),
      [['skipper', '1', 'HANDLER_FAILED', 'projection exploded on attempt 3']],
    );
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'skipper', outcome: 'skipped', code: 'HANDLER_FAILED' }), 1);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'skipper', outcome: 'retried' }), 3, 'e2 twice, e3 once');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'skipper', outcome: 'processed' }), 3);
    t.is(await f.metric('foldstream_dlq_records_total', { processor: 'skipper' }), 0);

    // every attempt starts clean: the First event sent (and kept in history) by an attempt that then failed is
    // discarded with it, so each event is on the topic and in the history store once
    const pairEvents = of(f.topic('pair-events')).map((r) => ({ r, e: JSON.parse(String(r.value)) as Envelope }));
    t.deepEqual(pairEvents.map(({ r, e }) => [r.partition, r.key, e.eventType, e.aggregateVersion]), [
      [2, 'p1', 'First', 1],
      [2, 'p1', 'Second', 2],
      [2, 'p1', 'First', 3],
      [2, 'p1', 'Second', 4],
    ]);
    t.deepEqual([...(await changelogState(f.changelog('pairs', 'history'))).keys()].sort(), ['p1:0000000001', 'p1:0000000002', 'p1:0000000003', 'p1:0000000004']);
    t.deepEqual((await changelogState(f.changelog('pairs', 'state'))).get('p1'), { version: 4, state: { pairs: 2 } });
    t.deepEqual(of(f.dlq('pairs')), []);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'pairs', outcome: 'retried' }), 2, 'one retry per command');
  });
});

test('under onError fail a throwing handler stops its task: readiness turns false, its partition stays at the record, other partitions go on', async (t) => {
  const base = baseTime();
  // three keys in partition 0 (one of them fails on every attempt), one each in partitions 1 and 2
  const a = keyIn('a', 0, 3);
  const bad = keyIn('bad', 0, 3);
  const b = keyIn('b', 1, 3);
  const c = keyIn('c', 2, 3);
  const ev = (key: string, version: number, name: string, failures = 0) => ({ topic: 'events', key, value: json(namedEvent(key, version, { name, failures })), timestamp: base + version });
  await withFeature('failing.yaml', 'feat-fail', async (f) => {
    const readiness = () => f.app.readiness().detail as { processors: { failer: { ready: boolean; tasks: Record<string, string> } } };
    await produce(f, [ev(a, 1, 'A1'), ev(b, 1, 'B1'), ev(bad, 1, 'X', 99), ev(a, 2, 'A2'), ev(c, 1, 'C1')]);
    await waitFor(() => readiness().processors.failer.tasks['0'] === 'failed', 120_000, 'the task of partition 0 to fail');
    await waitFor(() => ['1', '2'].every((p) => readiness().processors.failer.tasks[p] === 'running'), 60_000, 'the other tasks to run');
    // the other partitions keep going after the failure
    await produce(f, [ev(b, 2, 'B2'), ev(a, 3, 'A3'), ev(c, 2, 'C2')]);
    const views = await readUntil(
      [f.topic('view')],
      (rs) => [b, c].every((k) => rs.some((r) => r.key === k && r.headers[VERSION] === '2')),
      'the second views of the other partitions',
      120_000,
    );
    t.deepEqual(
      views.map((r) => [r.partition, r.key, r.headers[VERSION], (JSON.parse(String(r.value)) as { name: string }).name]).sort(),
      [
        [0, a, '1', 'A1'], // before the failing record: committed
        [1, b, '1', 'B1'],
        [1, b, '2', 'B2'],
        [2, c, '1', 'C1'],
        [2, c, '2', 'C2'],
      ],
    );
    // partition 0's position is the failing record (offset 1): it and what follows stay unprocessed
    const committed = await withAdmin(async (admin) => (await admin.fetchOffsets({ groupId: f.group('failer'), topics: [f.topic('events')] }))[0]!.partitions);
    t.is(committed.find((p) => p.partition === 0)?.offset, '1');
    t.deepEqual((await readAll([f.dlq('failer')])), [], 'fail dead-letters nothing');

    // readiness: the app and /readyz say not ready, naming the failed task; the others run
    t.false(f.app.ready);
    t.deepEqual(readiness().processors.failer, { ready: false, tasks: { 0: 'failed', 1: 'running', 2: 'running' } });
    const res = await fetch(`http://127.0.0.1:${f.app.httpPort}/readyz`);
    t.is(res.status, 503);
    t.like(await res.json(), { status: 'not ready', processors: { failer: { ready: false, tasks: { 0: 'failed' } } } });
    t.deepEqual(f.log.events('task.failed').map((l) => [l.processor, l.partition]), [['failer', 0]]);
    t.is(await f.metric('foldstream_tasks', { processor: 'failer', state: 'failed' }), 1);
    t.is(await f.metric('foldstream_tasks', { processor: 'failer', state: 'running' }), 2);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'failer', outcome: 'retried' }), 1, 'one retry (onError.retry.attempts 1)');
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'failer', outcome: 'dead_lettered' }), 0);
    t.is(await f.metric('foldstream_record_outcomes_total', { processor: 'failer', outcome: 'skipped' }), 0);
  });
});
