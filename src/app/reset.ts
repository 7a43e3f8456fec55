/**
 * `foldstream reset`: makes one processor start over from the beginning of its inputs, as Kafka Streams' application
 * reset tool does for a whole app. For a projection this rebuilds its read model; its other processors are untouched.
 * Per runtime stage of the processor: the consumer group is deleted (no committed offsets: read from the earliest),
 * the changelogs, the repartition topic and a projection's replay topic are deleted and created again empty (the stores' contents and the offset
 * markers, which are the position, go with them), and the stage's folder in this machine's state directory is
 * deleted. Output and dead-letter topics are kept: a rebuilt projection writes its views again (readers skip what
 * they have by version), and bad input is dead-lettered again. The plan is pure; `resetProcessor` wires Kafka for it
 * (app/ is the one composition root), and cli/reset parses and prints.
 */
import { rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createKafka } from '../kafka/client.ts';
import { deleteGroups, describeGroups, recreateTopics } from '../kafka/reset-admin.ts';
import { assertNever } from '../topology/assert-never.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { groupId, internalTopics, stagesOf, type InternalTopic } from '../topology/names.ts';
import type { ProcessorDecl } from '../topology/schema.ts';
import { planTopics } from '../topology/topic-plan.ts';
import type { ProgressFactory } from './progress.ts';

/** What reprocessing would do to a kind's outputs, when it is not harmless. */
export function duplicatesOf(p: ProcessorDecl): string | undefined {
  switch (p.type) {
    case 'aggregate':
      return 'an aggregate would handle its commands again and append their events a second time (its events topic is its history); to rebuild its state after a change of evolve, use `foldstream rebuild`';
    case 'saga':
      return 'a saga would send its commands again (aggregates answer a repeated commandId only within their commandRetentionMs)';
    case 'custom':
      return 'a custom processor would forward its outputs again';
    case 'projection':
      return undefined;
    case 'window':
      return p.output === undefined ? undefined : 'a window processor would send its window results again';
    case 'join':
      // a table-table or foreign-key join writes a view: the same rows again are harmless
      return p.kind === 'stream-table' || p.kind === 'stream-stream' ? 'a join would send its join results again' : undefined;
    default:
      return assertNever(p, 'processor type');
  }
}

export interface ResetPlan {
  processor: ProcessorDecl;
  /** runtime names of its stages */
  stages: string[];
  groups: string[];
  topics: InternalTopic[];
  /** the absolute state directory of this machine */
  stateDir: string;
  /** the stages' folders in it */
  folders: string[];
}

export function planReset(loaded: LoadedTopology, p: ProcessorDecl, stateDirOverride?: string): ResetPlan {
  const t = loaded.topology;
  const stages = stagesOf(p).map((s) => s.name);
  const dir = stateDirOverride ?? t.processing.stateDir;
  const stateDir = isAbsolute(dir) ? dir : resolve(loaded.baseDir, dir);
  return {
    processor: p,
    stages,
    groups: stages.map((s) => groupId(t.app, s)),
    topics: internalTopics(t).filter((it) => it.processor === p.name && (it.purpose === 'changelog' || it.purpose === 'repartition' || it.purpose === 'replay')),
    stateDir,
    folders: stages.map((s) => join(stateDir, t.app, s)),
  };
}

export type ResetOutcome =
  | { kind: 'busy'; groups: { groupId: string; state: string; members: string[] }[] }
  | { kind: 'done'; deletedGroups: string[]; recreated: number };

/**
 * Refuses while a group has members (an instance runs); otherwise deletes the groups, re-creates the topics empty and
 * deletes the local folders, showing its steps through `progress` (app/progress.ts). The long part of a reset is the
 * next run reading the inputs again: `foldstream_consumer_lag` shows it.
 */
export async function resetProcessor(loaded: LoadedTopology, plan: ResetPlan, progress?: ProgressFactory): Promise<ResetOutcome> {
  const t = loaded.topology;
  const kafka = createKafka(t, { baseDir: loaded.baseDir, clientIdSuffix: '-reset' });
  const busy = (await describeGroups(kafka, plan.groups)).filter((g) => g.state !== 'Empty' && g.state !== 'Dead');
  if (busy.length) return { kind: 'busy', groups: busy };
  const steps = progress?.(`reset ${plan.processor.name}`, 2 + plan.folders.length, 'steps');
  const deletedGroups = await deleteGroups(kafka, plan.groups);
  steps?.tick(1);
  const names = new Set(plan.topics.map((x) => x.name));
  await recreateTopics(kafka, planTopics(t).filter((x) => names.has(x.name)));
  steps?.tick(1);
  for (const f of plan.folders) {
    rmSync(f, { recursive: true, force: true });
    steps?.tick(1);
  }
  steps?.stop();
  return { kind: 'done', deletedGroups, recreated: names.size };
}
