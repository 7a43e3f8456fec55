/**
 * The event-sourcing workload's decider (`type: aggregate`, aggregateType Account): bank accounts.
 *
 *   OpenAccount {owner}  → AccountOpened {owner}   rejected ALREADY_OPEN when open, INVALID_OWNER without an owner
 *   Deposit {amount}     → Deposited {amount}      rejected NOT_OPEN, INVALID_AMOUNT (not an integer 1..1,000,000)
 *   Withdraw {amount}    → Withdrawn {amount}      rejected NOT_OPEN, INVALID_AMOUNT, INSUFFICIENT_FUNDS (balance < amount)
 *   CloseAccount {}      → AccountClosed {balance} rejected NOT_OPEN; the balance is paid out, the account may be opened again
 *   anything else        → rejected UNKNOWN_COMMAND
 * Checks run in the order listed. The verifier models these rules on its own (test/chaos/verify/model-bank.ts); keep
 * the two in step.
 */
import type { CommandEnvelope, EventEnvelope } from '../../../src/serde/envelope.ts';

class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface Account {
  open: boolean;
  owner: string | null;
  balance: number;
}

export const initialState: Account = { open: false, owner: null, balance: 0 };

const MAX_AMOUNT = 1_000_000;

function amountOf(data: Record<string, unknown>): number {
  const a = data.amount;
  if (typeof a !== 'number' || !Number.isSafeInteger(a) || a < 1 || a > MAX_AMOUNT) {
    throw new DomainError(`amount must be an integer from 1 to ${MAX_AMOUNT}`, 'INVALID_AMOUNT');
  }
  return a;
}

function mustBeOpen(state: Account): void {
  if (!state.open) throw new DomainError('the account is not open', 'NOT_OPEN');
}

export function decide(command: CommandEnvelope, state: Account) {
  switch (command.commandType) {
    case 'OpenAccount': {
      if (state.open) throw new DomainError('the account is already open', 'ALREADY_OPEN');
      const owner = command.data.owner;
      if (typeof owner !== 'string' || owner.length === 0) throw new DomainError('an account needs an owner', 'INVALID_OWNER');
      return { type: 'AccountOpened', data: { owner } };
    }
    case 'Deposit':
      mustBeOpen(state);
      return { type: 'Deposited', data: { amount: amountOf(command.data) } };
    case 'Withdraw': {
      mustBeOpen(state);
      const amount = amountOf(command.data);
      if (state.balance < amount) throw new DomainError(`insufficient funds: balance ${state.balance}, amount ${amount}`, 'INSUFFICIENT_FUNDS');
      return { type: 'Withdrawn', data: { amount } };
    }
    case 'CloseAccount':
      mustBeOpen(state);
      return { type: 'AccountClosed', data: { balance: state.balance } };
    default:
      throw new DomainError(`unknown command type ${JSON.stringify(command.commandType)}`, 'UNKNOWN_COMMAND');
  }
}

export function evolve(state: Account, event: EventEnvelope): Account {
  const data = event.data as { owner?: string; amount?: number };
  switch (event.eventType) {
    case 'AccountOpened':
      return { ...state, open: true, owner: data.owner ?? null };
    case 'Deposited':
      return { ...state, balance: state.balance + (data.amount ?? 0) };
    case 'Withdrawn':
      return { ...state, balance: state.balance - (data.amount ?? 0) };
    case 'AccountClosed':
      return { open: false, owner: null, balance: 0 };
    default:
      return state;
  }
}
