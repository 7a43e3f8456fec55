/**
 * The User aggregate of the example (topology.yaml, processor `users`), as a decider: CreateUser, UpdateEmail and
 * UpgradeStatus in; UserCreated (v2), EmailChanged and StatusUpgraded out. Business rules throw a DomainError, which
 * foldstream turns into a `rejected` reply with the message as the reason.
 */
import type { DeciderModule, EventDraft } from '../../src/processors/aggregate/decider.ts';
import type { CommandEnvelope, EventEnvelope } from '../../src/serde/envelope.ts';

/**
 * A business-rule rejection. foldstream answers `rejected` for any error named DomainError (foldstream's own, exported
 * by the package, is one); the example declares its own so that it imports nothing but types and loads from anywhere:
 * from this repository and from a directory mounted into the container image (docs/container.md), where a module may
 * also `import { DomainError } from 'foldstream'`.
 */
class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Ordered: a user can only move up. */
export const STATUSES = ['ACTIVE', 'SILVER', 'GOLD', 'VIP'] as const;
export type Status = (typeof STATUSES)[number];

export type User = { exists: false } | { exists: true; email: string; fullName: string; status: Status };

export const initialState = (): User => ({ exists: false });

const isStatus = (s: unknown): s is Status => STATUSES.includes(s as Status);

function email(command: CommandEnvelope): string {
  const e = command.data.email;
  if (typeof e !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(e)) throw new DomainError(`${JSON.stringify(e)} is not an email address`, 'INVALID_EMAIL');
  return e;
}

function existing(state: User, command: CommandEnvelope): Extract<User, { exists: true }> {
  if (!state.exists) throw new DomainError(`user ${command.aggregateId} does not exist`, 'USER_NOT_FOUND');
  return state;
}

export function decide(command: CommandEnvelope, state: User): EventDraft[] {
  switch (command.commandType) {
    case 'CreateUser': {
      if (state.exists) throw new DomainError(`user ${command.aggregateId} already exists`, 'USER_EXISTS');
      const fullName = typeof command.data.fullName === 'string' ? command.data.fullName : '';
      return [{ type: 'UserCreated', eventVersion: 2, data: { email: email(command), fullName, status: 'ACTIVE' } }];
    }
    case 'UpdateEmail': {
      const user = existing(state, command);
      const newEmail = email(command);
      // the same address again: nothing changed, so nothing happened (accepted, no event)
      if (newEmail === user.email) return [];
      return [{ type: 'EmailChanged', data: { oldEmail: user.email, newEmail } }];
    }
    case 'UpgradeStatus': {
      const user = existing(state, command);
      const status = command.data.status;
      if (!isStatus(status)) throw new DomainError(`unknown status ${JSON.stringify(status)}; one of ${STATUSES.join(', ')}`, 'STATUS_UNKNOWN');
      if (STATUSES.indexOf(status) <= STATUSES.indexOf(user.status)) {
        throw new DomainError(`cannot change status from ${user.status} to ${status}: only upgrades are allowed`, 'NOT_AN_UPGRADE');
      }
      return [{ type: 'StatusUpgraded', data: { oldStatus: user.status, status } }];
    }
    default:
      throw new DomainError(`unknown command type ${JSON.stringify(command.commandType)}`, 'COMMAND_UNKNOWN');
  }
}

export function evolve(state: User, event: EventEnvelope): User {
  const d = event.data;
  switch (event.eventType) {
    case 'UserCreated':
      return { exists: true, email: String(d.email), fullName: String(d.fullName ?? ''), status: isStatus(d.status) ? d.status : 'ACTIVE' };
    case 'EmailChanged':
      return state.exists ? { ...state, email: String(d.newEmail) } : state;
    case 'StatusUpgraded':
      return state.exists && isStatus(d.status) ? { ...state, status: d.status } : state;
    default:
      return state;
  }
}

// the module satisfies the contract foldstream loads it by
const _decider: DeciderModule<User> = { initialState, decide, evolve };
void _decider;
