/**
 * The only place that knows every part: from a validated topology it provisions topics, builds the processors,
 * starts one runner per processor, and serves metrics and health. `foldstream run` and the tests use it.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { FoldstreamError } from '../errors.ts';
import { CommandGateway } from '../http/command-gateway.ts';
import { QueryApi, type QueryableProcessor } from '../http/query-api.ts';
import { QueryRouter } from '../http/query-router.ts';
import { ReplyWatcher } from '../http/reply-watcher.ts';
import { HttpServer } from '../http/server.ts';
import { checkTopics, createTopics } from '../kafka/admin.ts';
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import { createKafka, type KafkaClient } from '../kafka/client.ts';
import { createRecordSender } from '../kafka/record-sender.ts';
import { createOffsetsAdmin } from '../kafka/offsets-admin.ts';
import { TaskOwners } from '../kafka/task-owners.ts';
import type { OffsetsAdmin, RecordSender } from '../kafka/types.ts';
import { createLogger } from '../log.ts';
import { buildProcessorSpecs } from '../processors/build.ts';
import type { Logger } from '../processors/types.ts';
import { RuntimeMetrics } from '../runtime/metrics.ts';
import { ProcessorRunner } from '../runtime/processor-runner.ts';
import { TopicRegistry } from '../runtime/topic-registry.ts';
import { ReadCache } from '../state/lru-cache.ts';
import { lockStateDir } from '../state/state-dir.ts';
import { instanceIdentity } from './instance-identity.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { groupId, stageName, stagesOf } from '../topology/names.ts';
import { formatDrift, isDamagingDrift, planTopics, type TopicDrift } from '../topology/topic-plan.ts';
import { damagingExisting } from './topics.ts';

export interface AppOptions {
  log?: Logger;
  /** a registry of your own (tests); by default a fresh one with Node's default metrics */
  registry?: Registry;
  /** override processing.stateDir */
  stateDir?: string;
  /** override http.port (0: any free port) */
  httpPort?: number;
  /** create missing declared and internal topics (default true) */
  createTopics?: boolean;
}

export class App {
  readonly log: Logger;
  readonly registry: Registry;
  readonly metrics: RuntimeMetrics;
  readonly stateDir: string;
  private readonly kafka: KafkaClient;
  private admin: OffsetsAdmin | undefined;
  private runners: ProcessorRunner[] = [];
  private http: HttpServer | undefined;
  /** the command gateway's producer and reply watchers, created on first use */
  private sender: RecordSender | undefined;
  /** asks the groups' coordinators which instance runs a partition (query API 421 answers) */
  private owners: TaskOwners | undefined;
  /** where this instance answers queries: http.advertisedUrl, or built from the bound address */
  url: string | undefined;
  private readonly replyWatchers = new Map<string, ReplyWatcher>();
  private unlock: (() => void) | undefined;
  private started = false;
  /** a static member sends LeaveGroup when it stops (see stop) */
  private leaveGroup = false;
  httpPort: number | undefined;
  /** this instance's id in its groups (instance-identity.ts), once started */
  instanceId: string | undefined;

  constructor(
    readonly loaded: LoadedTopology,
    private readonly opts: AppOptions = {},
  ) {
    const t = loaded.topology;
    this.log = opts.log ?? createLogger({ app: t.app });
    this.registry = opts.registry ?? new Registry();
    this.metrics = new RuntimeMetrics(this.registry, { defaultMetrics: opts.registry === undefined });
    const dir = opts.stateDir ?? t.processing.stateDir;
    this.stateDir = isAbsolute(dir) ? dir : resolve(loaded.baseDir, dir);
    this.kafka = createKafka(t, {
      baseDir: loaded.baseDir,
      log: this.log,
      observer: { transactionRetry: (reason) => this.metrics.transactionRetries.inc({ reason }) },
    });
  }

  get ready(): boolean {
    return this.started && this.runners.every((r) => r.ready);
  }

  readiness(): { ready: boolean; detail: Record<string, unknown> } {
    return {
      ready: this.ready,
      detail: { processors: Object.fromEntries(this.runners.map((r) => [r.name, { ready: r.ready, tasks: r.taskStates() }])) },
    };
  }

  /** The processors as the query API reads them: their stores, partitions and the committed state of their tasks. */
  private queryable(): QueryableProcessor[] {
    // blue/green: a projection's stages answer for the same stages of the projection it replaces
    const replaces = new Map<string, string>();
    for (const p of this.loaded.topology.processors) {
      if (p.type !== 'projection' || p.replaces === undefined) continue;
      for (const s of stagesOf(p)) replaces.set(s.name, s.stage === undefined ? p.replaces : stageName(p.replaces, s.stage));
    }
    const lag = async (processor: string, partition: number): Promise<number | undefined> => {
      const values = (await this.metrics.consumerLag.get()).values.filter((v) => v.labels.processor === processor && v.labels.partition === String(partition));
      return values.length ? values.reduce((n, v) => n + v.value, 0) : undefined;
    };
    return this.runners.map((r) => ({
      replaces: replaces.get(r.name),
      lag: (partition: number) => lag(r.name, partition),
      name: r.name,
      stores: r.spec.stores.map((s) => s.name),
      partitions: r.partitions,
      aggregate: r.spec.aggregate,
      window: r.spec.window,
      taskStates: () => r.taskStates(),
      readCommitted: (partition, store, fn) => r.readCommitted(partition, store, fn),
      owner: (partition) => (this.owners ??= new TaskOwners(this.kafka)).owner(groupId(this.loaded.topology.app, r.name), partition),
    }));
  }

  private commandGateway(topics: TopicRegistry): CommandGateway {
    return new CommandGateway({
      aggregates: () => this.runners.flatMap((r) => (r.spec.aggregate ? [{ name: r.name, aggregate: r.spec.aggregate }] : [])),
      topic: (name) => topics.get(name),
      sender: () => (this.sender ??= createRecordSender(this.kafka)),
      replies: (topic) => {
        let w = this.replyWatchers.get(topic);
        if (!w) {
          w = new ReplyWatcher(new ChangelogReader(this.kafka, this.log), topic, topics.get(topic).codec, this.log);
          this.replyWatchers.set(topic, w);
        }
        return w;
      },
      endOffset: async (topic, partition) => {
        if (!this.admin) throw new Error('the app is stopping');
        return (await this.admin.endOffsets(topic)).get(partition) ?? 0n;
      },
    });
  }

  /** A file the topology names (relative to the topology file). */
  private readFile(what: string, p: string): string {
    const path = resolve(this.loaded.baseDir, p);
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new FoldstreamError('CONFIG_INVALID', `${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
        hint: 'Mount the file, or fix the path (relative to the topology file)',
      });
    }
  }

  /** The HTTP port's certificate and key, read from their files (relative to the topology file). */
  private httpTls(tls: { cert: string; key: string; passphrase?: string | undefined }): { cert: string; key: string; passphrase?: string } {
    const read = (what: string, p: string) => this.readFile(`http.tls.${what}`, p);
    return { cert: read('cert', tls.cert), key: read('key', tls.key), ...(tls.passphrase ? { passphrase: tls.passphrase } : {}) };
  }

  /**
   * Verifies (and creates) topics. A drift that damages data (topic-plan.ts isDamagingDrift: a partition count that
   * differs, a changelog not compacted, an events topic compacted or deleting old events) stops the start, and when
   * it is on a topic that exists it stops it before anything is created.
   */
  private async provisionTopics(): Promise<void> {
    const plan = planTopics(this.loaded.topology);
    const isFatal = (d: TopicDrift) => isDamagingDrift(plan, d);
    const refuse = (fatal: TopicDrift[]) =>
      new FoldstreamError('TOPIC_MISMATCH', `topics differ from the topology:\n${fatal.map(formatDrift).join('\n')}`, {
        hint: 'tasks pair partition p of every input with partition p of each changelog, so counts must match; a changelog must be compacted (cleanup.policy=compact) or restores lose state; an events topic must keep every event (not compacted, retention -1) unless it declares acceptFiniteRetention',
      });
    if (this.opts.createTopics ?? true) {
      const before = await damagingExisting(this.kafka, plan);
      if (before.length) throw refuse(before);
      const { created } = await createTopics(this.kafka, plan);
      for (const name of created) this.log.info({ event: 'topic.created', topic: name });
    }
    // New topics can take a moment to appear in every broker's metadata after CreateTopics returns.
    let { drifts } = await checkTopics(this.kafka, plan);
    for (let i = 0; i < 20 && drifts.some((d) => d.kind === 'missing'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      ({ drifts } = await checkTopics(this.kafka, plan));
    }
    const fatal = drifts.filter(isFatal);
    for (const d of drifts) if (!isFatal(d)) this.log.warn({ event: 'topic.drift', topic: d.topic, detail: formatDrift(d) });
    if (fatal.length) throw refuse(fatal);
  }

  async start(): Promise<void> {
    const t = this.loaded.topology;
    this.unlock = lockStateDir(this.stateDir, t.app);
    try {
      const specs = await buildProcessorSpecs(this.loaded);
      await this.provisionTopics();
      this.admin = createOffsetsAdmin(this.kafka);
      const topics = new TopicRegistry(t);
      const identity = instanceIdentity(t, this.stateDir);
      const id = identity.instanceId;
      this.instanceId = id;
      const groupInstanceId = identity.groupInstanceId;
      const readCache = new ReadCache(t.processing.cacheMaxBytes);
      this.log.info({ event: 'app.starting', instanceId: id, instanceIdFrom: identity.source, staticMembership: groupInstanceId !== undefined, stateDir: this.stateDir, guarantee: t.processing.guarantee, processors: specs.map((s) => s.name) });
      this.runners = specs.map(
        (spec) =>
          new ProcessorRunner({
            topology: t,
            spec,
            kafka: this.kafka,
            admin: this.admin!,
            topics,
            stateDir: this.stateDir,
            instanceId: id,
            ...(groupInstanceId === undefined ? {} : { staticMembership: { groupInstanceId, leaveOnStop: () => this.leaveGroup } }),
            url: () => this.url,
            metrics: this.metrics,
            readCache,
            log: this.log,
          }),
      );
      if (t.http.enabled) {
        this.http = new HttpServer({
          host: t.http.host,
          port: this.opts.httpPort ?? t.http.port,
          token: t.http.token,
          tokens: t.http.tokens ?? [],
          openMetrics: t.http.openMetrics,
          ...(t.http.tls ? { tls: this.httpTls(t.http.tls) } : {}),
          maxBodyBytes: t.http.maxBodyBytes,
          ...(t.http.rateLimit ? { rateLimit: t.http.rateLimit } : {}),
          registry: this.registry,
          readiness: () => this.readiness(),
          log: this.log,
          onResponse: (route, status) => this.metrics.httpRequests.inc({ route, status: String(status) }),
        });
        const routing = t.http.routing;
        const router = routing.enabled
          ? new QueryRouter({ instanceId: id, timeoutMs: routing.timeoutMs, ...(routing.ca ? { ca: this.readFile('http.routing.ca', routing.ca) } : {}) })
          : undefined;
        new QueryApi(() => this.queryable(), router).register(this.http);
        this.commandGateway(topics).register(this.http);
        this.httpPort = await this.http.listen();
        const host = t.http.host === '0.0.0.0' || t.http.host === '::' ? hostname() : t.http.host;
        this.url = t.http.advertisedUrl ?? `${t.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${this.httpPort}`;
        this.log.info({ event: 'http.listening', host: t.http.host, port: this.httpPort, tls: Boolean(t.http.tls) });
      }
      for (const r of this.runners) await r.start();
      this.started = true;
      this.log.info({ event: 'app.started' });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * Drains: each runner stops consuming (its batch in progress commits), closes tasks, producers and stores. With
   * static membership the instance stays a member of its groups (a restart within the session timeout gets its tasks
   * back with no rebalance) unless `leaveGroup` (or processing.staticMembership.leaveGroupOnShutdown) says it leaves
   * for good (a scale-down: its tasks move at once).
   */
  async stop(opts: { leaveGroup?: boolean } = {}): Promise<void> {
    this.leaveGroup = opts.leaveGroup ?? this.loaded.topology.processing.staticMembership.leaveGroupOnShutdown;
    this.log.info({ event: 'app.stopping', ...(this.loaded.topology.processing.staticMembership.enabled ? { leaveGroup: this.leaveGroup } : {}) });
    this.started = false;
    await Promise.all(this.runners.map((r) => r.stop()));
    this.runners = [];
    // waiting commands answer 504 now (retry with the same commandId), so the server can close
    await Promise.all([...this.replyWatchers.values()].map((w) => w.close()));
    this.replyWatchers.clear();
    await this.http?.close();
    this.http = undefined;
    await this.sender?.close();
    this.sender = undefined;
    await this.owners?.close();
    this.owners = undefined;
    await this.admin?.close();
    this.admin = undefined;
    this.unlock?.();
    this.unlock = undefined;
    this.log.info({ event: 'app.stopped' });
  }
}
