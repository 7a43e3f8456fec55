/**
 * Names derived from the app and processor names (DESIGN §1, §4). Everything that talks to Kafka takes names from
 * here, so a newcomer can see the whole scheme in one place and `foldstream describe` prints the same.
 */
import type { ProcessorDecl, Topology } from './schema.ts';

export const groupId = (app: string, processor: string) => `${app}-${processor}`;
/** The transactional id of a processor runner under exactly-once v2: one per processor and instance. */
export const runnerTransactionalId = (app: string, processor: string, instanceId: string) => `${app}-${processor}-${instanceId}`;
export const transactionalId = (app: string, processor: string, partition: number) => `${app}-${processor}-${partition}`;
/** Whether a cleanup.policy value (e.g. "compact", "compact,delete") compacts the topic. */
export const isCompacted = (policy: string | undefined): boolean => (policy ?? '').split(',').some((p) => p.trim() === 'compact');

export const changelogTopic = (app: string, processor: string, store: string) => `${app}-${processor}-${store}-changelog`;
export const dlqTopic = (app: string, processor: string) => `${app}-${processor}-dlq`;
export const repartitionTopic = (app: string, processor: string) => `${app}-${processor}-repartition`;
/** A projection's replay topic: `foldstream replay` writes there what the running projection rebuilds views from (docs/projections.md). */
export const replayTopic = (app: string, processor: string) => `${app}-${processor}-replay`;
/** A foreign-key join's responses, from its subscriptions stage back to the left rows (docs/joins.md). */
export const responseTopic = (app: string, processor: string) => `${app}-${processor}-response`;

/** The second stage of a projection with `groupBy`: it folds the repartitioned changes into one view per group. */
export const GROUP_STAGE = 'group';
/** The second stage of a saga with `correlate`: it runs the saga instances over the events re-keyed by saga id. */
export const SAGA_STAGE = 'instances';
/** The second stage of a window processor with `key`: it aggregates the events re-keyed by window key. */
export const WINDOW_STAGE = 'windows';
/** The second stage of a stream-table join with `key`: it joins the events re-keyed by the table key. */
export const JOIN_STAGE = 'joined';
/** The second stage of a foreign-key join: it keeps the right table and which left rows refer to each of its keys. */
export const SUBSCRIPTIONS_STAGE = 'subscriptions';

/** Runtime name of a processor's extra stage: its consumer group, transactional ids, stores and DLQ derive from it. */
export const stageName = (processor: string, stage: string) => `${processor}-${stage}`;

/**
 * One runtime processor: its own consumer group, tasks, transactions, stores and dead-letter topic. Most processors
 * are one; a projection with `groupBy` is two (the per-aggregate views, then the groups), and so is a saga with
 * `correlate` (re-keying the events by saga id, then the saga instances).
 */
export interface ProcessorStage {
  /** runtime name: the processor's, or `<processor>-<stage>` */
  name: string;
  /** undefined for the processor's first (or only) stage */
  stage: string | undefined;
  /** built-in stores of this stage */
  stores: string[];
}

export function stagesOf(p: ProcessorDecl): ProcessorStage[] {
  switch (p.type) {
    case 'aggregate':
      return [
        {
          name: p.name,
          stage: undefined,
          stores: ['state', 'commands', ...(p.commandRetentionMs > 0 ? ['command-expiry'] : []), ...(p.history ? ['history'] : [])],
        },
      ];
    case 'projection': {
      const first: ProcessorStage = { name: p.name, stage: undefined, stores: ['view'] };
      return p.groupBy ? [first, { name: stageName(p.name, GROUP_STAGE), stage: GROUP_STAGE, stores: ['groups'] }] : [first];
    }
    case 'saga': {
      const stores = ['sagas', 'deadlines', ...(p.endedRetentionMs > 0 ? ['ended'] : [])];
      if (p.correlate === undefined) return [{ name: p.name, stage: undefined, stores }];
      return [
        { name: p.name, stage: undefined, stores: [] },
        { name: stageName(p.name, SAGA_STAGE), stage: SAGA_STAGE, stores },
      ];
    }
    case 'custom':
      return [{ name: p.name, stage: undefined, stores: [] }];
    case 'window': {
      // windows, their close and expiry index (and the window's stream time), and for sliding windows the records
      const stores = ['windows', 'window-index', ...(p.window.kind === 'sliding' ? ['window-points'] : [])];
      if (p.key === undefined) return [{ name: p.name, stage: undefined, stores }];
      return [
        { name: p.name, stage: undefined, stores: [] },
        { name: stageName(p.name, WINDOW_STAGE), stage: WINDOW_STAGE, stores },
      ];
    }
    case 'join':
      switch (p.kind) {
        case 'stream-table':
          if (p.key === undefined) return [{ name: p.name, stage: undefined, stores: ['table'] }];
          return [
            { name: p.name, stage: undefined, stores: [] },
            { name: stageName(p.name, JOIN_STAGE), stage: JOIN_STAGE, stores: ['table'] },
          ];
        case 'table-table':
          return [{ name: p.name, stage: undefined, stores: ['left', 'right'] }];
        case 'stream-stream':
          return [{ name: p.name, stage: undefined, stores: ['left-buffer', 'right-buffer', 'join-index'] }];
        case 'foreign-key':
          return [
            { name: p.name, stage: undefined, stores: ['left'] },
            { name: stageName(p.name, SUBSCRIPTIONS_STAGE), stage: SUBSCRIPTIONS_STAGE, stores: ['subscriptions', 'right'] },
          ];
      }
  }
}

/** Whether a processor's first stage writes a repartition topic its second stage reads. */
export function repartitions(p: ProcessorDecl): boolean {
  return (
    (p.type === 'projection' && p.groupBy !== undefined) ||
    (p.type === 'saga' && p.correlate !== undefined) ||
    (p.type === 'window' && p.key !== undefined) ||
    (p.type === 'join' && (p.kind === 'foreign-key' || (p.kind === 'stream-table' && p.key !== undefined)))
  );
}

/** Stores a processor kind keeps for itself (in any stage), besides the ones it declares. */
export function builtInStores(p: ProcessorDecl): string[] {
  return stagesOf(p).flatMap((s) => s.stores);
}

/**
 * Built-in stores written for every record and rarely read by key: an aggregate's `commands` (a new commandId is
 * read once, always a miss), `command-expiry` and `history` (read by range). A read cache would only churn.
 */
const WRITE_MOSTLY = new Set(['commands', 'command-expiry', 'history']);

/** The stores of one stage of a processor (the first by default): built-in ones, then declared ones. */
export function storesOf(
  t: Topology,
  p: ProcessorDecl,
  stage: ProcessorStage = stagesOf(p)[0]!,
): { name: string; changelog: boolean; cacheSize: number }[] {
  const declared = p.type === 'custom' && stage.stage === undefined ? p.stores : [];
  return [
    ...stage.stores.map((name) => ({ name, changelog: true, cacheSize: WRITE_MOSTLY.has(name) ? 0 : t.processing.cacheSize })),
    ...declared.map((name) => {
      const decl = t.stores[name];
      return { name, changelog: decl?.changelog ?? true, cacheSize: decl?.cacheSize ?? t.processing.cacheSize };
    }),
  ];
}

/**
 * Whether a processor reads a replay topic besides its inputs: a projection of events (not of another projection's
 * views), whose views `foldstream replay` can rebuild for some aggregates while it runs.
 */
export function replays(p: ProcessorDecl): boolean {
  return p.type === 'projection' && p.inputFormat !== 'view';
}

export function inputsOf(p: ProcessorDecl): string[] {
  const inputs = Array.isArray(p.input) ? p.input : [p.input];
  // a join reads its right side too (its second stage does, when it has one)
  return p.type === 'join' ? [...inputs, p.right] : inputs;
}

/**
 * The partition count of a processor's stage: its first input's. The second stage of a join reads the right side
 * (with the repartition topic sized like it), so it has the right side's.
 */
export function stagePartitions(t: Topology, p: ProcessorDecl, stage: ProcessorStage): number {
  const alias = p.type === 'join' && stage.stage !== undefined ? p.right : inputsOf(p)[0]!;
  return t.topics[alias]?.partitions ?? 1;
}

export type InternalTopicPurpose = 'changelog' | 'dlq' | 'repartition' | 'replay';

export interface InternalTopic {
  name: string;
  /** the declared processor it belongs to */
  processor: string;
  /** the processor's extra stage it belongs to, if any (see stagesOf) */
  stage?: string;
  purpose: InternalTopicPurpose;
  store?: string;
  partitions: number;
  replicationFactor: number;
  config: Record<string, string>;
}

/** Changelogs, dead-letter and repartition topics of every processor, sized like the processor's input. */
export function internalTopics(t: Topology): InternalTopic[] {
  const out: InternalTopic[] = [];
  for (const p of t.processors) {
    if (!p) continue;
    const first = t.topics[inputsOf(p)[0]!];
    const replicationFactor = first?.replicationFactor ?? 1;
    const minIsr = replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {};
    for (const stage of stagesOf(p)) {
      const owner = stage.stage === undefined ? {} : { stage: stage.stage };
      const partitions = stagePartitions(t, p, stage);
      for (const s of storesOf(t, p, stage)) {
        if (!s.changelog) continue;
        out.push({
          name: changelogTopic(t.app, stage.name, s.name),
          processor: p.name,
          ...owner,
          purpose: 'changelog',
          store: s.name,
          partitions,
          replicationFactor,
          config: { 'cleanup.policy': 'compact', ...minIsr },
        });
      }
      out.push({
        name: dlqTopic(t.app, stage.name),
        processor: p.name,
        ...owner,
        purpose: 'dlq',
        partitions,
        replicationFactor,
        config: { 'retention.ms': '-1', ...minIsr },
      });
      // the first stage of a projection reads its replay topic
      if (stage.stage === undefined && replays(p)) {
        out.push({
          name: replayTopic(t.app, p.name),
          processor: p.name,
          purpose: 'replay',
          partitions,
          replicationFactor,
          config: { ...minIsr },
        });
      }
      // the first stage writes the repartition topic the group stage reads
      if (stage.stage === undefined && repartitions(p)) {
        out.push({
          name: repartitionTopic(t.app, p.name),
          processor: p.name,
          purpose: 'repartition',
          // read by the second stage, so partitioned like it
          partitions: stagesOf(p)[1] ? stagePartitions(t, p, stagesOf(p)[1]!) : partitions,
          replicationFactor,
          config: { ...minIsr },
        });
      }
      // a foreign-key join's subscriptions stage answers the first stage, keyed by the left rows' keys
      if (stage.stage === undefined && p.type === 'join' && p.kind === 'foreign-key') {
        out.push({ name: responseTopic(t.app, p.name), processor: p.name, purpose: 'repartition', partitions, replicationFactor, config: { ...minIsr } });
      }
    }
  }
  return out;
}

/** A stage's redrive markers: one record per dead letter sent back, written in the redrive's transactions (app/dead-letters.ts). */
export const redriveMarkerTopic = (app: string, processor: string) => `${app}-${processor}-dlq-redriven`;
/** The one transactional id of a stage's redrives: a new redrive fences an older one still running. */
export const redriveTransactionalId = (app: string, processor: string) => `${app}-${processor}-dlq-redrive`;
