// The idempotency promise as a property (issue 14): random command streams that mix record times far ahead of and
// far behind the wall clock, commandIds reused across aggregates (of one partition and of others), retries (with the
// data's keys reordered and a new timestamp and userId) and commands sent again under a used id with other data,
// each reply checked against an independent model (test/helpers/user-model.ts): a retry within the retention gets its
// first reply, whatever the record times; an id is one aggregate's; another command under a used id is
// COMMAND_ID_REUSED. Some aggregates start from legacy history (UserCreated v1, given through appendEvents before the
// stream or in its middle), which the users topology's upcaster lifts to v2 (name → fullName, status ACTIVE): the
// model lifts it on its own, and the aggregate's state after every step (fullName included) must be the model's.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Reply } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';
import { prng } from '../helpers/prng.ts';
import { STATUSES, UserModel, type Command, type ModelReply } from '../helpers/user-model.ts';
import type { EventDraft } from '../../src/processors/aggregate/decider.ts';

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;
const T0 = Date.parse('2026-06-01T00:00:00.000Z');

/** the users topology's own upcasters (topology.yaml), as written there */
const upcasters = JSON.stringify((parse(readFileSync(join(ROOT, 'topology.yaml'), 'utf8')) as { upcasters: unknown }).upcasters);

const topology = `app: idem
kafka: { brokers: "127.0.0.1:9092" }
topics:
  commands: { name: idem-commands, partitions: 2 }
  events: { name: idem-events, partitions: 2 }
  replies: { name: idem-replies, partitions: 2 }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events, replies: replies }
    module: ${join(ROOT, 'examples/users/user.ts')}
    commandRetentionMs: ${HOUR}
upcasters: ${upcasters}
`;

interface Step {
  /** legacy history given to an aggregate that has none yet (instead of a command) */
  legacy?: { aggregateId: string; events: EventDraft[] };
  command: Command;
  /** record timestamp */
  timestamp: number;
  /** wall clock moves this far before the command */
  advance: number;
  kind: string;
}

/** An aggregate's history as an older version wrote it: UserCreated v1 (`name`, no status), then later events. */
function legacyHistory(rnd: () => number, aggregateId: string): EventDraft[] {
  const events: EventDraft[] = [{ type: 'UserCreated', eventVersion: 1, data: { email: `${aggregateId}-0@example.com`, name: `Legacy ${aggregateId} ${Math.floor(rnd() * 100)}` } }];
  let email = `${aggregateId}-0@example.com`;
  let status = 0;
  for (let n = Math.floor(rnd() * 4); n > 0; n--) {
    if (rnd() < 0.5) {
      const newEmail = `${aggregateId}-${1 + Math.floor(rnd() * 2)}@example.com`;
      if (newEmail !== email) events.push({ type: 'EmailChanged', data: { oldEmail: email, newEmail } });
      email = newEmail;
    } else if (status < STATUSES.length - 1) {
      const to = status + 1 + Math.floor(rnd() * (STATUSES.length - 1 - status));
      events.push({ type: 'StatusUpgraded', data: { oldStatus: STATUSES[status], status: STATUSES[to] } });
      status = to;
    }
  }
  return events;
}

/**
 * A random stream; the wall clock moves less than the retention in all, so no commandId may be forgotten. `created`
 * starts with the aggregates given legacy history before the stream; more get theirs in the stream while they have
 * no events yet.
 */
function stream(seed: number, length: number, created: Set<string>): { before: Step[]; steps: Step[] } {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const aggregates = ['u-0', 'u-1', 'u-2', 'u-3', 'u-4', 'u-5'];
  const ids = ['pay-1', 'pay-2', 'pay-3', 'pay-4', 'pay-5', 'pay-6', 'pay-7', 'pay-8'];
  const sent: Command[] = [];
  const steps: Step[] = [];
  const before: Step[] = [];
  let wall = T0;
  const legacy = (aggregateId: string) => {
    created.add(aggregateId);
    return { aggregateId, events: legacyHistory(rnd, aggregateId) };
  };
  for (const id of aggregates) if (rnd() < 0.3) before.push({ legacy: legacy(id), command: undefined!, timestamp: wall, advance: 0, kind: 'legacy' });
  const fresh = (aggregateId: string, commandId: string): Command => {
    const roll = rnd();
    const expected = rnd() < 0.2 ? { expectedVersion: Math.floor(rnd() * 3) } : {};
    if (roll < 0.35) return { commandId, commandType: 'CreateUser', aggregateId, data: { email: `${aggregateId}-${Math.floor(rnd() * 3)}@example.com`, fullName: 'N' }, ...expected };
    if (roll < 0.65) return { commandId, commandType: 'UpdateEmail', aggregateId, data: { email: `${aggregateId}-${Math.floor(rnd() * 3)}@example.com` }, ...expected };
    return { commandId, commandType: 'UpgradeStatus', aggregateId, data: { status: pick(STATUSES) }, ...expected };
  };
  for (let n = 0; n < length; n++) {
    const advance = Math.floor(rnd() * 20_000);
    wall += advance;
    const roll = rnd();
    const untouched = aggregates.filter((a) => !created.has(a));
    if (untouched.length && roll > 0.97) {
      steps.push({ legacy: legacy(pick(untouched)), command: undefined!, timestamp: wall, advance, kind: 'legacy' });
      continue;
    }
    let command: Command;
    let kind: string;
    if (sent.length && roll < 0.2) {
      // a retry: the same command, its data re-encoded in another key order, with a time and user of its own
      const c = pick(sent);
      command = { ...c, data: Object.fromEntries(Object.entries(c.data).reverse()), timestamp: new Date(wall).toISOString(), userId: `client-${n}` };
      kind = 'retry';
    } else if (sent.length && roll < 0.27) {
      // another command under an id this aggregate has used
      const c = pick(sent);
      command = fresh(c.aggregateId, c.commandId);
      kind = 'reuse';
    } else {
      // ids come from a small pool: the same id is often used by several aggregates, of one partition or two
      command = fresh(pick(aggregates), rnd() < 0.6 ? pick(ids) : `c-${seed}-${n}`);
      kind = 'new';
    }
    if (command.commandType === 'CreateUser') created.add(command.aggregateId);
    sent.push(command);
    const skew = rnd();
    const timestamp = skew < 0.1 ? wall + Math.floor((1 + rnd() * 5) * YEAR) : skew < 0.2 ? wall - Math.floor((1 + rnd() * 5) * YEAR) : skew < 0.3 ? wall + Math.floor((rnd() - 0.5) * 20 * 60_000) : wall;
    steps.push({ command, timestamp, advance, kind });
  }
  return { before, steps };
}

const comparable = (r: Reply | ModelReply | undefined) =>
  r && {
    status: r.status,
    aggregateVersion: r.aggregateVersion,
    events: 'eventIds' in r ? r.eventIds.length : r.events,
    ...('code' in r && r.code === 'COMMAND_ID_REUSED' ? { code: r.code } : {}),
  };

const views = (users: Iterable<[string, { version: number; state: { email: string; fullName: string; status: string } }]>) =>
  Object.fromEntries([...users].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, s]) => [id, [s.version, s.state.status, s.state.email, s.state.fullName]]));
const modelViews = (model: UserModel) => views([...model.users].map(([id, u]) => [id, { version: u.version, state: u }]));

for (const seed of Array.from({ length: 24 }, (_, i) => 1400 + i)) {
  test(`seed ${seed}: every reply to a random stream with clock skew, reused ids, retries and legacy history is the model's`, async (t) => {
    const d = await TopologyTestDriver.fromYaml(topology, ROOT, { wallClock: T0 });
    t.teardown(() => d.close());
    const model = new UserModel();
    const { before, steps } = stream(seed, 150, new Set());
    for (const s of before) {
      await d.appendEvents('users', s.legacy!.aggregateId, s.legacy!.events);
      model.given(s.legacy!.aggregateId, s.legacy!.events);
    }
    t.deepEqual(views(await d.store('users', 'state')), modelViews(model), 'legacy history given before the stream');
    for (const [i, s] of steps.entries()) {
      await d.advanceWallClock(s.advance);
      if (s.legacy) {
        await d.appendEvents('users', s.legacy.aggregateId, s.legacy.events);
        model.given(s.legacy.aggregateId, s.legacy.events);
        if (!t.deepEqual(views(await d.store('users', 'state')), modelViews(model), `step ${i} (legacy history of ${s.legacy.aggregateId})`)) return;
        continue;
      }
      const reply = await d.pipeCommand(s.command, { timestamp: s.timestamp });
      const expected = model.apply(s.command);
      const at = `step ${i} (${s.kind} ${s.command.commandType} ${s.command.aggregateId} ${s.command.commandId}, record time ${new Date(s.timestamp).toISOString()})`;
      if (!t.deepEqual(comparable(reply), comparable(expected), at)) return;
      t.is(reply!.aggregateId, s.command.aggregateId, at);
      const state = await d.store<{ version: number; state: { email: string; fullName: string; status: string } }>('users', 'state');
      const one = (m: Record<string, unknown>) => m[s.command.aggregateId];
      if (!t.deepEqual(one(views(state)), one(modelViews(model)), `${at}: state`)) return;
    }
    t.true(before.length + steps.filter((s) => s.legacy).length > 0, 'some aggregates had legacy history');
    t.deepEqual(views(await d.store('users', 'state')), modelViews(model));
  });
}
