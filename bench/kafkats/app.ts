/**
 * The benchmark's two workloads on @kafkats/flow 0.12 (bench/README.md), as close to foldstream's semantics as its
 * DSL allows: it has no Processor API, so each processor is a groupByKey().aggregate() whose value holds what
 * foldstream keeps in stores (the view and its version; the aggregate's state, version and replies by commandId)
 * plus what the record must emit, and the emitted records are split from it downstream.
 *
 *   node --import tsx bench/kafkats/app.ts projection|aggregate key=value...
 *
 * Keys: bootstrap, app, input, output (projection), events and replies (aggregate), commitIntervalMs,
 * sessionTimeoutMs. Prints JSON lines {"event": "state", "to": "RUNNING" | ..., "t": ms} for bench/run.ts.
 */
import { decide, evolve, initialState } from '../../examples/users/user.ts';
import { isDomainError } from '../../src/errors.ts';
import { eventId } from '../../src/processors/aggregate/event-id.ts';
import type { CommandEnvelope, EventEnvelope, Reply } from '../../src/serde/envelope.ts';

// @kafkats/* live in bench/kafkats/node_modules only, and the repository's type-check (which covers bench/) must
// pass without them: they are imported by names TypeScript does not resolve, with the few types used declared here.
interface Codec<T> {
  readonly __codec?: T;
}
interface KStream<V> {
  groupByKey(): { aggregate<A>(init: () => A, fn: (key: string | null, value: V | null, agg: A) => A, o: { storeName: string; key: Codec<string>; value: Codec<A> }): KTable<A> };
  filter(fn: (key: string | null, value: V | null) => boolean): KStream<V>;
  mapValues<W>(fn: (value: V | null) => W): KStream<W>;
  flatMapValues<W>(fn: (value: V | null) => Iterable<W>): KStream<W>;
  branch(...fns: ((key: string | null, value: V | null) => boolean)[]): KStream<V>[];
  to(topic: string, o: { key: Codec<string>; value: Codec<V> }): void;
}
interface KTable<V> {
  toStream(): KStream<V>;
}
interface FlowApp {
  stream(t: unknown, o: { offsetReset: 'earliest' }): KStream<string>;
  start(): Promise<void>;
  close(): Promise<void>;
}
const clientModule: string = '@kafkats/client';
const flowModule: string = '@kafkats/flow';
const { KafkaClient, json, string } = (await import(clientModule)) as {
  KafkaClient: new (o: { brokers: string[]; clientId: string; logLevel: string }) => unknown;
  json: <T>() => Codec<T>;
  string: () => Codec<string>;
};
const { flow, topic } = (await import(flowModule)) as {
  flow: (config: Record<string, unknown>) => FlowApp;
  topic: (name: string, o: { key: Codec<string>; value: Codec<string> }) => unknown;
};

const [workload, ...rest] = process.argv.slice(2);
const o = Object.fromEntries(rest.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const need = (k: string): string => {
  if (!o[k]) throw new Error(`missing ${k}=...`);
  return o[k];
};
const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...line, t: Date.now() })}\n`);

const client = new KafkaClient({ brokers: (o.bootstrap ?? '127.0.0.1:9092').split(','), clientId: need('app'), logLevel: 'warn' });
const app = flow({
  applicationId: need('app'),
  client,
  processingGuarantee: 'exactly_once',
  commitIntervalMs: Number(o.commitIntervalMs ?? 100),
  consumer: { sessionTimeoutMs: Number(o.sessionTimeoutMs ?? 10_000) },
  // A stable transactional id, so a restarted instance fences its predecessor's open transaction at once (the
  // default is derived from a random per-process id: an open transaction would then block read_committed readers
  // until the broker's transaction timeout).
  producer: { transactionalId: `${need('app')}-tx` },
  changelog: { replicationFactor: 1 },
});

type View = Record<string, unknown>;
interface ViewEntry {
  view: View | null;
  version: number;
  applied: boolean;
}

/** user-view of topology.yaml: per key the view and the last applied aggregateVersion; older events are skipped. */
function project(entry: ViewEntry, raw: string | null, key: string | null): ViewEntry {
  const skip = { ...entry, applied: false };
  let e: EventEnvelope;
  try {
    e = JSON.parse(raw ?? 'null') as EventEnvelope;
  } catch {
    return skip;
  }
  if (!e || typeof e !== 'object' || e.aggregateId !== key || !Number.isSafeInteger(e.aggregateVersion)) return skip;
  if (e.aggregateVersion <= entry.version) return skip;
  const d = e.data ?? {};
  const view: View = { ...(entry.view ?? {}) };
  const set = (f: string, v: unknown) => {
    if (v !== undefined) view[f] = v;
  };
  switch (e.eventType) {
    case 'UserCreated':
      set('id', e.aggregateId);
      set('email', d.email);
      set('fullName', d.fullName ?? d.name);
      set('status', d.status ?? 'ACTIVE');
      set('createdAt', e.timestamp);
      set('updatedAt', e.timestamp);
      break;
    case 'EmailChanged':
      set('email', d.newEmail);
      set('updatedAt', e.timestamp);
      view.emailChanges = ((view.emailChanges as number | undefined) ?? 0) + 1;
      break;
    case 'StatusUpgraded':
      set('status', d.status);
      set('updatedAt', e.timestamp);
      if (d.status !== undefined) view.statusHistory = [...((view.statusHistory as unknown[] | undefined) ?? []), d.status];
      break;
    default:
      return skip;
  }
  return { view, version: e.aggregateVersion, applied: true };
}

interface Out {
  topic: 'events' | 'replies';
  value: string;
}
interface AggregateEntry {
  version: number;
  state: unknown;
  /** replies by commandId (foldstream's `commands` store, here per aggregate) */
  replies: Record<string, string>;
  /** what each of those commands was (type and data), to tell a retry from another command under the id */
  commands?: Record<string, string>;
  /** what the last command emitted */
  out: Out[];
}

/** What makes a command the same command again (docs/aggregates.md): its type and data, whatever their key order. */
function sameness(c: CommandEnvelope): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, sorted(x)])) : v;
  return JSON.stringify([c.commandType, sorted(c.data)]);
}

/** The users aggregate (docs/aggregates.md) over examples/users/user.ts. */
function handle(eventsTopic: string, entry: AggregateEntry, raw: string | null, key: string | null): AggregateEntry {
  let c: CommandEnvelope;
  try {
    c = JSON.parse(raw ?? 'null') as CommandEnvelope;
  } catch {
    return { ...entry, out: [] };
  }
  if (!c || typeof c !== 'object' || c.aggregateId !== key || typeof c.commandId !== 'string') return { ...entry, out: [] };
  const version = entry.version;
  const what = sameness(c);
  const earlier = entry.replies[c.commandId];
  if (earlier !== undefined) {
    if ((entry.commands?.[c.commandId] ?? what) === what) return { ...entry, out: [{ topic: 'replies', value: earlier }] };
    const first = JSON.parse(earlier) as Reply;
    const reason = `commandId ${JSON.stringify(c.commandId)} was already used for another command to this aggregate (a different commandType or data), answered ${first.status} at version ${first.aggregateVersion}: send a new command with a new commandId`;
    const rejected: Reply = { commandId: c.commandId, status: 'rejected', reason, code: 'COMMAND_ID_REUSED', aggregateId: c.aggregateId, aggregateVersion: version, eventIds: [] };
    return { ...entry, out: [{ topic: 'replies', value: JSON.stringify(rejected) }] };
  }
  const settle = (r: Reply, next: Partial<AggregateEntry> = {}, events: Out[] = []): AggregateEntry => {
    const value = JSON.stringify(r);
    return { ...entry, ...next, replies: { ...entry.replies, [c.commandId]: value }, commands: { ...entry.commands, [c.commandId]: what }, out: [...events, { topic: 'replies', value }] };
  };
  const reply = (status: Reply['status'], aggregateVersion: number, eventIds: string[], why?: { reason: string; code: string }): Reply => ({
    commandId: c.commandId,
    status,
    ...why,
    aggregateId: c.aggregateId,
    aggregateVersion,
    eventIds,
  });
  if (c.expectedVersion !== undefined && c.expectedVersion !== null && c.expectedVersion !== version) {
    return settle(reply('conflict', version, [], { reason: `expectedVersion ${c.expectedVersion} differs from the aggregate's version ${version}`, code: 'CONCURRENCY_CONFLICT' }));
  }
  let state = (entry.state ?? initialState()) as Parameters<typeof decide>[1];
  let drafts;
  try {
    drafts = decide(c, state);
  } catch (e) {
    if (!isDomainError(e)) throw e;
    return settle(reply('rejected', version, [], { reason: e.message, code: (e as { code?: string }).code ?? 'DOMAIN_REJECTED' }));
  }
  const timestamp = c.timestamp ?? new Date().toISOString();
  const events: EventEnvelope[] = drafts.map((d, i) => {
    const ev: EventEnvelope = {
      eventId: eventId(eventsTopic, 'User', key, version + i + 1),
      eventType: d.type,
      eventVersion: d.eventVersion ?? 1,
      aggregateType: 'User',
      aggregateId: c.aggregateId,
      aggregateVersion: version + i + 1,
      timestamp,
      correlationId: c.correlationId ?? c.commandId,
      causationId: c.commandId,
      data: d.data ?? {},
    };
    if (c.userId) ev.userId = c.userId;
    return ev;
  });
  for (const ev of events) state = evolve(state, ev);
  const next = events.length ? { version: version + events.length, state } : {};
  return settle(
    reply('accepted', version + events.length, events.map((e) => e.eventId)),
    next,
    events.map((e) => ({ topic: 'events', value: JSON.stringify(e) })),
  );
}

if (workload === 'projection') {
  app
    .stream(topic(need('input'), { key: string(), value: string() }), { offsetReset: 'earliest' })
    .groupByKey()
    .aggregate<ViewEntry>(() => ({ view: null, version: 0, applied: false }), (key, value, entry) => project(entry, value, key), {
      storeName: 'view',
      key: string(),
      value: json<ViewEntry>(),
    })
    .toStream()
    .filter((_k, e) => e?.applied === true)
    .mapValues((e) => JSON.stringify(e!.view))
    .to(need('output'), { key: string(), value: string() });
} else if (workload === 'aggregate') {
  const events = need('events');
  const outs = app
    .stream(topic(need('input'), { key: string(), value: string() }), { offsetReset: 'earliest' })
    .groupByKey()
    .aggregate<AggregateEntry>(() => ({ version: 0, state: null, replies: {}, out: [] }), (key, value, entry) => handle(events, entry, value, key), {
      storeName: 'users',
      key: string(),
      value: json<AggregateEntry>(),
    })
    .toStream()
    .flatMapValues((e) => e?.out ?? []);
  const [toEvents, toReplies] = outs.branch((_k, x) => x?.topic === 'events', (_k, x) => x?.topic === 'replies');
  toEvents!.mapValues((x) => x!.value).to(events, { key: string(), value: string() });
  toReplies!.mapValues((x) => x!.value).to(need('replies'), { key: string(), value: string() });
} else {
  console.error('usage: app.ts projection|aggregate key=value...');
  process.exit(2);
}

const stop = async () => {
  print({ event: 'state', to: 'PENDING_SHUTDOWN' });
  await app.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
print({ event: 'state', to: 'STARTING' });
await app.start();
print({ event: 'state', to: 'RUNNING' });
