/**
 * A store as its changelog holds it: the last value per key (a tombstone deletes), keys starting with NUL skipped,
 * and the last position marker per partition.
 *
 * Part of the chaos verifier: imports only Node and msgpackr, nothing from src/.
 */
import { canonical } from './compare.ts';
import type { VRecord } from './read-topics.ts';
import { readChangelogRecord } from './wire.ts';

export class ChangelogState {
  /** key → canonical value */
  readonly values = new Map<string, string>();
  /** partition → the input offsets of the last position marker */
  readonly positions = new Map<number, Record<string, string>>();
  /** key → partition it was last written in (a key must stay in one partition) */
  readonly partitionOf = new Map<string, number>();
  readonly movedKeys: string[] = [];
  records = 0;

  constructor(readonly topic: string) {}

  onRecord(r: VRecord): void {
    this.records++;
    const e = readChangelogRecord(r);
    if (e.kind === 'reserved') return;
    if (e.kind === 'position') {
      this.positions.set(r.partition, e.offsets);
      return;
    }
    const before = this.partitionOf.get(e.key);
    if (before !== undefined && before !== r.partition && this.movedKeys.length < 8) this.movedKeys.push(`${e.key}: ${before} → ${r.partition}`);
    this.partitionOf.set(e.key, r.partition);
    if (e.kind === 'tombstone') this.values.delete(e.key);
    else this.values.set(e.key, canonical(e.value));
  }
}
