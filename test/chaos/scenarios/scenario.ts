/** A chaos scenario: which faults it injects while the generator writes, and how it wants the run tuned. */
import type { ChaosContext } from '../chaos-context.ts';
import type { RunOptions } from '../profiles.ts';

export interface Scenario {
  name: string;
  /** one line for the report */
  description: string;
  /** run against a three-broker cluster (replication factor 3, min.insync.replicas 2) */
  cluster?: boolean;
  /** settings this scenario needs, applied over the profile's */
  tune?(o: RunOptions): Partial<RunOptions>;
  /** injects faults until its quota is spent and the generator is done; leaves at least one instance running */
  chaos(ctx: ChaosContext, o: RunOptions): Promise<void>;
}

/** Mean gap between fault actions so that `count` of them fill the generator's duration. */
export function meanGapMs(o: RunOptions, count: number): number {
  return Math.max(1500, o.durationMs / Math.max(1, count));
}
