/**
 * The topics a topology needs, as pure data: the declared topics with the configs their roles call for (a view topic
 * compacted, an events topic kept forever), then the internal ones (changelogs, dead-letter, repartition). kafka/admin.ts
 * creates and checks them on a broker; the drift messages and which drifts damage data live here, beside the plan.
 */
import { internalTopics, isCompacted, type InternalTopicPurpose } from './names.ts';
import type { Topology } from './schema.ts';
import { processorText, ROLE_TEXT, topicRoles, type TopicRole } from './topic-roles.ts';

export interface PlannedTopic {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** topic configs as the broker reports them: strings */
  config: Record<string, string>;
  purpose: 'declared' | InternalTopicPurpose;
  /** what the processors use a declared topic for (topic-roles.ts), when one does */
  role?: TopicRole;
  /** where it comes from, for messages: `topics.events`, `changelog of processor counter, store totals` */
  about: string;
}

export type TopicDrift = { topic: string; about: string; role?: TopicRole } & (
  | { kind: 'missing' }
  | { kind: 'partitions'; expected: number; actual: number }
  | { kind: 'replication-factor'; expected: number; actual: number }
  | { kind: 'config'; config: string; expected: string; actual: string | undefined }
);

export interface DriftReport {
  /** names of every planned topic, in plan order */
  checked: string[];
  drifts: TopicDrift[];
}

const PURPOSE_TEXT: Record<InternalTopicPurpose, string> = {
  changelog: 'changelog',
  dlq: 'dead-letter topic',
  repartition: 'repartition topic',
  replay: 'replay topic',
};

/** Retention configs that delete an events topic's old events unless they are -1. */
export const EVENT_RETENTION_CONFIGS = ['retention.ms', 'retention.bytes'] as const;

/**
 * The configs a declared topic is created with: its declaration over what its role calls for. A view topic is
 * compacted (validation refuses a declared policy without compact). An events topic is never compacted and keeps
 * every event (retention -1) unless it declares acceptFiniteRetention (validation refuses the rest).
 */
function roleConfig(role: TopicRole | undefined, acceptFiniteRetention: boolean): Record<string, string> {
  switch (role) {
    case 'views':
      return { 'cleanup.policy': 'compact' };
    case 'events':
      return acceptFiniteRetention ? { 'cleanup.policy': 'delete' } : { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' };
    default:
      return {};
  }
}

/** Every topic the topology needs: declared ones first (in file order), then the internal ones. */
export function planTopics(t: Topology): PlannedTopic[] {
  const roles = topicRoles(t);
  const declared = Object.entries(t.topics).map(([alias, d]): PlannedTopic => {
    const role = roles.get(alias)?.role;
    return {
      name: d.name,
      partitions: d.partitions,
      replicationFactor: d.replicationFactor,
      config: {
        ...roleConfig(role, d.acceptFiniteRetention),
        ...Object.fromEntries(Object.entries(d.config).map(([k, v]) => [k, String(v)])),
      },
      purpose: 'declared',
      ...(role ? { role } : {}),
      about: `topics.${alias}`,
    };
  });
  const internal = internalTopics(t).map(
    (it): PlannedTopic => ({
      name: it.name,
      partitions: it.partitions,
      replicationFactor: it.replicationFactor,
      config: { ...it.config },
      purpose: it.purpose,
      about: `${PURPOSE_TEXT[it.purpose]} of processor ${it.processor}${it.store ? `, store ${it.store}` : ''}`,
    }),
  );
  return [...declared, ...internal];
}

/** "the events topic of aggregate "users"", for messages about a declared topic. */
export function roleText(t: Topology, alias: string): string | undefined {
  const c = topicRoles(t).get(alias);
  return c ? `the ${ROLE_TEXT[c.role]} of ${processorText(c.processor)}` : undefined;
}

/**
 * Drifts that damage data if the app runs on them, so they stop its start (TOPIC_MISMATCH) like a partition
 * mismatch: a changelog that is not compacted (a restore loses keys once retention deleted them), an events topic
 * that is compacted or deletes old events (state-at, history and rebuilds would read a truncated event store).
 */
export function isDamagingDrift(plan: readonly PlannedTopic[], d: TopicDrift): boolean {
  if (d.kind === 'missing' || d.kind === 'partitions') return true;
  if (d.kind !== 'config') return false;
  const p = plan.find((x) => x.name === d.topic);
  if (p?.purpose === 'changelog') return d.config === 'cleanup.policy' && !isCompacted(d.actual);
  if (p?.role === 'events') return (d.config === 'cleanup.policy' && isCompacted(d.actual)) || (EVENT_RETENTION_CONFIGS as readonly string[]).includes(d.config);
  return false;
}

/** One line per drift: what differs and what to do about it. */
export function formatDrift(d: TopicDrift): string {
  const where = `topic "${d.topic}" (${d.about})`;
  const alter = (config: string, value: string) =>
    `kafka-configs.sh --alter --entity-type topics --entity-name ${d.topic} --add-config ${config}=${value}`;
  switch (d.kind) {
    case 'missing':
      return `${where} does not exist; create it with \`foldstream topics <topology.yaml> --create\``;
    case 'partitions':
      return d.actual < d.expected
        ? `${where} has ${d.actual} partitions, declared ${d.expected}; adding partitions moves keys to other partitions and breaks ` +
            `state and co-partitioning, so prefer a new topic (or declare ${d.actual}); to add them anyway: ` +
            `kafka-topics.sh --alter --topic ${d.topic} --partitions ${d.expected}`
        : `${where} has ${d.actual} partitions, declared ${d.expected}; Kafka cannot remove partitions: declare ${d.actual} or recreate the topic`;
    case 'replication-factor':
      return `${where} has replication factor ${d.actual}, declared ${d.expected}; declare ${d.actual}, or change it with kafka-reassign-partitions.sh`;
    case 'config':
      if (d.actual === undefined) {
        return `${where} config ${d.config}: the broker reports no such config (declared "${d.expected}"); check its spelling against Kafka's topic configs`;
      }
      if (d.role === 'events' && d.config === 'cleanup.policy' && isCompacted(d.actual)) {
        return (
          `${where} is an events topic and is compacted on the broker (cleanup.policy "${d.actual}"): compaction keeps one event per key ` +
          `and deletes the rest of the event store; stop compacting it now with ${alter('cleanup.policy', 'delete')} ` +
          '(events compaction already removed cannot be brought back from this topic)'
        );
      }
      if (d.role === 'events' && (EVENT_RETENTION_CONFIGS as readonly string[]).includes(d.config)) {
        return (
          `${where} is an events topic and ${d.config} is "${d.actual}" on the broker${d.config === 'retention.ms' && d.actual === '604800000' ? ' (the broker default, 7 days)' : ''}: ` +
          `old events are deleted, and state-at, history and rebuilds would work on a truncated event store; keep every event with ` +
          `${alter(d.config, '-1')}, or declare acceptFiniteRetention: true on the topic to accept losing them`
        );
      }
      return (
        `${where} config ${d.config} is "${d.actual}" on the broker, declared "${d.expected}"; set it with ` +
        `${alter(d.config, d.expected)}, or change the declaration`
      );
  }
}
