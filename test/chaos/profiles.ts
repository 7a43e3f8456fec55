/**
 * Run options and the two profiles: `short` (CI and `npm test`: a few minutes on two cores, next to other tests)
 * and `full` (the target: at least 1,000,000 events and 50 kills). Any option can be overridden.
 */
export type PlantKind = 'duplicate' | 'loss' | 'store' | 'open-transaction' | 'dlq-missing' | 'dlq-extra' | 'group-view' | 'group-store' | 'chain-duplicate' | 'chain-loss' | 'command-duplicate';

export interface RunOptions {
  profile: 'short' | 'full';
  scenario: string;
  workload: 'counter' | 'bank' | 'orders' | 'saga' | 'joins';
  seed: number;
  /** input records, good and bad */
  events: number;
  /** distinct keys (counter), accounts (bank), order slots (orders) or SKUs (saga: at most 12) */
  keys: number;
  /** share of input records spoilt with the bad-input corpus */
  badRate: number;
  /** fault actions: kills (kill, state-loss), joins/leaves (rebalance), pauses (zombie), processor kills (broker) */
  kills: number;
  /** broker kills (broker scenario) */
  brokerKills: number;
  /** the generator spreads the input over this long, and the faults with it */
  durationMs: number;
  /** the generator writes bursts of this many records (a backlog keeps transactions open; see generator.ts) */
  burstRecords: number;
  /** share of kills (and pauses) aimed at a moment the victim has a transaction open; the rest are purely random */
  targetOpenTransactions: number;
  partitions: number;
  commitIntervalMs: number;
  maxBufferedRecords: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  transactionTimeoutMs: number;
  maxRecordBytes: number;
  /** brokers for single-broker scenarios */
  brokers: string[];
  /** first client port of the three-broker cluster (broker scenario) */
  clusterBasePort: number;
  /** JVM heap per broker of that cluster */
  clusterHeap: string;
  /** give up waiting for the processors to consume everything after this long */
  catchUpTimeoutMs: number;
  /** where reports, logs and run folders go */
  reportDir: string;
  /** keep topics and state after a clean run (they are always kept after a failed one) */
  keep: boolean;
  /** write an anomaly into the outputs before verifying (shows that the verifier and the test catch it) */
  plant?: PlantKind;
}

const common = {
  scenario: 'kill',
  workload: 'counter' as const,
  seed: 20261127,
  badRate: 0.01,
  partitions: 12,
  commitIntervalMs: 1500,
  maxBufferedRecords: 20_000,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1000,
  transactionTimeoutMs: 60_000,
  maxRecordBytes: 16_384,
  brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((s) => s.trim()),
  clusterBasePort: 9192,
  clusterHeap: '256m',
  keep: false,
};

export const PROFILES: Record<RunOptions['profile'], Omit<RunOptions, 'reportDir'>> = {
  short: { ...common, profile: 'short', events: 20_000, keys: 300, kills: 5, brokerKills: 1, durationMs: 40_000, burstRecords: 2500, targetOpenTransactions: 0.75, catchUpTimeoutMs: 240_000 },
  full: { ...common, profile: 'full', events: 1_000_000, keys: 10_000, kills: 50, brokerKills: 6, durationMs: 900_000, burstRecords: 50_000, targetOpenTransactions: 0.75, catchUpTimeoutMs: 3_600_000 },
};
