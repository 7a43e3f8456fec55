/**
 * The two workloads' inputs, generated deterministically from a seed, with what a correct processor must output:
 * - projection: user events (UserCreated v2, EmailChanged, StatusUpgraded) in per-aggregate version order, as the
 *   users aggregate would have written them; every event changes the view, so one view record per event;
 * - aggregate: commands to the users aggregate (docs/aggregates.md), a fixed mix of outcomes — accepted with and
 *   without events, conflicts (stale expectedVersion), rejections (domain errors) and retries of a commandId —
 *   decided here by a model of examples/users/user.ts so the outputs can be counted.
 * Keys are aggregate ids; the partition is murmur2 of the key, as the Java client and foldstream compute it.
 */
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { prng } from '../../test/helpers/prng.ts';

export type WorkloadName = 'projection' | 'aggregate';
export const WORKLOADS: WorkloadName[] = ['projection', 'aggregate'];

export interface InputRecord {
  key: string;
  partition: number;
  value: Buffer;
  /** projection: `${key}:${aggregateVersion}` of the event; aggregate: the commandId */
  id: string;
}

/** What the outputs of a correct run contain. */
export interface Expected {
  inputs: number;
  /** projection: view records; aggregate: replies */
  primary: number;
  /** aggregate: events */
  events: number;
  outcomes: Record<string, number>;
}

export const emptyExpected = (): Expected => ({ inputs: 0, primary: 0, events: 0, outcomes: {} });

const STATUSES = ['ACTIVE', 'SILVER', 'GOLD', 'VIP'] as const;

interface User {
  version: number;
  email: string;
  status: number;
  emails: number;
  /** commands sent to it, for retries */
  sent: { commandId: string; value: Buffer }[];
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

export interface GeneratorOptions {
  workload: WorkloadName;
  /** distinct aggregates over the whole stream */
  aggregates: number;
  /** inputs the stream will have; creations are spread evenly over it */
  total: number;
  partitions: number;
  seed: number;
  /** prefix of aggregate ids, so that streams of different runs never share an aggregate */
  prefix: string;
}

/** An endless, deterministic stream of inputs; next(now) stamps the record with the given time. */
export class Generator {
  readonly expected = emptyExpected();
  private readonly random: () => number;
  private readonly users: User[] = [];
  private created = 0;
  private n = 0;
  private readonly partitionOf = new Map<string, number>();

  constructor(private readonly o: GeneratorOptions) {
    this.random = prng(o.seed);
  }

  next(now: number): InputRecord {
    const o = this.o;
    const createDue = this.created < Math.min(o.aggregates, Math.ceil(((this.n + 1) * o.aggregates) / o.total));
    this.n++;
    this.expected.inputs++;
    const user = createDue || this.users.length === 0 ? undefined : this.users[Math.floor(this.random() * this.users.length)]!;
    return o.workload === 'projection' ? this.event(user, now) : this.command(user, now);
  }

  private key(index: number): string {
    return `${this.o.prefix}-${hex(index, 6)}`;
  }

  private partition(key: string): number {
    let p = this.partitionOf.get(key);
    if (p === undefined) {
      p = partitionForKey(key, this.o.partitions);
      this.partitionOf.set(key, p);
    }
    return p;
  }

  private newUser(): { index: number; user: User } {
    const index = this.created++;
    const user: User = { version: 0, email: '', status: 0, emails: 0, sent: [] };
    this.users.push(user);
    return { index, user };
  }

  private count(outcome: string): void {
    this.expected.outcomes[outcome] = (this.expected.outcomes[outcome] ?? 0) + 1;
  }

  /** Events as the users aggregate writes them (docs/wire-formats.md). */
  private event(existing: User | undefined, now: number): InputRecord {
    const timestamp = new Date(now).toISOString();
    let type: string;
    let data: Record<string, unknown>;
    let eventVersion = 1;
    let user = existing;
    let index: number;
    if (!user) {
      ({ index, user } = this.newUser());
      user.email = `u${index}@example.com`;
      type = 'UserCreated';
      eventVersion = 2;
      data = { email: user.email, fullName: `User ${index}`, status: 'ACTIVE' };
    } else {
      index = this.users.indexOf(user);
      if (user.status < STATUSES.length - 1 && this.random() < 0.25) {
        const old = STATUSES[user.status]!;
        user.status++;
        type = 'StatusUpgraded';
        data = { oldStatus: old, status: STATUSES[user.status] };
      } else {
        const old = user.email;
        user.email = `u${index}.${++user.emails}@example.org`;
        type = 'EmailChanged';
        data = { oldEmail: old, newEmail: user.email };
      }
    }
    user.version++;
    const key = this.key(index);
    const value = {
      eventId: `${hex(index, 8)}-0000-4000-8000-${hex(user.version, 12)}`,
      eventType: type,
      eventVersion,
      aggregateType: 'User',
      aggregateId: key,
      aggregateVersion: user.version,
      timestamp,
      correlationId: `c-${key}-${user.version}`,
      causationId: `c-${key}-${user.version}`,
      data,
      userId: 'bench',
    };
    this.expected.primary++;
    this.count('applied');
    return { key, partition: this.partition(key), value: Buffer.from(JSON.stringify(value)), id: `${key}:${user.version}` };
  }

  /** Commands with a fixed mix of outcomes, decided by a model of examples/users/user.ts. */
  private command(existing: User | undefined, now: number): InputRecord {
    const timestamp = new Date(now).toISOString();
    let user = existing;
    let index: number;
    let commandType: string;
    let data: Record<string, unknown>;
    let expectedVersion: number | undefined;
    let outcome: string;
    let events = 0;
    if (!user) {
      ({ index, user } = this.newUser());
      user.email = `u${index}@example.com`;
      commandType = 'CreateUser';
      data = { email: user.email, fullName: `User ${index}` };
      expectedVersion = 0;
      outcome = 'accepted';
      events = 1;
    } else {
      index = this.users.indexOf(user);
      const r = this.random();
      if (r < 0.05 && user.sent.length) {
        // a client retry: the very same command again gets its first reply, and no events
        const again = user.sent[Math.floor(this.random() * user.sent.length)]!;
        const key = this.key(index);
        this.expected.primary++;
        this.count('duplicate');
        return { key, partition: this.partition(key), value: again.value, id: again.commandId };
      }
      if (r < 0.15 && user.version > 0) {
        commandType = 'UpdateEmail';
        data = { email: `stale-${index}@example.net` };
        expectedVersion = user.version - 1;
        outcome = 'conflict';
      } else if (r < 0.22) {
        commandType = 'CreateUser';
        data = { email: `again-${index}@example.com` };
        outcome = 'rejected';
      } else if (r < 0.27) {
        commandType = 'UpdateEmail';
        data = { email: user.email };
        expectedVersion = user.version;
        outcome = 'accepted';
      } else if (r < 0.4) {
        commandType = 'UpgradeStatus';
        expectedVersion = user.version;
        if (user.status < STATUSES.length - 1) {
          user.status++;
          data = { status: STATUSES[user.status] };
          outcome = 'accepted';
          events = 1;
        } else {
          data = { status: 'SILVER' };
          outcome = 'rejected';
        }
      } else {
        commandType = 'UpdateEmail';
        user.email = `u${index}.${++user.emails}@example.org`;
        data = { email: user.email };
        expectedVersion = user.version;
        outcome = 'accepted';
        events = 1;
      }
    }
    user.version += events;
    const key = this.key(index);
    const commandId = `${key}-${this.n}`;
    const value: Record<string, unknown> = { commandId, commandType, aggregateId: key };
    if (expectedVersion !== undefined) value.expectedVersion = expectedVersion;
    Object.assign(value, { userId: 'bench', timestamp, data });
    const bytes = Buffer.from(JSON.stringify(value));
    user.sent.push({ commandId, value: bytes });
    if (user.sent.length > 8) user.sent.shift();
    this.expected.primary++;
    this.expected.events += events;
    this.count(outcome);
    return { key, partition: this.partition(key), value: bytes, id: commandId };
  }
}
