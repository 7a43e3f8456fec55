/**
 * What a workload model gives the verifier: which topics to read, what to do with each record, and the findings.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import type { DlqFindings } from './dlq.ts';
import type { SequenceFindings, StoreFindings } from './compare.ts';
import type { VRecord } from './read-topics.ts';

export interface InputSummary {
  records: number;
  good: number;
  bad: number;
  /** bad records per kind (from the generator's header), for the report */
  badByKind: Record<string, number>;
  /** records where the model's verdict (good/bad) differs from what the generator meant: a bug in the test itself */
  classifierDisagreements: number;
  samples: string[];
}

export interface ModelFindings {
  input: InputSummary;
  /** per output topic */
  outputs: Record<string, SequenceFindings>;
  stores: StoreFindings[];
  dlq: DlqFindings[];
  /** what the model saw the workload do, e.g. replies by status (shows which paths a run exercised) */
  stats: Record<string, number>;
}

export interface ModelCheck {
  readonly workload: string;
  /** topics the model reads first (the generator's input) */
  readonly inputTopics: string[];
  /** outputs, dead-letter topics and changelogs, read after the inputs */
  readonly outputTopics: string[];
  /** topics whose partitions must have no open transaction at the end */
  readonly transactionalTopics: string[];
  onInput(r: VRecord): void;
  onOutput(r: VRecord): void;
  /** `inputEnds`: "topic:partition" → high watermark of each input partition */
  finish(inputEnds: Map<string, bigint>): ModelFindings;
}

/** Where a bad record goes and why, as the model predicts it. */
export type Verdict<G> = { good: G } | { bad: string; why: string };

export function emptyInputSummary(): InputSummary {
  return { records: 0, good: 0, bad: 0, badByKind: {}, classifierDisagreements: 0, samples: [] };
}

/** Counts the verdict and cross-checks it with the generator's intent (header `chaos.bad`). */
export function countVerdict(s: InputSummary, r: VRecord, isBad: boolean, why: string, badKindHeader: string): void {
  s.records++;
  if (isBad) s.bad++;
  else s.good++;
  const meant = r.headers[badKindHeader];
  if (meant !== undefined) s.badByKind[meant] = (s.badByKind[meant] ?? 0) + 1;
  if ((meant !== undefined) !== isBad) {
    s.classifierDisagreements++;
    if (s.samples.length < 8) s.samples.push(`${r.topic}/${r.partition}@${r.offset}: generator meant ${meant ?? 'good'}, model says ${isBad ? `bad (${why})` : 'good'}`);
  }
}
