/**
 * Which instance runs a task of another consumer group's member: the group's members as the coordinator describes
 * them, each with the partitions its assignment gives it and the userData it joined with (instance id, query URL).
 * The query API uses it to tell a client where a key it cannot answer for is hosted. Answers are cached briefly:
 * a rebalance makes them stale for at most that long, and the instance named then answers 421 again.
 */
import { AssignerProtocol, type Admin, type Kafka } from 'kafkajs';
import { LazyConnection } from './lazy-connection.ts';
import { decodeUserData } from './task-assigner.ts';

export interface TaskOwner {
  instanceId: string;
  url: string | undefined;
}

const CACHE_MS = 2000;

export class TaskOwners {
  private readonly admin: Admin;
  private readonly connection: LazyConnection;
  private readonly cache = new Map<string, { at: number; owners: Promise<Map<number, TaskOwner>> }>();

  constructor(kafka: Kafka) {
    this.admin = kafka.admin({ retry: { retries: 2 } });
    this.connection = new LazyConnection('task owners', () => this.admin.connect(), () => this.admin.disconnect());
  }

  /** The owner of `partition` in `groupId`, or undefined when no member has it (a rebalance in progress). */
  async owner(groupId: string, partition: number): Promise<TaskOwner | undefined> {
    let entry = this.cache.get(groupId);
    if (!entry || Date.now() - entry.at > CACHE_MS) {
      entry = { at: Date.now(), owners: this.describe(groupId) };
      this.cache.set(groupId, entry);
      entry.owners.catch(() => this.cache.delete(groupId));
    }
    return (await entry.owners).get(partition);
  }

  private async describe(groupId: string): Promise<Map<number, TaskOwner>> {
    await this.connection.ensure();
    const { groups } = await this.admin.describeGroups([groupId]);
    const owners = new Map<number, TaskOwner>();
    for (const m of groups[0]?.members ?? []) {
      const data = decodeUserData({ memberId: m.memberId, memberMetadata: m.memberMetadata });
      const assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      // co-partitioned: every input topic gives the member the same partitions
      const tasks = Object.values(assignment?.assignment ?? {})[0] ?? [];
      for (const p of tasks) owners.set(p, { instanceId: data.instanceId, url: data.url });
    }
    return owners;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
