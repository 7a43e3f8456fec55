/**
 * The users example's rules written again, independently of examples/users/user.ts and of foldstream, so tests can
 * compare what foldstream produced with what the rules say: replies per command, events, views, users per status.
 * Also a seeded random command generator (creates, email changes, upgrades, stale versions, resent commandIds).
 */
import { randomUUID } from 'node:crypto';
import { prng } from './prng.ts';

export const STATUSES = ['ACTIVE', 'SILVER', 'GOLD', 'VIP'];

export interface Command {
  commandId: string;
  commandType: string;
  aggregateId: string;
  expectedVersion?: number;
  userId?: string;
  timestamp?: string;
  correlationId?: string;
  tenantId?: string;
  data: Record<string, unknown>;
}

export interface ModelUser {
  email: string;
  fullName: string;
  status: string;
  version: number;
}

export interface ModelReply {
  status: 'accepted' | 'rejected' | 'conflict';
  /** only for a commandId reused with another command: COMMAND_ID_REUSED */
  code?: string;
  aggregateVersion: number;
  /** events this command produced */
  events: number;
}

let seq = 0;
export function command(commandType: string, aggregateId: string, data: Record<string, unknown>, extra: Partial<Command> = {}): Command {
  return { commandId: extra.commandId ?? `cmd-${++seq}-${randomUUID().slice(0, 8)}`, commandType, aggregateId, data, ...extra };
}

/** What makes a command the same command again (docs/aggregates.md): its type and data, whatever their key order. */
function sameness(c: Command): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, sorted(x)])) : v;
  return JSON.stringify([c.commandType, sorted(c.data)]);
}

export class UserModel {
  readonly users = new Map<string, ModelUser>();
  /** first replies per aggregate and commandId (commandIds are per aggregate), with what the command was */
  readonly replies = new Map<string, { reply: ModelReply; command: string }>();

  apply(c: Command): ModelReply {
    const key = JSON.stringify([c.aggregateId, c.commandId]);
    const earlier = this.replies.get(key);
    if (earlier) {
      if (earlier.command === sameness(c)) return earlier.reply;
      return { status: 'rejected', code: 'COMMAND_ID_REUSED', aggregateVersion: this.users.get(c.aggregateId)?.version ?? 0, events: 0 };
    }
    const r = this.decide(c);
    this.replies.set(key, { reply: r, command: sameness(c) });
    return r;
  }

  /**
   * An aggregate's legacy history, given (the driver's appendEvents): each event lifted as the users topology's
   * upcaster says — UserCreated v1 had `name` and no status; v2 calls it fullName and starts every user ACTIVE —
   * written here again rather than taken from the topology, then folded as the rules say.
   */
  given(aggregateId: string, events: { type: string; eventVersion?: number; data?: Record<string, unknown> }[]): void {
    for (const e of events) {
      let data = e.data ?? {};
      if (e.type === 'UserCreated' && (e.eventVersion ?? 1) === 1) {
        const { name, ...rest } = data;
        data = { status: 'ACTIVE', ...rest, ...(name === undefined ? {} : { fullName: name }) };
      }
      const user = this.users.get(aggregateId);
      const version = (user?.version ?? 0) + 1;
      if (e.type === 'UserCreated') this.users.set(aggregateId, { email: String(data.email), fullName: String(data.fullName ?? ''), status: String(data.status), version });
      else if (!user) throw new Error(`model: ${e.type} given before UserCreated for ${aggregateId}`);
      else {
        if (e.type === 'EmailChanged') user.email = String(data.newEmail);
        if (e.type === 'StatusUpgraded') user.status = String(data.status);
        user.version = version;
      }
    }
  }

  private decide(c: Command): ModelReply {
    const user = this.users.get(c.aggregateId);
    const version = user?.version ?? 0;
    if (c.expectedVersion !== undefined && c.expectedVersion !== version) return { status: 'conflict', aggregateVersion: version, events: 0 };
    const reject = { status: 'rejected' as const, aggregateVersion: version, events: 0 };
    const email = c.data.email;
    const validEmail = typeof email === 'string' && /^[^@\s]+@[^@\s]+$/.test(email);
    switch (c.commandType) {
      case 'CreateUser':
        if (user || !validEmail) return reject;
        this.users.set(c.aggregateId, { email, fullName: String(c.data.fullName ?? ''), status: 'ACTIVE', version: 1 });
        return { status: 'accepted', aggregateVersion: 1, events: 1 };
      case 'UpdateEmail':
        if (!user || !validEmail) return reject;
        if (email === user.email) return { status: 'accepted', aggregateVersion: version, events: 0 };
        user.email = email;
        user.version++;
        return { status: 'accepted', aggregateVersion: user.version, events: 1 };
      case 'UpgradeStatus': {
        const to = STATUSES.indexOf(String(c.data.status));
        if (!user || to < 0 || to <= STATUSES.indexOf(user.status)) return reject;
        user.status = STATUSES[to]!;
        user.version++;
        return { status: 'accepted', aggregateVersion: user.version, events: 1 };
      }
      default:
        return reject;
    }
  }

  /** count of users per status, only statuses with users */
  byStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const u of this.users.values()) out[u.status] = (out[u.status] ?? 0) + 1;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }
}

/**
 * `count` random commands over `users` aggregates, with the versions a sender would have seen (tracked here, so
 * some are stale on purpose), invalid ones, and some commands sent again with the same commandId.
 */
export function randomCommands(count: number, users: number, seed: number, prefix = 'u'): Command[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const known = new UserModel();
  const out: Command[] = [];
  while (out.length < count) {
    const id = `${prefix}-${Math.floor(rnd() * users)}`;
    const roll = rnd();
    if (out.length > 0 && roll < 0.05) {
      out.push(pick(out)); // a retry with the same commandId
      continue;
    }
    const seen = known.users.get(id)?.version ?? 0;
    const stale = rnd() < 0.1 && seen > 0 ? seen - 1 : seen;
    const expected = rnd() < 0.3 ? {} : { expectedVersion: stale };
    const type = known.users.has(id) ? (roll < 0.1 ? 'CreateUser' : roll < 0.45 ? 'UpdateEmail' : 'UpgradeStatus') : 'CreateUser';
    const data: Record<string, unknown> =
      type === 'UpgradeStatus' ? { status: pick(STATUSES) } : { email: rnd() < 0.03 ? 'not-an-email' : `${id}-${Math.floor(rnd() * 3)}@example.com`, fullName: `Name ${id}` };
    const c = command(type, id, data, expected);
    known.apply(c);
    out.push(c);
  }
  return out;
}
