/**
 * The event-sourcing workload: commands to an `aggregate` (bank accounts, test/chaos/app/bank.ts) with some stale
 * expectedVersions (conflicts), rejected withdrawals and repeated commandIds, and two declarative projections of its
 * events: `account-view` (a view per account) and `balance-bands`, a projection with `groupBy` (the accounts counted and
 * their balances summed per balance band of 1000, through the internal repartition topic and the second stage
 * `balance-bands-group`). A third projection, `account-tiers`, is chained (`inputFormat: view`): it reads
 * account-view's view topic, each view record a `ViewUpdated` event whose aggregateVersion is the record's
 * `foldstream.view.version` header (a tombstone a `ViewDeleted`), and keeps a small view per account (tier, balance,
 * version, updates, previousTier). Closing an account (AccountClosed) deletes its view in all three projections:
 * account-view writes a tombstone, balance-bands takes the account out of its band, account-tiers deletes its view
 * on the upstream tombstone; an account opened again starts a new view at its next version.
 *
 * The aggregate writes `Deposited` at eventVersion 1 ({amount}); the projections are written against version 2
 * ({value, currency}), so every Deposited they read goes through the YAML upcaster 1 → 2 first (a deposit that skipped
 * it would add nothing to a balance). A too-new event is eventVersion 3.
 * Bad records go to both inputs: bad commands to the aggregate, bad events (including unknown event types and too-new
 * eventVersions) to the events topic both event projections read; account-tiers gets no bad input (its input is
 * foldstream's own view topic), so its dead-letter topic must stay empty. The verifier's models are
 * test/chaos/verify/model-bank.ts and model-tiers.ts.
 *
 * `balance-bands` also sums version² over each band's members (`versionSquares`): not for its meaning, but because it
 * makes every repartition record name the event that caused it (a join at version v adds v², a leave removes the
 * previous version's square, a stay adds 2v - 1), so the verifier can tell a duplicated or lost change from a
 * legitimately repeated one.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BAD_KIND_HEADER, envelopeSpoilable, json, spoil, type BadKind } from '../corpus.ts';
import type { Rng } from '../rng.ts';
import { processingYaml, topicYaml, type GenRecord, type TopologyParams, type Workload } from './workload.ts';

const MODULE = fileURLToPath(new URL('../app/bank.ts', import.meta.url));

export const bankTopics = (app: string) => ({
  commands: `${app}-commands`,
  events: `${app}-events`,
  replies: `${app}-replies`,
  view: `${app}-account-view`,
  bands: `${app}-balance-bands`,
  /** internal: written by balance-bands, read by its second stage balance-bands-group (docs/wire-formats.md) */
  repartition: `${app}-balance-bands-repartition`,
  /** the chained projection account-tiers' view topic (it reads `view`) */
  tiers: `${app}-account-tiers`,
});

/** account-tiers' tier of a view (the verifier restates it in verify/model-tiers.ts). */
const TIER_EXPRESSION = "data.balance >= 5000 ? 'gold' : (data.balance > 0 ? 'silver' : 'none')";

/** Command timestamps: deterministic, so a re-run of the same seed writes the same bytes. */
const BASE_TIME = Date.UTC(2026, 10, 27);

interface Sim {
  open: boolean;
  balance: number;
  version: number;
  recent: Buffer[];
}

export const bankWorkload: Workload = {
  name: 'bank',
  inputTopics: (app) => [
    { alias: 'commands', name: bankTopics(app).commands, config: {} },
    { alias: 'events', name: bankTopics(app).events, config: { 'retention.ms': '-1' } },
  ],
  processors: (app) => [
    { processor: 'accounts', inputs: [bankTopics(app).commands] },
    { processor: 'account-view', inputs: [bankTopics(app).events] },
    // after account-view: once that caught up, its view topic holds all the chained projection will read
    { processor: 'account-tiers', inputs: [bankTopics(app).view] },
    // the group stage after the first: once the first caught up, the repartition topic holds all it will
    { processor: 'balance-bands', inputs: [bankTopics(app).events] },
    { processor: 'balance-bands-group', inputs: [bankTopics(app).repartition] },
  ],
  // the groupBy stages, the group stage first: its writes to the grouped view; the first stage's to the repartition
  // topic; then the chained projection's writes to its view topic
  aimAt: (app) => [[bankTopics(app).bands], [bankTopics(app).repartition], [bankTopics(app).tiers]],
  topologyYaml(p: TopologyParams): string {
    const t = bankTopics(p.app);
    return `app: ${p.app}
kafka: { brokers: "${p.brokers.join(',')}", clientId: ${p.app} }
${processingYaml(p)}http: { port: 0, host: 127.0.0.1 }
modules: { root: "${dirname(MODULE)}" }
upcasters:
  - eventType: Deposited
    fromVersion: 1
    toVersion: 2
    rename: { amount: value }
    defaults: { currency: "'EUR'" }
topics:
${topicYaml('commands', t.commands, p)}${topicYaml('events', t.events, p, { 'retention.ms': '-1' })}${topicYaml('replies', t.replies, p)}${topicYaml('account-view', t.view, p, { 'cleanup.policy': 'compact' })}${topicYaml('balance-bands', t.bands, p, { 'cleanup.policy': 'compact' })}${topicYaml('account-tiers', t.tiers, p, { 'cleanup.policy': 'compact' })}processors:
  - name: accounts
    type: aggregate
    aggregateType: Account
    input: commands
    module: "${MODULE}"
    output: { events: events, replies: replies }
  - name: account-view
    type: projection
    input: events
    output: account-view
    unknownEvents: dlq
    maxEventVersion: { AccountOpened: 1, Deposited: 2, Withdrawn: 1, AccountClosed: 1 }
    on:
      AccountOpened: { set: { id: aggregateId, owner: data.owner, balance: "0", deposits: "0", withdrawals: "0", version: aggregateVersion } }
      Deposited: { set: { version: aggregateVersion }, increment: { balance: data.value, deposits: 1 } }
      Withdrawn: { set: { version: aggregateVersion }, increment: { balance: "0 - data.amount", withdrawals: 1 } }
      AccountClosed: { delete: true }
  - name: balance-bands
    type: projection
    input: events
    output: balance-bands
    unknownEvents: dlq
    maxEventVersion: { AccountOpened: 1, Deposited: 2, Withdrawn: 1, AccountClosed: 1 }
    on:
      AccountOpened: { set: { balance: "0", version: aggregateVersion } }
      Deposited: { set: { version: aggregateVersion }, increment: { balance: data.value } }
      Withdrawn: { set: { version: aggregateVersion }, increment: { balance: "0 - data.amount" } }
      AccountClosed: { delete: true }
    groupBy:
      key: "balance > 0 ? 'band-' & $floor(balance / 1000)"
      aggregate: { accounts: count, balance: { sum: balance }, versionSquares: { sum: "version * version" } }
  - name: account-tiers
    type: projection
    input: account-view
    inputFormat: view
    output: account-tiers
    unknownEvents: dlq
    on:
      ViewUpdated:
        set: { tier: "${TIER_EXPRESSION}", balance: data.balance, version: aggregateVersion, previousTier: $view.tier }
        increment: { updates: 1 }
      ViewDeleted: { delete: true }
`;
  },
  source(rng: Rng, opts) {
    const sims = new Map<string, Sim>();
    let seq = 0;
    let badSeq = 0;
    const perKind = new Map<BadKind, number>();
    const accountName = (i: number) => `acc-${String(i).padStart(6, '0')}`;
    const stamp = () => new Date(BASE_TIME + seq * 7).toISOString();

    /** the generator's own guess of what the aggregate will do, only to send mostly-right expectedVersions */
    const simulate = (s: Sim, c: { commandType: string; expectedVersion?: number; data: Record<string, unknown> }) => {
      if (c.expectedVersion !== undefined && c.expectedVersion !== s.version) return;
      const amount = c.data.amount as number;
      const validAmount = Number.isSafeInteger(amount) && amount >= 1 && amount <= 1_000_000;
      if (c.commandType === 'OpenAccount' && !s.open) {
        s.open = true;
        s.version++;
      } else if (c.commandType === 'Deposit' && s.open && validAmount) {
        s.balance += amount;
        s.version++;
      } else if (c.commandType === 'Withdraw' && s.open && validAmount && s.balance >= amount) {
        s.balance -= amount;
        s.version++;
      } else if (c.commandType === 'CloseAccount' && s.open) {
        s.open = false;
        s.balance = 0;
        s.version++;
      }
    };

    return {
      good(): GenRecord {
        const id = accountName(rng.int(opts.keys));
        const s = sims.get(id) ?? { open: false, balance: 0, version: 0, recent: [] };
        sims.set(id, s);
        if (s.recent.length && rng.chance(0.02)) {
          // a retry: the same command (same commandId, same bytes) again
          return { topic: 'commands', key: id, value: rng.pick(s.recent) };
        }
        seq++;
        const r = rng.next();
        let commandType: string;
        let data: Record<string, unknown>;
        if (!s.open && r < 0.9) [commandType, data] = ['OpenAccount', { owner: `owner-${id}` }];
        else if (!s.open && r < 0.95) [commandType, data] = ['Deposit', { amount: 10 }];
        else if (!s.open) [commandType, data] = ['CloseAccount', {}];
        else if (r < 0.04) [commandType, data] = ['OpenAccount', { owner: 'someone-else' }];
        else if (r < 0.055) [commandType, data] = ['CloseAccount', {}];
        else if (r < 0.55) [commandType, data] = ['Deposit', { amount: 1 + rng.int(1000) }];
        else if (r < 0.93) [commandType, data] = ['Withdraw', { amount: 1 + rng.int(1500) }];
        else if (r < 0.96) [commandType, data] = ['Transfer', { amount: 5, to: 'acc-000000' }];
        else [commandType, data] = [rng.pick(['Deposit', 'Withdraw']), { amount: rng.pick([0, -5, 2_000_000, 1.5]) }];
        const v = rng.next();
        const expectedVersion = v < 0.4 ? undefined : v < 0.92 ? s.version : s.version > 0 ? Math.max(0, s.version - 1 - rng.int(2)) : 3;
        const command: Record<string, unknown> = { commandId: `c-${seq}`, commandType, aggregateId: id, userId: `user-${seq % 13}`, timestamp: stamp(), data };
        if (expectedVersion !== undefined) command.expectedVersion = expectedVersion;
        if (rng.chance(0.3)) command.correlationId = `corr-${seq % 101}`;
        simulate(s, command as { commandType: string; expectedVersion?: number; data: Record<string, unknown> });
        const value = json(command);
        s.recent.push(value);
        if (s.recent.length > 4) s.recent.shift();
        return { topic: 'commands', key: id, value };
      },
      bad(kind: BadKind): GenRecord {
        const key = accountName(rng.int(opts.keys));
        const n = perKind.get(kind) ?? 0;
        perKind.set(kind, n + 1);
        const toEvents = kind === 'unknown-type' || kind === 'too-new-version' || n % 2 === 1;
        badSeq++;
        const tpl: Record<string, unknown> = toEvents
          ? { eventId: `bad-event-${badSeq}`, eventType: 'Deposited', eventVersion: 1, aggregateType: 'Account', aggregateId: key, aggregateVersion: 1, timestamp: stamp(), data: { amount: 5 } }
          : { commandId: `bad-command-${badSeq}`, commandType: 'Deposit', aggregateId: key, userId: 'user-bad', timestamp: stamp(), data: { amount: 5 } };
        const { key: k, value } = spoil(
          kind,
          envelopeSpoilable(key, tpl, toEvents, 'AccountFrozen'),
          rng,
          opts.maxRecordBytes,
        );
        return { topic: toEvents ? 'events' : 'commands', key: k, value, ...(k === null ? { partition: rng.int(1 << 30) } : {}), headers: { [BAD_KIND_HEADER]: kind } };
      },
    };
  },
};
