// The idempotency promise as a property (issue 14): random command streams that mix record times far ahead of and
// far behind the wall clock, commandIds reused across aggregates (of one partition and of others), retries (with the
// data's keys reordered and a new timestamp and userId) and commands sent again under a used id with other data,
// each reply checked against an independent model (test/helpers/user-model.ts): a retry within the retention gets its
// first reply, whatever the record times; an id is one aggregate's; another command under a used id is
// COMMAND_ID_REUSED. Legacy events (upcasters on appended history) are not mixed in: that is issue 14's defect 3,
// another branch's work.
import test from 'ava';
import { join } from 'node:path';
import type { Reply } from '../../src/serde/envelope.ts';
import { TopologyTestDriver } from '../../src/testing/index.ts';
import { ROOT } from '../helpers/cli.ts';
import { prng } from '../helpers/prng.ts';
import { STATUSES, UserModel, type Command, type ModelReply } from '../helpers/user-model.ts';

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;
const T0 = Date.parse('2026-06-01T00:00:00.000Z');

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
`;

interface Step {
  command: Command;
  /** record timestamp */
  timestamp: number;
  /** wall clock moves this far before the command */
  advance: number;
  kind: string;
}

/** A random stream; the wall clock moves less than the retention in all, so no commandId may be forgotten. */
function stream(seed: number, length: number): Step[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const aggregates = ['u-0', 'u-1', 'u-2', 'u-3', 'u-4', 'u-5'];
  const ids = ['pay-1', 'pay-2', 'pay-3', 'pay-4', 'pay-5', 'pay-6', 'pay-7', 'pay-8'];
  const sent: Command[] = [];
  const steps: Step[] = [];
  let wall = T0;
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
    sent.push(command);
    const skew = rnd();
    const timestamp = skew < 0.1 ? wall + Math.floor((1 + rnd() * 5) * YEAR) : skew < 0.2 ? wall - Math.floor((1 + rnd() * 5) * YEAR) : skew < 0.3 ? wall + Math.floor((rnd() - 0.5) * 20 * 60_000) : wall;
    steps.push({ command, timestamp, advance, kind });
  }
  return steps;
}

const comparable = (r: Reply | ModelReply | undefined) =>
  r && {
    status: r.status,
    aggregateVersion: r.aggregateVersion,
    events: 'eventIds' in r ? r.eventIds.length : r.events,
    ...('code' in r && r.code === 'COMMAND_ID_REUSED' ? { code: r.code } : {}),
  };

for (const seed of Array.from({ length: 24 }, (_, i) => 1400 + i)) {
  test(`seed ${seed}: every reply to a random stream with clock skew, reused ids and retries is the model's`, async (t) => {
    const d = await TopologyTestDriver.fromYaml(topology, ROOT, { wallClock: T0 });
    t.teardown(() => d.close());
    const model = new UserModel();
    for (const [i, s] of stream(seed, 150).entries()) {
      await d.advanceWallClock(s.advance);
      const reply = await d.pipeCommand(s.command, { timestamp: s.timestamp });
      const expected = model.apply(s.command);
      const at = `step ${i} (${s.kind} ${s.command.commandType} ${s.command.aggregateId} ${s.command.commandId}, record time ${new Date(s.timestamp).toISOString()})`;
      if (!t.deepEqual(comparable(reply), comparable(expected), at)) return;
      t.is(reply!.aggregateId, s.command.aggregateId, at);
    }
    const state = await d.store<{ version: number; state: { email: string; status: string } }>('users', 'state');
    t.deepEqual(
      Object.fromEntries([...state].map(([id, s]) => [id, [s.version, s.state.status, s.state.email]])),
      Object.fromEntries([...model.users].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, u]) => [id, [u.version, u.status, u.email]])),
    );
  });
}
