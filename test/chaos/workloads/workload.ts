/** What a chaos workload provides: its topology, its input records, and which groups must catch up at the end. */
import type { BadKind } from '../corpus.ts';
import type { Rng } from '../rng.ts';

export interface TopologyParams {
  app: string;
  brokers: string[];
  partitions: number;
  replicationFactor: number;
  commitIntervalMs: number;
  maxBufferedRecords: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  transactionTimeoutMs: number;
  maxRecordBytes: number;
}

export interface GenRecord {
  topic: string;
  key: string | null;
  value: Buffer | null;
  /** explicit partition (records without a key); otherwise murmur2 of the key */
  partition?: number;
  headers?: Record<string, string>;
}

export interface DeclaredTopic {
  /** the alias GenRecord.topic refers to */
  alias: string;
  name: string;
  /** topic configs beyond min.insync.replicas */
  config: Record<string, string>;
}

export interface Workload {
  readonly name: string;
  /** topics the generator writes (created before the processors start, as the topology declares them) */
  inputTopics(app: string): DeclaredTopic[];
  /** processors and the input topics whose group offsets must reach the end before the run is verified */
  processors(app: string): { processor: string; inputs: string[] }[];
  /** topics of later stages, one list per stage, that some aimed kills wait for an open transaction on (scenarios/kill.ts) */
  aimAt?(app: string): string[][];
  /**
   * clean lag checks in a row before the run counts as caught up (default 1); more for a workload whose processors
   * form a cycle (a saga's commands go back to the aggregates whose events it reads), where one pass of the check can
   * miss work moving around it
   */
  settlePasses?: number;
  topologyYaml(p: TopologyParams): string;
  /** a generator of good records and of bad ones of a given kind */
  source(rng: Rng, opts: { keys: number; maxRecordBytes: number }): { good(): GenRecord; bad(kind: BadKind): GenRecord };
}

/** YAML for the processing: section every workload shares. */
export function processingYaml(p: TopologyParams): string {
  return `processing:
  commitIntervalMs: ${p.commitIntervalMs}
  maxBufferedRecords: ${p.maxBufferedRecords}
  sessionTimeoutMs: ${p.sessionTimeoutMs}
  heartbeatIntervalMs: ${p.heartbeatIntervalMs}
  rebalanceTimeoutMs: ${Math.max(10_000, p.sessionTimeoutMs * 2)}
  transactionTimeoutMs: ${p.transactionTimeoutMs}
  maxRecordBytes: ${p.maxRecordBytes}
  stateCleanupDelayMs: 600000
  retry: { attempts: 1, initialBackoffMs: 50, maxBackoffMs: 200 }
`;
}

export function topicYaml(alias: string, name: string, p: TopologyParams, config: Record<string, string> = {}): string {
  const all = { ...config, ...(p.replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {}) };
  const cfg = Object.entries(all).map(([k, v]) => `${k}: "${v}"`).join(', ');
  return `  ${alias}: { name: "${name}", partitions: ${p.partitions}, replicationFactor: ${p.replicationFactor}, config: { ${cfg} } }\n`;
}
