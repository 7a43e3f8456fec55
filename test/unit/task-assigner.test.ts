// The partition assigner of every processor's group: balanced, every task once, sticky, deterministic, and
// co-partitioned (partition p of every input on one member). No broker: assignTasks is pure, and the kafkajs
// assigner runs against a fake cluster.
import test from 'ava';
import { AssignerProtocol, type Cluster, type GroupMember } from 'kafkajs';
import { assignTasks, coPartitionedAssigner, type MemberTasks, type MemberUserData } from '../../src/kafka/task-assigner.ts';
import { prng } from '../helpers/prng.ts';

type Member = { memberId: string; data: MemberUserData };

const member = (instanceId: string, owned: number[], memberId = `member-${instanceId}`): Member => ({ memberId, data: { instanceId, owned } });

/** memberId → tasks, independent of the order of the result. */
function byMember(result: MemberTasks[]): Record<string, number[]> {
  return Object.fromEntries([...result].sort((a, b) => (a.memberId < b.memberId ? -1 : 1)).map((r) => [r.memberId, r.tasks]));
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Random members whose claims are disjoint and within range (what a healthy group reports). */
function disjointMembers(taskCount: number, memberCount: number, rand: () => number): Member[] {
  const members = Array.from({ length: memberCount }, (_, i) => member(`instance-${Math.floor(rand() * 1e6)}-${i}`, []));
  for (let t = 0; t < taskCount; t++) {
    const r = rand();
    if (r < 0.25) continue; // nobody owns it (a new partition, or its owner left)
    members[Math.floor(r * 1e6) % memberCount]!.data.owned.push(t);
  }
  return members;
}

/** Tasks members keep: assigned to a member that listed it in `owned`. */
function keptCount(members: Member[], result: MemberTasks[]): number {
  const owned = new Map(members.map((m) => [m.memberId, new Set(m.data.owned)]));
  return result.reduce((n, r) => n + r.tasks.filter((t) => owned.get(r.memberId)!.has(t)).length, 0);
}

/**
 * The most owned tasks any balanced assignment can leave in place: for every choice of the members that get the
 * larger share, a maximum matching of tasks to members that claim them (augmenting paths). Small inputs only.
 */
function bestKept(taskCount: number, members: Member[]): number {
  const m = members.length;
  const base = Math.floor(taskCount / m);
  const extra = taskCount % m;
  const claims = members.map((x) => new Set(x.data.owned.filter((t) => Number.isInteger(t) && t >= 0 && t < taskCount)));
  let best = 0;
  const choose = (from: number, left: number, chosen: number[]): void => {
    if (left === 0) {
      const slots: number[] = [];
      members.forEach((_, i) => {
        for (let k = 0; k < base + (chosen.includes(i) ? 1 : 0); k++) slots.push(i);
      });
      const slotOf = new Array<number>(slots.length).fill(-1);
      const augment = (task: number, seen: Set<number>): boolean => {
        for (let s = 0; s < slots.length; s++) {
          if (!claims[slots[s]!]!.has(task) || seen.has(s)) continue;
          seen.add(s);
          if (slotOf[s] === -1 || augment(slotOf[s]!, seen)) {
            slotOf[s] = task;
            return true;
          }
        }
        return false;
      };
      let matched = 0;
      for (let t = 0; t < taskCount; t++) if (augment(t, new Set())) matched++;
      best = Math.max(best, matched);
      return;
    }
    for (let i = from; i <= m - left; i++) choose(i + 1, left - 1, [...chosen, i]);
  };
  choose(0, extra, []);
  return best;
}

function assertEveryTaskOnce(t: import('ava').ExecutionContext, taskCount: number, result: MemberTasks[], what: string): void {
  const all = result.flatMap((r) => r.tasks).sort((a, b) => a - b);
  t.deepEqual(all, Array.from({ length: taskCount }, (_, i) => i), `${what}: every task exactly once`);
}

test('each member gets ⌊n/m⌋ or ⌈n/m⌉ tasks, and every task is assigned exactly once', (t) => {
  const rand = prng(1);
  for (let round = 0; round < 300; round++) {
    const n = Math.floor(rand() * 40);
    const m = 1 + Math.floor(rand() * 7);
    const members = disjointMembers(n, m, rand);
    const result = assignTasks(n, members);
    const what = `round ${round}: ${n} tasks, ${JSON.stringify(members)}`;
    t.is(result.length, m, `${what}: one entry per member`);
    t.deepEqual(result.map((r) => r.memberId).sort(), members.map((x) => x.memberId).sort(), what);
    for (const r of result) {
      t.true(r.tasks.length === Math.floor(n / m) || r.tasks.length === Math.ceil(n / m), `${what}: ${r.memberId} got ${r.tasks.length}`);
    }
    assertEveryTaskOnce(t, n, result, what);
  }
});

test('members keep the tasks they own as far as their share allows', (t) => {
  // 12 tasks over 3 members, each owning 4 of them: nothing moves.
  const members = [member('a', [0, 1, 2, 3]), member('b', [4, 5, 6, 7]), member('c', [8, 9, 10, 11])];
  t.deepEqual(byMember(assignTasks(12, members)), { 'member-a': [0, 1, 2, 3], 'member-b': [4, 5, 6, 7], 'member-c': [8, 9, 10, 11] });
  // Uneven ownership: the member that owned 7 keeps ⌈13/3⌉ = 5 of them, the others keep all of theirs.
  const uneven = assignTasks(13, [member('a', [11, 12]), member('b', [7, 8, 9, 10]), member('c', [0, 1, 2, 3, 4, 5, 6])]);
  const got = byMember(uneven);
  t.deepEqual(got['member-b'], [7, 8, 9, 10]);
  t.true([11, 12].every((x) => got['member-a']!.includes(x)));
  t.is(got['member-c']!.filter((x) => x <= 6).length, 5, 'c keeps as many of its own as its share allows');
});

test('a joining member takes only the tasks it must, from the members that have too many', (t) => {
  const before = [member('a', [0, 1, 2, 3, 4, 5]), member('b', [6, 7, 8, 9, 10, 11])];
  const after = byMember(assignTasks(12, [...before, member('c', [])]));
  t.is(after['member-c']!.length, 4);
  t.true(after['member-a']!.every((x) => x <= 5), 'a only keeps its own tasks');
  t.true(after['member-b']!.every((x) => x >= 6), 'b only keeps its own tasks');
  t.is(after['member-a']!.length + after['member-b']!.length, 8, 'exactly 4 tasks moved');
});

test("a leaving member's tasks are spread over the others, who keep their own", (t) => {
  const after = byMember(assignTasks(12, [member('a', [0, 1, 2, 3]), member('b', [4, 5, 6, 7])])); // c (8..11) left
  t.deepEqual(after['member-a']!.filter((x) => x < 8), [0, 1, 2, 3]);
  t.deepEqual(after['member-b']!.filter((x) => x < 8), [4, 5, 6, 7]);
  t.is(after['member-a']!.length, 6);
  t.is(after['member-b']!.length, 6);
  t.deepEqual([...after['member-a']!, ...after['member-b']!].filter((x) => x >= 8).sort((x, y) => x - y), [8, 9, 10, 11]);
});

test('with disjoint claims, as many owned tasks stay in place as any balanced assignment could keep', (t) => {
  const rand = prng(2);
  for (let round = 0; round < 300; round++) {
    const n = Math.floor(rand() * 11);
    const m = 1 + Math.floor(rand() * 4);
    const members = disjointMembers(n, m, rand);
    const result = assignTasks(n, members);
    t.is(keptCount(members, result), bestKept(n, members), `round ${round}: ${n} tasks, ${JSON.stringify(members)} → ${JSON.stringify(result)}`);
  }
});

test('the same members in any order get the same assignment', (t) => {
  const rand = prng(3);
  for (let round = 0; round < 100; round++) {
    const n = Math.floor(rand() * 30);
    const m = 1 + Math.floor(rand() * 6);
    const members = disjointMembers(n, m, rand);
    // stale and overlapping claims too: the result must not depend on who is listed first
    if (m > 1 && n > 0) members[1]!.data.owned.push(...members[0]!.data.owned.slice(0, 2), n + 3);
    const expected = byMember(assignTasks(n, members));
    for (let k = 0; k < 5; k++) t.deepEqual(byMember(assignTasks(n, shuffle(members, rand))), expected, `round ${round}, order ${k}`);
  }
});

test('owned tasks beyond the partition count are never assigned', (t) => {
  const result = assignTasks(4, [member('a', [0, 7, 12]), member('b', [1, 2, 3, 4, 5])]);
  assertEveryTaskOnce(t, 4, result, 'stale claims');
  const got = byMember(result);
  t.true(got['member-a']!.includes(0), 'a keeps 0');
  t.is(got['member-b']!.filter((x) => [1, 2, 3].includes(x)).length, 2, 'b keeps two of its own');
});

test('two members claiming the same task: one of them gets it, and every task is still assigned once', (t) => {
  const result = assignTasks(4, [member('a', [0, 1, 2]), member('b', [1, 2, 3])]);
  assertEveryTaskOnce(t, 4, result, 'overlapping claims');
  const got = byMember(result);
  t.true(got['member-a']!.includes(0) && got['member-b']!.includes(3), 'uncontested tasks stay');
  t.is(got['member-a']!.length, 2);
  t.is(got['member-b']!.length, 2);
});

test('claims a member cannot keep (beyond the partition count, repeated, or kept by another) do not enlarge its share at the cost of a task another member owns', (t) => {
  // b owns 2, 3, 4; a owns only 0 and 1 that exist. Balanced shares are 3 and 2: b keeping all three moves nothing.
  const stale = assignTasks(5, [member('a', [0, 1, 97, 98]), member('b', [2, 3, 4])]);
  t.is(keptCount([member('a', [0, 1, 97, 98]), member('b', [2, 3, 4])], stale), 5, `tasks beyond the count: ${JSON.stringify(stale)}`);
  const repeated = [member('a', [0, 0, 0, 1]), member('b', [2, 3, 4])];
  t.is(keptCount(repeated, assignTasks(5, repeated)), 5, `a task listed twice: ${JSON.stringify(assignTasks(5, repeated))}`);
  // a and b both claim 0..2 (say b is a zombie that came back); c owns 3 and 4 alone and can keep both.
  const contested = [member('a', [0, 1, 2]), member('b', [0, 1, 2]), member('c', [3, 4])];
  const result = byMember(assignTasks(5, contested));
  t.deepEqual(result['member-c'], [3, 4], `c keeps the tasks nobody else claims: ${JSON.stringify(result)}`);
});

test('no members: no assignment', (t) => {
  t.deepEqual(assignTasks(12, []), []);
  t.deepEqual(byMember(assignTasks(0, [member('a', [0, 1])])), { 'member-a': [] });
});

/** A kafkajs cluster as the assigner sees it: only partition metadata. */
function fakeCluster(partitions: Record<string, number>): Cluster {
  return {
    findTopicPartitionMetadata: (topic: string) =>
      Array.from({ length: partitions[topic] ?? 0 }, (_, i) => ({ partitionId: i, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0, offlineReplicas: [] })),
  } as unknown as Cluster;
}

async function runAssigner(partitions: Record<string, number>, members: Member[]): Promise<Map<string, Record<string, number[]>>> {
  const topics = Object.keys(partitions);
  const cluster = fakeCluster(partitions);
  const ctx = { cluster, groupId: 'group', logger: undefined as never };
  // Each member announces itself through its own assigner's protocol(): userData round-trips as on the wire.
  const group: GroupMember[] = members.map((m) => ({
    memberId: m.memberId,
    memberMetadata: coPartitionedAssigner(() => m.data)(ctx).protocol({ topics }).metadata,
  }));
  const leader = coPartitionedAssigner(() => members[0]!.data)(ctx);
  const assignments = await leader.assign({ members: group, topics });
  const out = new Map<string, Record<string, number[]>>();
  for (const a of assignments) {
    const decoded = AssignerProtocol.MemberAssignment.decode(a.memberAssignment);
    out.set(a.memberId, Object.fromEntries(Object.entries(decoded?.assignment ?? {}).map(([topic, ps]) => [topic, [...ps].sort((x, y) => x - y)])));
  }
  return out;
}

test('the kafkajs assigner gives each member the same partition numbers on every input topic', async (t) => {
  const partitions = { commands: 12, events: 12, timers: 12 };
  const members = [member('i-2', [3, 4, 5]), member('i-1', [0, 1, 2]), member('i-3', [])];
  const result = await runAssigner(partitions, members);
  t.is(result.size, 3);
  const seen: number[] = [];
  for (const [memberId, assignment] of result) {
    t.deepEqual(Object.keys(assignment).sort(), ['commands', 'events', 'timers'], memberId);
    t.deepEqual(assignment.events, assignment.commands, `${memberId}: events like commands`);
    t.deepEqual(assignment.timers, assignment.commands, `${memberId}: timers like commands`);
    t.is(assignment.commands!.length, 4);
    seen.push(...assignment.commands!);
  }
  t.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
  // stickiness survives the userData round trip
  t.true([0, 1, 2].every((p) => result.get('member-i-1')!.commands!.includes(p)), 'i-1 keeps 0, 1, 2');
  t.true([3, 4, 5].every((p) => result.get('member-i-2')!.commands!.includes(p)), 'i-2 keeps 3, 4, 5');
});

test('the kafkajs assigner only hands out partitions every input topic has', async (t) => {
  const result = await runAssigner({ a: 6, b: 4 }, [member('x', []), member('y', [])]);
  const all = [...result.values()].flatMap((r) => {
    t.deepEqual(r.a, r.b);
    return r.a!;
  });
  t.deepEqual(all.sort((x, y) => x - y), [0, 1, 2, 3]);
});
