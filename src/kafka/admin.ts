/**
 * Topic provisioning on a broker for a topic plan (topology/topic-plan.ts: the declared topics plus the internal ones
 * foldstream derives). `createTopics` makes what is missing; `checkTopics` reports how the broker differs from the
 * plan. Both open their own admin connection and always close it.
 */
import kafkajs, { type Admin, type ITopicConfig, type Kafka } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import type { DriftReport, PlannedTopic, TopicDrift } from '../topology/topic-plan.ts';
import { retry } from './retry.ts';

// kafkajs is CommonJS and Node cannot see this enum as a named export
const { ConfigResourceTypes } = kafkajs;

export interface CreateResult {
  created: string[];
  /** planned topics that were already there (their drift, if any, is for checkTopics to report) */
  existing: string[];
}

/** Creates the planned topics that do not exist yet and waits for their partition leaders. Safe to run again. */
export async function createTopics(kafka: Kafka, plan: readonly PlannedTopic[], opts: { timeoutMs?: number } = {}): Promise<CreateResult> {
  return withAdmin(kafka, 'create topics', async (admin) => {
    const initiallyPresent = new Set(await admin.listTopics());
    const missing = plan.filter((p) => !initiallyPresent.has(p.name));
    const existing = plan.filter((p) => initiallyPresent.has(p.name)).map((p) => p.name);
    if (missing.length === 0) return { created: [], existing };
    try {
      await createTopicsAndWait(admin, missing.map(toTopicConfig), opts);
    } catch (e) {
      throw await creationError(admin, missing, e);
    }
    return { created: missing.map((p) => p.name), existing };
  });
}

/**
 * Creates whichever of `topics` are missing and waits until every partition of all of them has a leader that
 * answers metadata requests. A just-created topic can be unknown to the broker's metadata cache for a moment
 * (UNKNOWN_TOPIC_OR_PARTITION) or leaderless (LEADER_NOT_AVAILABLE), longer on a slow machine: both are waited out
 * until `timeoutMs`. A topic another client created in between counts as created.
 */
export async function createTopicsAndWait(admin: Admin, topics: readonly ITopicConfig[], opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const names = topics.map((t) => t.topic);
  await retry(
    async () => {
      const present = new Set(await admin.listTopics());
      const todo = topics.filter((t) => !present.has(t.topic));
      // false means another client created them between listTopics and here: they exist, which is all we want
      if (todo.length) await admin.createTopics({ topics: [...todo], waitForLeaders: false, timeout: timeoutMs });
      await waitForLeaders(admin, names);
    },
    { retriable: isRetriable, timeoutMs, maxPauseMs: 1_000 },
  );
}

function isRetriable(e: unknown): boolean {
  const k = asKafkaJsError(e);
  if (!k) return false;
  if (k.name === 'KafkaJSAggregateError') return (k.errors ?? []).every(isRetriable);
  return (e as { retriable?: boolean }).retriable === true || k.type === 'UNKNOWN_TOPIC_OR_PARTITION' || k.type === 'LEADER_NOT_AVAILABLE';
}

async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const { topics: md } = await admin.fetchTopicMetadata({ topics });
  const leaderless = md.flatMap((t) => t.partitions.filter((p) => p.leader < 0).map((p) => `${t.name}-${p.partitionId}`));
  const unknown = topics.filter((name) => !md.some((t) => t.name === name && t.partitions.length > 0));
  if (leaderless.length || unknown.length) throw notReady(`no leader yet for ${[...unknown, ...leaderless].join(', ')}`);
  // Metadata can name a leader before that broker serves the partition: on a freshly started broker a produce to a
  // topic created moments before was refused with NOT_LEADER_FOR_PARTITION for seconds (seen in CI). A ListOffsets
  // answered for every partition means the leaders serve them.
  for (const topic of topics) {
    await admin.fetchTopicOffsets(topic).catch((e: unknown) => {
      // kafkajs wraps the NOT_LEADER it gave up on in a non-retriable error: judge by the cause; anything else is final
      throw isRetriable(rootCause(e) ?? e) ? notReady(`${topic} not served by its leaders yet: ${(e as Error).message}`) : e;
    });
  }
}

const notReady = (message: string) => Object.assign(new Error(message), { type: 'LEADER_NOT_AVAILABLE', retriable: true, name: 'KafkaJSProtocolError' });

/** Compares the broker's topics with the plan: missing topics, partition counts, replication factors, declared configs. */
export async function checkTopics(kafka: Kafka, plan: readonly PlannedTopic[]): Promise<DriftReport> {
  return withAdmin(kafka, 'check topics', async (admin) => {
    const present = new Set(await admin.listTopics());
    const found = plan.filter((p) => present.has(p.name));
    const metadata = new Map<string, { partitions: number; replicationFactor: number }>();
    if (found.length) {
      const { topics } = await admin.fetchTopicMetadata({ topics: found.map((p) => p.name) });
      for (const t of topics) {
        metadata.set(t.name, { partitions: t.partitions.length, replicationFactor: Math.max(0, ...t.partitions.map((p) => p.replicas.length)) });
      }
    }
    // A topic this principal may not describe is hidden from listTopics: say so instead of calling it missing.
    const hidden = await deniedTopics(kafka, plan.filter((p) => !present.has(p.name)).map((p) => p.name));
    if (hidden.length) {
      throw new FoldstreamError('KAFKA_AUTHORIZATION_FAILED', `the broker does not let this client see topic ${hidden.join(', ')} (TOPIC_AUTHORIZATION_FAILED)`, {
        hint: 'Grant the ACLs `foldstream describe --acls <file>` prints: READ or WRITE on a topic also allows describing it (docs/security.md)',
      });
    }
    const withConfig = found.filter((p) => Object.keys(p.config).length > 0);
    const brokerConfig = new Map<string, Map<string, string | undefined>>();
    if (withConfig.length) {
      const ask = (topics: readonly PlannedTopic[]) =>
        admin.describeConfigs({
          includeSynonyms: false,
          resources: topics.map((p) => ({ type: ConfigResourceTypes.TOPIC, name: p.name, configNames: Object.keys(p.config) })),
        });
      const { resources } = await ask(withConfig).catch(async (e: unknown) => {
        if (!rootCause(e)?.type?.endsWith('_AUTHORIZATION_FAILED')) throw e;
        // kafkajs reports the first refused resource without its name: ask one topic at a time to name them all
        const refused: string[] = [];
        for (const p of withConfig) await ask([p]).catch(() => refused.push(p.name));
        throw new FoldstreamError('KAFKA_AUTHORIZATION_FAILED', `the broker refused DESCRIBE_CONFIGS on topic ${refused.join(', ')} (TOPIC_AUTHORIZATION_FAILED)`, {
          hint: 'Grant the ACLs `foldstream describe --acls <file>` prints: the start checks these topics\' configs (docs/security.md)',
        });
      });
      for (const r of resources) {
        // kafkajs types configValue as string; sensitive configs come back null
        brokerConfig.set(r.resourceName, new Map(r.configEntries.map((c) => [c.configName, c.configValue ?? undefined])));
      }
    }

    const drifts: TopicDrift[] = [];
    for (const p of plan) {
      const base = { topic: p.name, about: p.about, ...(p.role ? { role: p.role } : {}) };
      const meta = metadata.get(p.name);
      if (!present.has(p.name) || !meta) {
        drifts.push({ kind: 'missing', ...base });
        continue;
      }
      if (meta.partitions !== p.partitions) drifts.push({ kind: 'partitions', ...base, expected: p.partitions, actual: meta.partitions });
      if (meta.replicationFactor !== p.replicationFactor) {
        drifts.push({ kind: 'replication-factor', ...base, expected: p.replicationFactor, actual: meta.replicationFactor });
      }
      const actual = brokerConfig.get(p.name);
      for (const [config, expected] of Object.entries(p.config)) {
        const value = actual?.get(config);
        if (value === undefined || normalizeConfig(value) !== normalizeConfig(expected)) {
          drifts.push({ kind: 'config', ...base, config, expected, actual: value });
        }
      }
    }
    return { checked: plan.map((p) => p.name), drifts };
  });
}

function toTopicConfig(p: PlannedTopic): ITopicConfig {
  return {
    topic: p.name,
    numPartitions: p.partitions,
    replicationFactor: p.replicationFactor,
    configEntries: Object.entries(p.config).map(([name, value]) => ({ name, value })),
  };
}

/** Kafka trims list values ("compact, delete"); compare them the way the broker stores them. */
function normalizeConfig(value: string): string {
  return value
    .split(',')
    .map((s) => s.trim())
    .join(',');
}

/** Runs fn with a connected admin client, always disconnecting it; what it throws becomes a FoldstreamError. */
/** Of topics listTopics did not show, those the broker refuses to describe (rather than not having them). */
async function deniedTopics(kafka: Kafka, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  // no retries: a topic that does not exist is retriable to kafkajs, and only a refusal matters here
  const admin = kafka.admin({ retry: { retries: 0 } });
  const denied: string[] = [];
  try {
    await admin.connect();
    for (const name of names) {
      await admin.fetchTopicMetadata({ topics: [name] }).catch((e: unknown) => {
        if (rootCause(e)?.type === 'TOPIC_AUTHORIZATION_FAILED') denied.push(name);
      });
    }
  } catch {
    // could not ask: the caller reports the topics as missing
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return denied;
}

export async function withAdmin<T>(kafka: Kafka, what: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await fn(admin);
  } catch (e) {
    throw toFoldstreamError(e, what);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

interface KafkaJsErrorLike {
  name: string;
  message: string;
  type?: string;
  topic?: string;
  cause?: unknown;
  errors?: unknown[];
}

function asKafkaJsError(e: unknown): KafkaJsErrorLike | undefined {
  return e instanceof Error ? (e as KafkaJsErrorLike) : undefined;
}

/** The innermost error kafkajs wrapped (retries-exceeded errors carry the last failure as their cause). */
function rootCause(e: unknown): KafkaJsErrorLike | undefined {
  let cur = asKafkaJsError(e);
  for (let guard = 0; cur && guard < 10; guard++) {
    const next = asKafkaJsError(cur.cause);
    if (!next || next === cur) break;
    cur = next;
  }
  return cur;
}

const UNREACHABLE_HINT =
  'Check that kafka.brokers in the topology points at a running cluster and that this machine can reach it; ' +
  'for the local development broker run `npm run kafka:start`';

/** Maps what kafkajs throws to the catalogue: the cluster cannot be used (KAFKA_UNAVAILABLE) unless it is already ours. */
export function toFoldstreamError(e: unknown, what: string): FoldstreamError {
  if (e instanceof FoldstreamError) return e;
  const root = rootCause(e);
  // ours, thrown inside kafkajs (the OAuth token provider and authenticator) and wrapped by its retrier
  if (root instanceof FoldstreamError) return root;
  const detail = root?.message ?? String(e);
  const type = root?.type ?? '';
  if (root?.name === 'KafkaJSSASLAuthenticationError') {
    return new FoldstreamError('KAFKA_AUTHENTICATION_FAILED', `could not ${what}: SASL authentication failed (${detail})`, {
      cause: e,
      hint: 'Check kafka.sasl: mechanism, user name and password (set them through ${ENV_VAR}s or ENV_VAR_FILE)',
    });
  }
  if (type.endsWith('_AUTHORIZATION_FAILED')) {
    const resource = type === 'TOPIC_AUTHORIZATION_FAILED' && root?.topic ? ` on topic ${root.topic}` : '';
    return new FoldstreamError('KAFKA_AUTHORIZATION_FAILED', `could not ${what}: the broker refused it (${type}${resource})`, {
      cause: e,
      hint: 'Grant the ACLs `foldstream describe --acls <file>` prints (docs/security.md), or ask the cluster admin to create the topics',
    });
  }
  return new FoldstreamError('KAFKA_UNAVAILABLE', `could not ${what}: ${detail}`, { cause: e, hint: UNREACHABLE_HINT, canRetry: true });
}

/**
 * CreateTopics answers per topic with a bare error code (kafkajs drops the broker's message), so for an invalid
 * config we ask the broker again, one config at a time and validate-only, to name the config that is wrong.
 */
async function creationError(admin: Admin, missing: readonly PlannedTopic[], e: unknown): Promise<FoldstreamError> {
  const failures = (asKafkaJsError(e)?.name === 'KafkaJSAggregateError' ? (asKafkaJsError(e)?.errors ?? []) : [e])
    .map(asKafkaJsError)
    .filter((f): f is KafkaJsErrorLike => f !== undefined && typeof f.type === 'string' && f.type !== 'TOPIC_ALREADY_EXISTS');
  const topicFailures = failures.filter((f) => f.topic !== undefined && f.type !== undefined && !f.type.endsWith('_AUTHORIZATION_FAILED'));
  if (topicFailures.length === 0 || topicFailures.length !== failures.length) return toFoldstreamError(e, 'create topics');

  const lines: string[] = [];
  for (const f of topicFailures) {
    const p = missing.find((m) => m.name === f.topic);
    const where = `topic "${f.topic}"${p ? ` (${p.about})` : ''}`;
    switch (f.type) {
      case 'INVALID_REPLICATION_FACTOR': {
        const brokers = await admin
          .describeCluster()
          .then((c) => c.brokers.length)
          .catch(() => undefined);
        lines.push(
          `${where}: replication factor ${p?.replicationFactor} is invalid` +
            (brokers === undefined ? '' : ` on a cluster of ${brokers} broker${brokers === 1 ? '' : 's'}`) +
            '; declare a replicationFactor no larger than the number of brokers',
        );
        break;
      }
      case 'INVALID_CONFIG': {
        const bad = p ? await invalidConfigs(admin, p) : [];
        lines.push(
          bad.length
            ? `${where}: the broker rejects ${bad.map((c) => `${c}: "${p?.config[c]}"`).join(', ')}; fix the name or value under its config`
            : `${where}: the broker rejects its config; check each name and value under its config against Kafka's topic configs`,
        );
        break;
      }
      case 'INVALID_PARTITIONS':
        lines.push(`${where}: ${p?.partitions} partitions is not allowed by the broker; declare a positive partition count`);
        break;
      default:
        lines.push(`${where}: ${f.type} (${f.message}); fix its declaration`);
    }
  }
  return new FoldstreamError('TOPIC_MISMATCH', `could not create ${topicFailures.length === 1 ? 'a topic' : 'topics'}:\n${lines.join('\n')}`, {
    cause: e,
    hint: 'Topics not listed here were created; fix the declarations and run `foldstream topics <topology.yaml> --create` again',
  });
}

async function invalidConfigs(admin: Admin, p: PlannedTopic): Promise<string[]> {
  const bad: string[] = [];
  for (const [name, value] of Object.entries(p.config)) {
    try {
      await admin.createTopics({
        validateOnly: true,
        waitForLeaders: false,
        topics: [{ topic: p.name, numPartitions: p.partitions, replicationFactor: p.replicationFactor, configEntries: [{ name, value }] }],
      });
    } catch (e) {
      const errors = asKafkaJsError(e)?.errors ?? [e];
      if (errors.some((x) => asKafkaJsError(x)?.type === 'INVALID_CONFIG')) bad.push(name);
    }
  }
  return bad;
}
