/**
 * The query API (Kafka Streams' interactive queries): reads of this instance's committed local state — store
 * entries, aggregate states, an aggregate's history and its state as of a time. Only what LevelDB holds after a
 * commit is served, never a transaction's buffered writes. A key whose partition this instance does not run gets
 * 421 (or 503 while its task is restoring) with the partitions it does run and, for 421, the instance the consumer
 * group gave the partition to, with the URL it advertises (http.advertisedUrl).
 * Routes and answers: docs/http-api.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FoldstreamError } from '../errors.ts';
import { stateAt, type StateAt } from '../processors/aggregate/state-at.ts';
import type { AggregateInfo, WindowInfo } from '../processors/spec.ts';
import { STREAM_TIME_KEY, windowQuery, type StoredWindow } from '../processors/window/index.ts';
import type { EventEnvelope } from '../serde/envelope.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import type { CommittedStore } from '../state/committed-store.ts';
import { rangeBounds } from '../state/key-order.ts';
import { decodeValue } from '../state/value-codec.ts';
import { mayForward, SERVED_BY, type PeerAnswer, type QueryRouter } from './query-router.ts';
import { sendJson, type HttpServer } from './server.ts';

export type StoreRead<T> = { ok: true; value: T } | { ok: false; reason: 'not_hosted' | 'not_running'; state: string | undefined };

/** One runtime processor as the query API sees it (the app adapts its processor runners). */
export interface QueryableProcessor {
  /** runtime name: the processor's, or `<processor>-<stage>` */
  readonly name: string;
  readonly stores: string[];
  /** input partition count: one task per partition */
  readonly partitions: number;
  readonly aggregate: AggregateInfo | undefined;
  /** window processors: the stage that keeps the windows */
  readonly window?: WindowInfo | undefined;
  /** tasks this instance runs, by partition, with their state */
  taskStates(): Record<number, string>;
  readCommitted<T>(partition: number, store: string, fn: (s: CommittedStore) => Promise<T>): Promise<StoreRead<T>>;
  /** the instance the group gave `partition` to, and where it answers queries (when it says) */
  owner?(partition: number): Promise<{ instanceId: string; url: string | undefined } | undefined>;
  /** blue/green: the runtime name of the processor (stage) this one is a new version of */
  readonly replaces?: string | undefined;
  /** records behind the end of its inputs on `partition` after its last commit (undefined: nothing committed yet) */
  lag?(partition: number): Promise<number | undefined>;
  /** an old and a new version answering as one: the one that answers `partition` now */
  choose?(partition: number): Promise<QueryableProcessor>;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

/** Written into the answer already: the handler stops. */
class Answered extends Error {}

function fail(res: ServerResponse, status: number, body: Record<string, unknown>): never {
  sendJson(res, status, body);
  throw new Answered();
}

function queryOf(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://localhost').searchParams;
}

const hostedOf = (p: QueryableProcessor) =>
  Object.keys(p.taskStates())
    .map(Number)
    .sort((a, b) => a - b);

function intParam(res: ServerResponse, q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) fail(res, 400, { error: `query parameter ${name}=${raw}: expected an integer from ${min} to ${max}` });
  return n;
}

function relay(res: ServerResponse, a: PeerAnswer): never {
  res.setHeader(SERVED_BY, a.servedBy);
  if (a.retryAfter !== undefined) res.setHeader('retry-after', a.retryAfter);
  res.writeHead(a.status, { 'content-type': a.contentType, 'content-length': a.body.length });
  res.end(a.body);
  throw new Answered();
}

export class QueryApi {
  /** blue/green: `<new version>\u0000<partition>` that answer for their old version now */
  private readonly switched = new Set<string>();

  /** `router`: forward reads of partitions other instances run to them (query-router.ts); without it, 421 */
  constructor(
    private readonly processors: () => QueryableProcessor[],
    private readonly router?: QueryRouter,
  ) {}

  register(http: HttpServer): void {
    const wrap =
      (fn: (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>) =>
      async (req: IncomingMessage, res: ServerResponse, params: string[]) => {
        try {
          await fn(req, res, params);
        } catch (e) {
          if (!(e instanceof Answered)) throw e;
        }
      };
    http.route('GET', /^\/stores\/([^/]+)\/([^/]+)\/(.+)$/, wrap((req, res, [p, s, key]) => this.getEntry(req, res, p!, s!, key!)), 'store_get', 'read');
    http.route('GET', /^\/stores\/([^/]+)\/([^/]+)\/?$/, wrap((req, res, [p, s]) => this.listEntries(req, res, p!, s!)), 'store_list', 'read');
    http.route('GET', /^\/windows\/([^/]+)\/([^/]+)\/?$/, wrap((req, res, [p, key]) => this.windows(req, res, p!, key!)), 'windows_get', 'read');
    http.route('GET', /^\/aggregates\/([^/]+)\/([^/]+)\/history\/?$/, wrap((req, res, [type, id]) => this.history(req, res, type!, id!)), 'aggregate_history', 'read');
    http.route('GET', /^\/aggregates\/([^/]+)\/([^/]+)\/?$/, wrap((req, res, [type, id]) => this.aggregateState(req, res, type!, id!)), 'aggregate_get', 'read');
  }

  private processor(res: ServerResponse, name: string): QueryableProcessor {
    const all = this.processors();
    const next = all.find((x) => x.replaces === name);
    const old = all.find((x) => x.name === name);
    if (next && old) return this.versions(old, next);
    const p = old ?? next;
    if (!p) fail(res, 404, { error: `no processor "${name}" in this app`, processors: all.filter((x) => x.stores.length).map((x) => ({ name: x.name, stores: x.stores })) });
    return p;
  }

  private store(res: ServerResponse, p: QueryableProcessor, store: string): void {
    if (!p.stores.includes(store)) fail(res, 404, { error: `processor "${p.name}" has no store "${store}"`, stores: p.stores });
  }

  /**
   * Blue/green (docs/projections.md#blue-green-rebuild): reads of the old name are answered per partition by the old
   * version until the new one runs that partition and has caught up with its inputs as far as the old one (its lag
   * after a commit no more than the old one's), then by the new one for good — never by a new version that is still
   * building, so queries get no 5xx and no empty view during the switch. The switch is per instance and per partition.
   */
  private versions(old: QueryableProcessor, next: QueryableProcessor): QueryableProcessor {
    const choose = async (partition: number): Promise<QueryableProcessor> => {
      const key = `${next.name}\u0000${partition}`;
      if (this.switched.has(key)) return next;
      if (next.partitions !== old.partitions || next.taskStates()[partition] !== 'running') return old;
      const behind = await next.lag?.(partition);
      if (behind === undefined) return old;
      if (old.taskStates()[partition] === 'running' && behind > ((await old.lag?.(partition)) ?? 0)) return old;
      this.switched.add(key);
      return next;
    };
    return {
      name: old.name,
      stores: old.stores,
      partitions: old.partitions,
      aggregate: old.aggregate,
      window: old.window,
      taskStates: () => old.taskStates(),
      readCommitted: async (partition, store, fn) => (await choose(partition)).readCommitted(partition, store, fn),
      ...(old.owner ? { owner: old.owner } : {}),
      choose,
    };
  }

  /** Runs a read on the task of `partition`, or forwards the request to its owner, or answers 421/503 for it. */
  private async read<T>(req: IncomingMessage, res: ServerResponse, p: QueryableProcessor, partition: number, store: string, fn: (s: CommittedStore) => Promise<T>): Promise<T> {
    const chosen = p.choose ? await p.choose(partition) : p;
    res.setHeader('x-foldstream-processor', chosen.name);
    const r = await chosen.readCommitted(partition, store, fn);
    if (r.ok) return r.value;
    return this.unavailable(req, res, chosen, partition, r);
  }

  private async unavailable(req: IncomingMessage, res: ServerResponse, p: QueryableProcessor, partition: number, r: { reason: 'not_hosted' | 'not_running'; state: string | undefined }): Promise<never> {
    const hosted = hostedOf(p);
    if (r.reason === 'not_hosted') {
      // where it is hosted, as the group's coordinator says (none while a rebalance moves it, or if it cannot be asked)
      const owner = await p.owner?.(partition).catch(() => undefined);
      if (this.router && mayForward(req)) {
        const a = await this.router.forward(req, owner, `partition ${partition} of processor "${p.name}"`);
        if (a.ok) relay(res, a);
        res.setHeader('retry-after', '1');
        fail(res, 503, { error: `${a.error}; try again shortly`, reason: a.reason, processor: p.name, partition, ...(a.hostedBy ? { hostedBy: a.hostedBy } : {}) });
      }
      const hostedBy = owner ? { hostedBy: { instanceId: owner.instanceId, ...(owner.url === undefined ? {} : { url: owner.url }) } } : {};
      fail(res, 421, { error: `partition ${partition} of processor "${p.name}" is not hosted on this instance; ask the instance that runs it`, processor: p.name, partition, hosted, ...hostedBy });
    }
    res.setHeader('retry-after', '1');
    fail(res, 503, { error: `partition ${partition} of processor "${p.name}" is ${r.state ?? 'not running'} on this instance; try again shortly`, reason: 'not_running', processor: p.name, partition, state: r.state, hosted });
  }

  private partitionOf(res: ServerResponse, req: IncomingMessage, p: QueryableProcessor, key: string): number {
    return intParam(res, queryOf(req), 'partition', 0, p.partitions - 1) ?? partitionForKey(key, p.partitions);
  }

  private async getEntry(req: IncomingMessage, res: ServerResponse, name: string, store: string, key: string): Promise<void> {
    const p = this.processor(res, name);
    this.store(res, p, store);
    const partition = this.partitionOf(res, req, p, key);
    const bytes = await this.read(req, res, p, partition, store, (s) => s.get(key));
    if (bytes === undefined) fail(res, 404, { error: `no key ${JSON.stringify(key)} in store "${store}" of processor "${p.name}" (partition ${partition})`, key, partition });
    sendJson(res, 200, { key, partition, value: decodeValue(bytes) });
  }

  private async listEntries(req: IncomingMessage, res: ServerResponse, name: string, store: string): Promise<void> {
    const p = this.processor(res, name);
    this.store(res, p, store);
    const q = queryOf(req);
    const prefix = q.get('prefix') ?? undefined;
    const limit = intParam(res, q, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
    const only = intParam(res, q, 'partition', 0, p.partitions - 1);
    const bounds = rangeBounds(prefix ? { prefix } : {});
    if (only === undefined && this.router && mayForward(req)) return this.routedList(req, res, p, store, bounds, prefix, limit, this.router);
    const states = p.taskStates();
    const candidates = only !== undefined ? [only] : hostedOf(p);
    const entries: { key: string; partition: number; value: unknown }[] = [];
    const searched: number[] = [];
    const unavailable: { partition: number; state: string | undefined }[] = [];
    let truncated = false;
    for (const partition of candidates) {
      if (entries.length >= limit) {
        truncated = true;
        break;
      }
      const room = limit - entries.length;
      const r = await p.readCommitted(partition, store, async (s) => {
        const out: [string, Buffer][] = [];
        for await (const e of s.entries(bounds, false)) {
          out.push(e);
          if (out.length > room) break;
        }
        return out;
      });
      if (!r.ok) {
        // asked for one partition: say why it cannot be answered; listing all: report it and go on
        if (only !== undefined) await this.unavailable(req, res, p, partition, r);
        unavailable.push({ partition, state: r.state ?? states[partition] });
        continue;
      }
      searched.push(partition);
      if (r.value.length > room) truncated = true;
      for (const [key, value] of r.value.slice(0, room)) entries.push({ key, partition, value: decodeValue(value) });
    }
    sendJson(res, 200, { processor: p.name, store, partitions: searched, unavailable, hosted: hostedOf(p), entries, truncated });
  }

  /**
   * A listing of every partition: this instance's tasks read here, the others asked of their owners (one request
   * each, `?partition=`, which the owner answers from its own task and never forwards). Every partition must answer:
   * one that cannot (no live owner, restoring, unreachable, moving) makes the answer a 503 that lists why.
   */
  private async routedList(
    req: IncomingMessage,
    res: ServerResponse,
    p: QueryableProcessor,
    store: string,
    bounds: ReturnType<typeof rangeBounds>,
    prefix: string | undefined,
    limit: number,
    router: QueryRouter,
  ): Promise<void> {
    type Entry = { key: string; partition: number; value: unknown };
    type Part = { partition: number; entries: Entry[]; truncated: boolean; servedBy: string } | { partition: number; unavailable: Record<string, unknown> };
    const one = async (partition: number): Promise<Part> => {
      const r = await p.readCommitted(partition, store, async (s) => {
        const out: [string, Buffer][] = [];
        for await (const e of s.entries(bounds, false)) {
          out.push(e);
          if (out.length > limit) break;
        }
        return out;
      });
      if (r.ok) {
        const entries = r.value.slice(0, limit).map(([key, value]) => ({ key, partition, value: decodeValue(value) }));
        return { partition, entries, truncated: r.value.length > limit, servedBy: router.instanceId };
      }
      if (r.reason === 'not_running') return { partition, unavailable: { partition, reason: 'not_running', state: r.state, instanceId: router.instanceId } };
      const owner = await p.owner?.(partition).catch(() => undefined);
      const q = new URLSearchParams({ partition: String(partition), limit: String(limit), ...(prefix === undefined ? {} : { prefix }) });
      const a = await router.forward(req, owner, `partition ${partition}`, `/stores/${encodeURIComponent(p.name)}/${encodeURIComponent(store)}?${q}`);
      if (!a.ok) return { partition, unavailable: { partition, reason: a.reason, error: a.error, ...(a.hostedBy ? { hostedBy: a.hostedBy } : {}) } };
      let body: { entries?: Entry[]; truncated?: boolean; state?: string; error?: string } = {};
      try {
        body = JSON.parse(a.body.toString('utf8')) as typeof body;
      } catch {
        // not JSON: reported below by its status
      }
      if (a.status !== 200 || !Array.isArray(body.entries)) {
        return { partition, unavailable: { partition, reason: a.status === 503 ? 'not_running' : 'owner_error', status: a.status, error: body.error, state: body.state, instanceId: a.servedBy } };
      }
      return { partition, entries: body.entries, truncated: body.truncated === true, servedBy: a.servedBy };
    };
    const parts = await Promise.all([...Array(p.partitions).keys()].map(one));
    const unavailable = parts.flatMap((x) => ('unavailable' in x ? [x.unavailable] : []));
    if (unavailable.length) {
      res.setHeader('retry-after', '1');
      fail(res, 503, {
        error: `${unavailable.length} of ${p.partitions} partitions of processor "${p.name}" cannot be read now; try again shortly (or ask ?partition= for the others)`,
        processor: p.name,
        store,
        unavailable,
      });
    }
    const entries: Entry[] = [];
    const servedBy: Record<string, number[]> = {};
    let truncated = false;
    for (const x of parts) {
      if ('unavailable' in x) continue;
      (servedBy[x.servedBy] ??= []).push(x.partition);
      for (const e of x.entries) {
        if (entries.length >= limit) {
          truncated = true;
          break;
        }
        entries.push(e);
      }
      if (x.truncated) truncated = true;
    }
    sendJson(res, 200, { processor: p.name, store, partitions: parts.map((x) => x.partition), unavailable: [], hosted: hostedOf(p), servedBy, entries, truncated });
  }

  // ---- window processors (issue 20, docs/windows.md) ----

  private windowOf(res: ServerResponse, name: string): QueryableProcessor & { window: WindowInfo } {
    const windows = this.processors().filter((x): x is QueryableProcessor & { window: WindowInfo } => x.window !== undefined);
    const found = windows.find((x) => x.window.processor === name || x.name === name);
    if (!found) fail(res, 404, { error: `no window processor "${name}" in this app`, windows: windows.map((x) => x.window.processor) });
    return found;
  }

  /** The windows of a key with time in [from, to], oldest first, from the key's partition. */
  private async windows(req: IncomingMessage, res: ServerResponse, name: string, key: string): Promise<void> {
    const p = this.windowOf(res, name);
    const q = queryOf(req);
    const time = (param: string, fallback: number): number => {
      const raw = q.get(param);
      if (raw === null || raw === '') return fallback;
      const t = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
      if (!Number.isSafeInteger(t) || t < 0) fail(res, 400, { error: `${param}=${raw} is not a time: give an ISO-8601 time such as 2026-11-27T10:00:00Z (or milliseconds since the epoch)` });
      return t;
    };
    const from = time('from', 0);
    const to = time('to', 999_999_999_999_999);
    if (from > to) fail(res, 400, { error: `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})` });
    const limit = intParam(res, q, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
    const partition = this.partitionOf(res, req, p, key);
    const { kind } = p.window;
    const query = windowQuery(kind, key, from, to);
    const found = await this.read(req, res, p, partition, 'windows', async (s) => {
      const out: StoredWindow[] = [];
      for await (const [k, v] of s.entries(query.bounds, false)) {
        const w = decodeValue<StoredWindow>(v);
        // a longer key that starts with this one and '@' shares the range: its windows carry their own key
        if (w.key !== key || k.length !== key.length + 16 || !query.overlaps(w)) continue;
        out.push(w);
        if (out.length > limit) break;
      }
      return out;
    });
    const streamTime = await this.read(req, res, p, partition, 'window-index', async (s) => {
      const bytes = await s.get(STREAM_TIME_KEY);
      return bytes === undefined ? undefined : decodeValue<number>(bytes);
    });
    const iso = (t: number) => new Date(t).toISOString();
    sendJson(res, 200, {
      processor: p.window.processor,
      key,
      partition,
      kind: kind.kind,
      streamTime: streamTime === undefined ? null : iso(streamTime),
      windows: found.slice(0, limit).map((w) => ({
        start: iso(w.start),
        end: iso(w.end),
        closed: streamTime !== undefined && kind.closeAt(w) <= streamTime,
        ...p.window.result(w),
      })),
      truncated: found.length > limit,
    });
  }

  // ---- end of window processors ----

  private aggregateOf(res: ServerResponse, type: string): QueryableProcessor & { aggregate: AggregateInfo } {
    const aggregates = this.processors().filter((x): x is QueryableProcessor & { aggregate: AggregateInfo } => x.aggregate !== undefined);
    const byName = aggregates.find((x) => x.name === type);
    if (byName) return byName;
    const byType = aggregates.filter((x) => x.aggregate.aggregateType === type);
    const known = aggregates.map((x) => ({ type: x.aggregate.aggregateType, processor: x.name, history: x.aggregate.history }));
    if (byType.length === 1) return byType[0]!;
    if (byType.length > 1) fail(res, 400, { error: `several aggregate processors have aggregateType "${type}": ask by processor name`, aggregates: known });
    fail(res, 404, { error: `no aggregate of type or processor name "${type}" in this app`, aggregates: known });
  }

  /** The aggregate's record key is the id as given; under tenant partitioning it must be tenantId:aggregateId. */
  private ids(res: ServerResponse, a: AggregateInfo, key: string): { aggregateId: string; tenantId?: string } {
    if (!a.tenant) return { aggregateId: key };
    const at = key.indexOf(':');
    if (at <= 0 || at === key.length - 1) fail(res, 400, { error: `aggregate ${a.aggregateType} is partitioned by tenant: ask for tenantId:aggregateId, not ${JSON.stringify(key)}` });
    return { tenantId: key.slice(0, at), aggregateId: key.slice(at + 1) };
  }

  private requireHistory(res: ServerResponse, p: QueryableProcessor & { aggregate: AggregateInfo }, what: string): void {
    if (!p.aggregate.history) {
      fail(res, 400, { error: `${what} needs the aggregate's history, and processor "${p.name}" keeps none: set history: true on it in the topology (it records events from then on)` });
    }
  }

  /** The aggregate's events in version order, from its `history` store. */
  private async events(req: IncomingMessage, res: ServerResponse, p: QueryableProcessor, key: string, partition: number): Promise<EventEnvelope[]> {
    const prefix = `${key}:`;
    return this.read(req, res, p, partition, 'history', async (s) => {
      const out: EventEnvelope[] = [];
      for await (const [k, v] of s.entries(rangeBounds({ prefix }), false)) {
        // another aggregate whose id starts with this key and a colon shares the prefix: its keys have more after it
        if (!/^\d{10}$/.test(k.slice(prefix.length))) continue;
        out.push(decodeValue<EventEnvelope>(v));
      }
      return out;
    });
  }

  private async aggregateState(req: IncomingMessage, res: ServerResponse, type: string, key: string): Promise<void> {
    const p = this.aggregateOf(res, type);
    const a = p.aggregate;
    const ids = this.ids(res, a, key);
    const partition = this.partitionOf(res, req, p, key);
    const head = { aggregateType: a.aggregateType, ...ids, partition };
    const atParam = queryOf(req).get('at');
    if (atParam === null) {
      const bytes = await this.read(req, res, p, partition, 'state', (s) => s.get(key));
      if (bytes === undefined) fail(res, 404, { error: `no ${a.aggregateType} ${JSON.stringify(key)}: it has no events (partition ${partition})`, ...head });
      const stored = decodeValue<{ version: number; state: unknown }>(bytes);
      sendJson(res, 200, { ...head, version: stored.version, state: stored.state });
      return;
    }
    const at = /^\d+$/.test(atParam) ? Number(atParam) : Date.parse(atParam);
    if (Number.isNaN(new Date(at).getTime())) fail(res, 400, { error: `at=${atParam} is not a time: give an ISO-8601 time such as 2026-11-27T10:00:00Z (or milliseconds since the epoch)` });
    this.requireHistory(res, p, 'a state as of a time');
    const events = await this.events(req, res, p, key, partition);
    const iso = new Date(at).toISOString();
    // the same fold as `foldstream state-at`: events in version order through evolve, up to the first after the time
    let r: StateAt;
    try {
      r = await stateAt(a, a.upcasters, events, at);
    } catch (e) {
      if (!(e instanceof FoldstreamError)) throw e;
      fail(res, 500, { error: e.message, code: e.code, ...(e.hint === undefined ? {} : { hint: e.hint }), ...head, at: iso });
    }
    if (r.version === 0) fail(res, 404, { error: `no ${a.aggregateType} ${JSON.stringify(key)} at ${iso}: it had no events by then`, ...head, at: iso, laterEvents: r.later });
    const { version, state } = r;
    sendJson(res, 200, { ...head, at: iso, version, state, lastEventAt: r.events.at(-1)!.timestamp, laterEvents: r.later });
  }

  private async history(req: IncomingMessage, res: ServerResponse, type: string, key: string): Promise<void> {
    const p = this.aggregateOf(res, type);
    const a = p.aggregate;
    const ids = this.ids(res, a, key);
    this.requireHistory(res, p, 'an audit trail');
    const partition = this.partitionOf(res, req, p, key);
    const events = await this.events(req, res, p, key, partition);
    if (events.length === 0) fail(res, 404, { error: `no ${a.aggregateType} ${JSON.stringify(key)}: it has no events (partition ${partition})`, aggregateType: a.aggregateType, ...ids, partition });
    sendJson(res, 200, {
      aggregateType: a.aggregateType,
      ...ids,
      partition,
      version: events.at(-1)!.aggregateVersion,
      events: events.map((e) => ({
        aggregateVersion: e.aggregateVersion,
        eventType: e.eventType,
        eventVersion: e.eventVersion,
        timestamp: e.timestamp,
        userId: e.userId ?? null,
        eventId: e.eventId,
        causationId: e.causationId ?? null,
        correlationId: e.correlationId ?? null,
        data: e.data,
      })),
    });
  }
}
