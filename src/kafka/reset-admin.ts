/**
 * What `foldstream reset` asks of the cluster: whether a processor's consumer groups still have members, deleting
 * those groups (their committed offsets), and deleting and re-creating its internal topics empty (changelogs,
 * repartition topic), waiting until the broker has really let go of the old ones.
 */
import type { Kafka } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import type { PlannedTopic } from '../topology/topic-plan.ts';
import { createTopicsAndWait, withAdmin } from './admin.ts';
import { retry } from './retry.ts';

export interface GroupState {
  groupId: string;
  /** Empty, Dead (no such group), Stable, PreparingRebalance, ... as the broker says */
  state: string;
  /** client ids and hosts of the members, for messages */
  members: string[];
}

export async function describeGroups(kafka: Kafka, groupIds: string[]): Promise<GroupState[]> {
  return withAdmin(kafka, 'describe consumer groups', async (admin) => {
    const { groups } = await admin.describeGroups(groupIds);
    return groupIds.map((groupId) => {
      const g = groups.find((x) => x.groupId === groupId);
      return { groupId, state: g?.state ?? 'Dead', members: (g?.members ?? []).map((m) => `${m.clientId}@${m.clientHost}`) };
    });
  });
}

/** Deletes the groups that exist (an unknown group is already what we want). */
export async function deleteGroups(kafka: Kafka, groupIds: string[]): Promise<string[]> {
  return withAdmin(kafka, 'delete consumer groups', async (admin) => {
    const { groups } = await admin.describeGroups(groupIds);
    const existing = groups.filter((g) => g.state !== 'Dead').map((g) => g.groupId);
    if (existing.length) await admin.deleteGroups(existing);
    return existing;
  });
}

/**
 * Deletes the topics that exist, waits until the broker no longer lists them (deletion is asynchronous), then
 * creates all of them again, empty, with their planned partitions and configs.
 */
export async function recreateTopics(kafka: Kafka, plan: readonly PlannedTopic[], opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return withAdmin(kafka, 're-create topics', async (admin) => {
    const names = plan.map((p) => p.name);
    const present = new Set(await admin.listTopics());
    const deleted = names.filter((n) => present.has(n));
    if (deleted.length) await admin.deleteTopics({ topics: deleted, timeout: timeoutMs });
    await retry(
      async () => {
        const still = (await admin.listTopics()).filter((n) => deleted.includes(n));
        if (still.length) throw Object.assign(new Error(`still being deleted: ${still.join(', ')}`), { retriable: true });
      },
      { retriable: (e) => (e as { retriable?: boolean }).retriable === true, timeoutMs, maxPauseMs: 500 },
    ).catch((e: unknown) => {
      throw new FoldstreamError('KAFKA_UNAVAILABLE', `the broker did not finish deleting topics within ${timeoutMs} ms: ${(e as Error).message}`, {
        hint: 'check that delete.topic.enable is true on the brokers, then run reset again (it is safe to repeat)',
      });
    });
    // a topic deleted a moment ago may be refused as "marked for deletion" for a while: createTopicsAndWait retries
    await createTopicsAndWait(
      admin,
      plan.map((p) => ({
        topic: p.name,
        numPartitions: p.partitions,
        replicationFactor: p.replicationFactor,
        configEntries: Object.entries(p.config).map(([name, value]) => ({ name, value })),
      })),
      { timeoutMs },
    );
    return deleted;
  });
}

/** Deletes those of the topics that exist and waits until the broker no longer lists them; returns the ones deleted. */
export async function deleteTopicsThatExist(kafka: Kafka, names: string[], opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return withAdmin(kafka, 'delete topics', async (admin) => {
    const present = new Set(await admin.listTopics());
    const deleted = names.filter((n) => present.has(n));
    if (!deleted.length) return [];
    await admin.deleteTopics({ topics: deleted, timeout: timeoutMs });
    await retry(
      async () => {
        const still = (await admin.listTopics()).filter((n) => deleted.includes(n));
        if (still.length) throw Object.assign(new Error(`still being deleted: ${still.join(', ')}`), { retriable: true });
      },
      { retriable: (e) => (e as { retriable?: boolean }).retriable === true, timeoutMs, maxPauseMs: 500 },
    );
    return deleted;
  });
}

/** Which of the topics exist. */
export async function existingTopics(kafka: Kafka, names: string[]): Promise<string[]> {
  return withAdmin(kafka, 'list topics', async (admin) => {
    const present = new Set(await admin.listTopics());
    return names.filter((n) => present.has(n));
  });
}
