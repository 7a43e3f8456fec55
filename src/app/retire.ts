/**
 * `foldstream retire <file> <processor>`: the last step of a blue/green rebuild of a projection
 * (docs/projections.md#blue-green-rebuild). Once the new version (a projection with `replaces: <old>`) answers the
 * queries and the old one has left the topology and every instance, this deletes what the old one left on the
 * cluster and on this machine: its consumer groups, its changelogs and repartition topic, its view topic when named,
 * and its folders in the local state directory. Its dead-letter topics are kept (dead letters are never thrown away
 * by a tool: delete them by hand once handled). The plan is pure and refuses what is still in use; the work wires Kafka.
 */
import { rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createKafka } from '../kafka/client.ts';
import { deleteGroups, deleteTopicsThatExist, describeGroups, existingTopics, type GroupState } from '../kafka/reset-admin.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { GROUP_STAGE, changelogTopic, dlqTopic, groupId, inputsOf, internalTopics, repartitionTopic, stageName } from '../topology/names.ts';

export interface RetirePlan {
  processor: string;
  /** the projection that replaces it */
  replacedBy: string;
  groups: string[];
  /** topics to delete (those that exist) */
  topics: string[];
  /** kept: its dead-letter topics */
  kept: string[];
  stateDir: string;
  folders: string[];
}

export type RetirePlanning = { kind: 'refused'; reasons: string[] } | { kind: 'plan'; plan: RetirePlan };

export function planRetire(loaded: LoadedTopology, name: string, o: { viewTopic?: string | undefined; stateDir?: string | undefined } = {}): RetirePlanning {
  const t = loaded.topology;
  const reasons: string[] = [];
  if (t.processors.some((p) => p.name === name)) {
    reasons.push(`"${name}" is still a processor of ${loaded.file}: remove it from the topology and deploy the new version to every instance first (queries of "${name}" are then answered by its new version)`);
  }
  const next = t.processors.find((p) => p.type === 'projection' && p.replaces === name);
  if (!next) reasons.push(`no projection of ${loaded.file} has \`replaces: ${name}\`: retire only removes an old version whose new version is in the topology`);
  const stages = [name, stageName(name, GROUP_STAGE)];
  const topics = [changelogTopic(t.app, name, 'view'), changelogTopic(t.app, stageName(name, GROUP_STAGE), 'groups'), repartitionTopic(t.app, name)];
  if (o.viewTopic !== undefined) {
    const declared = Object.entries(t.topics).find(([, d]) => d.name === o.viewTopic);
    if (declared) {
      const users = t.processors.filter((p) => inputsOf(p).includes(declared[0]) || ('output' in p && JSON.stringify(p.output).includes(JSON.stringify(declared[0]))));
      reasons.push(`topic ${o.viewTopic} is still declared in ${loaded.file} (as "${declared[0]}"${users.length ? `, used by ${users.map((p) => p.name).join(', ')}` : ''}): remove it from the topology first`);
    }
    topics.push(o.viewTopic);
  }
  const ours = new Set(internalTopics(t).map((x) => x.name));
  for (const x of topics) if (ours.has(x)) reasons.push(`topic ${x} belongs to a processor of the topology`);
  if (reasons.length) return { kind: 'refused', reasons };
  const dir = o.stateDir ?? t.processing.stateDir;
  const stateDir = isAbsolute(dir) ? dir : resolve(loaded.baseDir, dir);
  return {
    kind: 'plan',
    plan: {
      processor: name,
      replacedBy: next!.name,
      groups: stages.map((s) => groupId(t.app, s)),
      topics,
      kept: stages.map((s) => dlqTopic(t.app, s)),
      stateDir,
      folders: stages.map((s) => join(stateDir, t.app, s)),
    },
  };
}

export type RetireOutcome = { kind: 'busy'; groups: GroupState[] } | { kind: 'done'; deletedGroups: string[]; deletedTopics: string[]; keptTopics: string[] };

/** Refuses while a group of the old version has members; otherwise deletes its groups, topics and local folders. */
export async function retireProcessor(loaded: LoadedTopology, plan: RetirePlan): Promise<RetireOutcome> {
  const t = loaded.topology;
  const kafka = createKafka(t, { baseDir: loaded.baseDir, clientIdSuffix: '-retire' });
  const busy = (await describeGroups(kafka, plan.groups)).filter((g) => g.state !== 'Empty' && g.state !== 'Dead');
  if (busy.length) return { kind: 'busy', groups: busy };
  const deletedGroups = await deleteGroups(kafka, plan.groups);
  const deletedTopics = await deleteTopicsThatExist(kafka, plan.topics);
  for (const f of plan.folders) rmSync(f, { recursive: true, force: true });
  return { kind: 'done', deletedGroups, deletedTopics, keptTopics: await existingTopics(kafka, plan.kept) };
}
