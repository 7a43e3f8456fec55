/**
 * Model of the bank workload's chained projection `account-tiers` (docs/projections.md, "Chaining projections";
 * records and stores as docs/wire-formats.md describes them), written from the docs, not from foldstream's code.
 *
 * It reads account-view's view topic with `inputFormat: view`: each view record is an event `ViewUpdated` with the
 * view as `data`, the record key as aggregateId and the record's `foldstream.view.version` header as aggregateVersion
 * (a tombstone, which account-view writes when AccountClosed deletes a view, is `ViewDeleted` with the tombstone's
 * version header as aggregateVersion). Its rules:
 *
 *   ViewUpdated: set { tier: data.balance >= 5000 ? 'gold' : (data.balance > 0 ? 'silver' : 'none'),
 *                      balance: data.balance, version: aggregateVersion, previousTier: $view.tier }
 *                increment { updates: 1 }
 *   ViewDeleted: delete (a tombstone with header foldstream.view.version = the upstream version; the store keeps
 *                {view: null, version})
 *
 * `$view` is the view before the event, absent for an account's first record and for the first after a deletion, so
 * those views have no previousTier and `updates` starts again at 1.
 * The projection is idempotent by version: a view record at or below the stored version is skipped. account-view
 * writes exactly one record per event version (checked against the model there), so account-tiers must write, per
 * account, exactly one record per upstream version v = 1..N, in that order, in the account's murmur2 partition, with
 * header foldstream.view.version = v and the value above (or a tombstone), in which `updates` counts the records the
 * projection applied to the view it stored since it was created, so a record applied twice to the store (its skip by
 * version failing, or a restore that kept the effect of an aborted transaction) shows as a wrong value at every later
 * version, and a deletion that did not reach the store as a wrong value of the next view; previousTier makes each value
 * depend on the stored view too.
 *
 * Checked: that sequence (duplicates, losses, order, values, partition); the `view` store ({view, version}) read
 * through its changelog equal to the last view per account; each changelog partition's last position marker past
 * the last committed record of the same account-view partition; its dead-letter topic empty (no input of its is bad).
 * The view topic, the changelog and the DLQ are among the topics that must have no open transaction.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { canonical, checkPartition, compareSequence, compareStore, emptySequenceFindings, type Actual, type Expected, type SequenceFindings, type StoreFindings, viewActual } from './compare.ts';
import { DlqCheck, type DlqFindings } from './dlq.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { changelogName, dlqName } from './wire.ts';

export const CHAINED = 'account-tiers';
/** From this balance on an account is `gold`; above 0 `silver`; at 0 `none`. */
export const GOLD_FROM = 5000;

type Obj = Record<string, unknown>;

export function tierOf(balance: number): string {
  return balance >= GOLD_FROM ? 'gold' : balance > 0 ? 'silver' : 'none';
}

export class AccountTiersCheck {
  readonly dlq: DlqCheck;
  readonly viewLog: ChangelogState;
  /** account → predicted records, one per upstream version */
  private readonly expected = new Map<string, Expected[]>();
  /** account → the view after its last upstream record (null: deleted), and that record's version */
  private readonly views = new Map<string, { view: Obj | null; version: number }>();
  private readonly delivered = new Map<string, Actual[]>();
  /** upstream partition → offset of its last committed record (for the position markers) */
  private readonly lastUpstream = new Map<number, bigint>();
  private readonly extra: SequenceFindings = emptySequenceFindings();
  private tierChanges = 0;
  private deletions = 0;

  constructor(
    app: string,
    /** account-tiers' view topic */
    readonly topic: string,
    /** account-view's view topic, its input */
    readonly upstream: string,
    private readonly partitions: number,
  ) {
    this.dlq = new DlqCheck(dlqName(app, CHAINED), CHAINED);
    this.viewLog = new ChangelogState(changelogName(app, CHAINED, 'view'));
  }

  /** its view topic, view changelog and dead-letter topic: read, and checked for open transactions */
  get topics(): string[] {
    return [this.topic, this.viewLog.topic, this.dlq.topic];
  }

  /**
   * The model's account-view record of `account` at `version` (with this balance, or null for a tombstone): what
   * account-tiers reads next.
   */
  onUpstreamView(account: string, balance: number | null, version: number): void {
    const before = this.views.get(account)?.view ?? undefined;
    let view: Obj | null = null;
    if (balance === null) {
      this.deletions++;
    } else {
      view = { tier: tierOf(balance), balance, version, updates: ((before?.updates as number | undefined) ?? 0) + 1 };
      if (before) view.previousTier = before.tier;
      if (before && before.tier !== view.tier) this.tierChanges++;
    }
    this.views.set(account, { view, version });
    const list = this.expected.get(account) ?? [];
    list.push({ id: String(version), value: canonical(view) });
    this.expected.set(account, list);
  }

  /** A committed record of the upstream view topic (only its offset matters here). */
  noteUpstream(r: VRecord): void {
    if ((this.lastUpstream.get(r.partition) ?? -1n) < r.offset) this.lastUpstream.set(r.partition, r.offset);
  }

  /** true when the record was one of this processor's topics */
  onOutput(r: VRecord): boolean {
    switch (r.topic) {
      case this.topic: {
        const key = r.key?.toString('utf8') ?? '<null>';
        checkPartition(this.extra, r, this.partitions);
        const list = this.delivered.get(key) ?? [];
        list.push(viewActual(r));
        this.delivered.set(key, list);
        return true;
      }
      case this.viewLog.topic:
        this.viewLog.onRecord(r);
        return true;
      case this.dlq.topic:
        this.dlq.onRecord(r);
        return true;
    }
    return false;
  }

  finish(): { outputs: Record<string, SequenceFindings>; stores: StoreFindings[]; dlq: DlqFindings[]; stats: Record<string, number> } {
    const out = this.extra;
    for (const [account, expected] of this.expected) compareSequence(out, account, expected, this.delivered.get(account) ?? []);
    for (const [account, actual] of this.delivered) if (!this.expected.has(account)) compareSequence(out, account, [], actual);

    const storeModel = new Map<string, string>();
    for (const [account, { view, version }] of this.views) storeModel.set(account, canonical({ view, version }));
    const store = compareStore(`${CHAINED} view`, this.viewLog.topic, this.viewLog.values, storeModel);
    // positioned past its input: the last marker of each partition beyond the last committed upstream record there
    for (const [partition, last] of this.lastUpstream) {
      const marker = this.viewLog.positions.get(partition)?.[this.upstream];
      if (marker !== undefined && BigInt(marker) > last) continue;
      store.mismatches++;
      if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${marker ?? 'absent'}; ${this.upstream}/${partition} has a record at ${last}`);
    }

    const stats: Record<string, number> = { tiersGold: 0, tiersSilver: 0, tiersNone: 0, tiersDeleted: 0, tierChanges: this.tierChanges, tierDeletions: this.deletions };
    for (const { view } of this.views.values()) {
      const tier = view === null ? 'deleted' : String(view.tier);
      const k = `tiers${tier.charAt(0).toUpperCase()}${tier.slice(1)}`;
      stats[k] = (stats[k] ?? 0) + 1;
    }
    return { outputs: { [this.topic]: out }, stores: [store], dlq: [this.dlq.finish()], stats };
  }
}
