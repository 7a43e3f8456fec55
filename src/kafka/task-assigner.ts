/**
 * The partition assigner of every processor's consumer group. A task is a partition number: partition p of every
 * input topic goes to the same member (co-partitioning), and tasks stay with the instance that had them (stickiness,
 * by a stable instance id in the member's userData), so state is not moved without need. kafkajs's round-robin
 * assigner does neither.
 */
import { AssignerProtocol, type Assigner, type Cluster, type GroupMember, type PartitionAssigner } from 'kafkajs';

export const ASSIGNER_NAME = 'foldstream-copartitioned';
const VERSION = 1;

export interface MemberUserData {
  instanceId: string;
  /** tasks (partitions) this instance runs now */
  owned: number[];
  /** where the instance answers queries (http.advertisedUrl), so other instances can point clients at it */
  url?: string;
}

export interface MemberTasks {
  memberId: string;
  tasks: number[];
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Pure assignment: balanced (each member gets ⌊n/m⌋ or ⌈n/m⌉ tasks), and sticky: a member keeps as many of the
 * tasks it owned as its share allows. Members are ordered by instance id (plain code-unit order, not the locale's),
 * so every leader computes the same result. A task claimed by several members (a zombie came back) belongs to the
 * first of them; claims beyond the task count or repeated ones are ignored, so they cannot enlarge a share.
 */
export function assignTasks(taskCount: number, members: { memberId: string; data: MemberUserData }[]): MemberTasks[] {
  if (members.length === 0) return [];
  const sorted = [...members].sort((a, b) => byString(a.data.instanceId, b.data.instanceId) || byString(a.memberId, b.memberId));
  const claimedBy = new Map<number, string>();
  for (const m of sorted) {
    for (const t of m.data.owned) {
      if (Number.isInteger(t) && t >= 0 && t < taskCount && !claimedBy.has(t)) claimedBy.set(t, m.memberId);
    }
  }
  const claims = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  for (const [t, memberId] of [...claimedBy].sort(([a], [b]) => a - b)) claims.get(memberId)!.push(t);

  // The larger shares go to the members that hold the most claims, so fewer tasks move.
  const base = Math.floor(taskCount / sorted.length);
  let extra = taskCount % sorted.length;
  const quota = new Map<string, number>();
  for (const m of [...sorted].sort((a, b) => claims.get(b.memberId)!.length - claims.get(a.memberId)!.length)) {
    quota.set(m.memberId, base + (extra-- > 0 ? 1 : 0));
  }

  const result = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  const taken = new Set<number>();
  for (const m of sorted) {
    const mine = result.get(m.memberId)!;
    for (const t of claims.get(m.memberId)!) {
      if (mine.length >= quota.get(m.memberId)!) break;
      mine.push(t);
      taken.add(t);
    }
  }
  for (let t = 0; t < taskCount; t++) {
    if (taken.has(t)) continue;
    const target = sorted
      .filter((m) => result.get(m.memberId)!.length < quota.get(m.memberId)!)
      .sort((a, b) => result.get(a.memberId)!.length - result.get(b.memberId)!.length)[0]!;
    result.get(target.memberId)!.push(t);
    taken.add(t);
  }
  return sorted.map((m) => ({ memberId: m.memberId, tasks: result.get(m.memberId)!.sort((a, b) => a - b) }));
}

export function decodeUserData(member: GroupMember): MemberUserData {
  try {
    const meta = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
    const data = JSON.parse(meta?.userData?.toString() || '{}') as Partial<MemberUserData>;
    const out: MemberUserData = { instanceId: data.instanceId ?? member.memberId, owned: Array.isArray(data.owned) ? data.owned : [] };
    if (typeof data.url === 'string') out.url = data.url;
    return out;
  } catch {
    return { instanceId: member.memberId, owned: [] };
  }
}

/** A kafkajs PartitionAssigner; `userData` is read at every join, so `owned` is current. */
export function coPartitionedAssigner(userData: () => MemberUserData): PartitionAssigner {
  return ({ cluster }: { cluster: Cluster }): Assigner => ({
    name: ASSIGNER_NAME,
    version: VERSION,
    async assign({ members, topics }) {
      const counts = topics.map((t) => cluster.findTopicPartitionMetadata(t).length);
      // Inputs are validated to be co-partitioned; if metadata disagrees, only the common partitions are tasks.
      const taskCount = counts.length ? Math.min(...counts) : 0;
      const assignment = assignTasks(
        taskCount,
        members.map((m) => ({ memberId: m.memberId, data: decodeUserData(m) })),
      );
      return assignment.map(({ memberId, tasks }) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: VERSION,
          assignment: Object.fromEntries(topics.map((t) => [t, tasks])),
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: VERSION,
          topics,
          userData: Buffer.from(JSON.stringify(userData())),
        }),
      };
    },
  });
}
