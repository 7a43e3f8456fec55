/**
 * The chaos verifier. It shares no code with foldstream's processing: everything under test/chaos/verify/ imports
 * only Node, kafkajs and msgpackr, and each other (a test enforces it). Given a workload model it:
 *   1. waits briefly for every output, dead-letter and changelog partition to have no open transaction
 *      (last stable offset = high watermark, both asked of the partition leader), and reports those that keep one;
 *   2. reads the input topics (the generator's records) into the model;
 *   3. reads every output, dead-letter and changelog topic with read_committed into the model;
 *   4. reads the same topics with read_uncommitted and counts what aborted transactions left in the log;
 *   5. asks the model for its findings: exactly once and in order per key, stores equal to the model, the
 *      dead-letter topics holding exactly the bad records with their reasons.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { ModelCheck, ModelFindings } from './model.ts';
import { openTransactions, probeEnds, type PartitionEnds } from './offsets-probe.ts';
import { readTopics } from './read-topics.ts';

export interface OpenTransaction {
  topic: string;
  partition: number;
  lastStable: string;
  highWatermark: string;
}

export interface TransactionFindings {
  partitionsChecked: number;
  open: OpenTransaction[];
  /** per topic: records visible to read_committed */
  committedRecords: Record<string, number>;
  /** per topic: records in the log that belong to aborted transactions (read_uncommitted − read_committed) */
  abortedRecords: Record<string, number>;
}

export interface Verification {
  workload: string;
  model: ModelFindings;
  transactions: TransactionFindings;
  /** every anomaly, one line each; empty when the run is exactly-once and lossless */
  problems: string[];
}

export interface VerifyOptions {
  brokers: string[];
  check: ModelCheck;
  /** how long transaction markers may take to land before an open transaction is an anomaly */
  openTransactionGraceMs?: number;
  log?: (line: string) => void;
}

export async function verify(o: VerifyOptions): Promise<Verification> {
  const log = o.log ?? (() => undefined);
  const kafka = new Kafka({ brokers: o.brokers, clientId: 'chaos-verifier', logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const check = o.check;
    // 1. open transactions: markers of a just-committed transaction are written asynchronously, so allow a grace.
    const grace = o.openTransactionGraceMs ?? 10_000;
    const deadline = Date.now() + grace;
    let ends: PartitionEnds[];
    for (;;) {
      ends = await probeEnds(admin, check.transactionalTopics);
      if (openTransactions(ends).length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const open = openTransactions(ends).map((e) => ({ topic: e.topic, partition: e.partition, lastStable: String(e.lastStable), highWatermark: String(e.highWatermark) }));

    // 2. inputs
    const inputEnds = await probeEnds(admin, check.inputTopics);
    log(`verifier: reading ${inputEnds.reduce((n, e) => n + Number(e.highWatermark - e.logStart), 0)} input records`);
    await readTopics(kafka, inputEnds, { isolation: 'read_committed' }, (r) => check.onInput(r));

    // 3. outputs, read_committed
    const outEnds = await probeEnds(admin, check.outputTopics);
    const committed: Record<string, number> = Object.fromEntries(check.outputTopics.map((t) => [t, 0]));
    log(`verifier: reading ${check.outputTopics.length} output, dead-letter and changelog topics (read_committed)`);
    await readTopics(kafka, outEnds, { isolation: 'read_committed' }, (r) => {
      committed[r.topic]!++;
      check.onOutput(r);
    });

    // 4. the same, read_uncommitted: what aborted transactions left behind
    const all: Record<string, number> = Object.fromEntries(check.outputTopics.map((t) => [t, 0]));
    log('verifier: counting records of aborted transactions (read_uncommitted)');
    // read up to the same stable offsets, so records of a transaction still open are not counted as aborted
    const stable = outEnds.map((e) => ({ ...e, highWatermark: e.lastStable }));
    await readTopics(kafka, stable, { isolation: 'read_uncommitted' }, (r) => {
      all[r.topic]!++;
    });
    const aborted = Object.fromEntries(check.outputTopics.map((t) => [t, all[t]! - committed[t]!]));

    // 5. the model's findings
    const inputHw = new Map(inputEnds.map((e) => [`${e.topic}:${e.partition}`, e.highWatermark]));
    const model = check.finish(inputHw);
    const transactions: TransactionFindings = { partitionsChecked: ends.length, open, committedRecords: committed, abortedRecords: aborted };
    return { workload: check.workload, model, transactions, problems: problemsOf(model, transactions) };
  } finally {
    await admin.disconnect();
  }
}

/** One line per anomaly. */
export function problemsOf(m: ModelFindings, t: TransactionFindings): string[] {
  const p: string[] = [];
  if (m.input.classifierDisagreements) p.push(`input: ${m.input.classifierDisagreements} records the model classifies differently from the generator (a test bug): ${m.input.samples.join(' | ')}`);
  for (const [topic, f] of Object.entries(m.outputs)) {
    const what = [
      f.duplicates && `${f.duplicates} duplicates`,
      f.losses && `${f.losses} losses`,
      f.outOfOrder && `${f.outOfOrder} out of order`,
      f.wrongValues && `${f.wrongValues} wrong or unexpected values`,
    ].filter(Boolean);
    if (what.length) p.push(`output ${topic}: ${what.join(', ')}: ${f.samples.join(' | ')}`);
  }
  for (const s of m.stores) if (s.mismatches) p.push(`store ${s.store} (${s.changelog}): ${s.mismatches} mismatches with the model: ${s.samples.join(' | ')}`);
  for (const d of m.dlq) {
    const what = [
      d.missing && `${d.missing} missing`,
      d.extra && `${d.extra} extra`,
      d.duplicates && `${d.duplicates} duplicates`,
      d.wrongReason && `${d.wrongReason} with a wrong reason or contents`,
    ].filter(Boolean);
    if (what.length) p.push(`dead letters ${d.topic}: ${what.join(', ')} (expected ${d.expected}, found ${d.found}): ${d.samples.join(' | ')}`);
  }
  if (t.open.length) p.push(`open transactions: ${t.open.map((o) => `${o.topic}/${o.partition} LSO ${o.lastStable} < HW ${o.highWatermark}`).join(', ')}`);
  return p;
}
