/**
 * Model of the counting workload (test/chaos/app/counter.ts, a `type: custom` processor), written from its contract,
 * not from its code:
 *
 * Input value (JSON): {"type":"Tick","v":1,"key":<the record key>,"seq":<integer ≥ 1>}. For each good record the
 * processor adds 1 to the key's count in store `counts` and forwards {key, n, seq} to the output topic, keyed by key
 * (so the n of one key run 1..N, in input order). A record is bad, and dead-lettered instead, when:
 *   - key + value are larger than processing.maxRecordBytes           → RECORD_TOO_LARGE   (the runtime's check)
 *   - the value is not UTF-8 JSON (empty value included)               → DESERIALIZATION_FAILED (the json codec)
 *   - anything else the processor refuses (it throws a DomainError):   → HANDLER_FAILED
 *     null key, null value, a value that is not an object, type ≠ "Tick", v ≠ 1 (v = 2 is "too new"),
 *     key field not a string or ≠ the record key, seq not a safe integer ≥ 1.
 * The custom kind does not require keys (the runtime's KEY_MISSING check is for events and commands), so a null key
 * reaches the processor and is refused there.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { checkPartition, compareSequence, compareStore, canonical, emptySequenceFindings, type Actual, type Expected, type SequenceFindings } from './compare.ts';
import { DlqCheck } from './dlq.ts';
import { countVerdict, emptyInputSummary, type ModelCheck, type ModelFindings, type Verdict } from './model.ts';
import type { VRecord } from './read-topics.ts';
import { ChangelogState } from './store.ts';
import { at, BAD_KIND_HEADER, changelogName, dlqName } from './wire.ts';

export interface CounterTopics {
  app: string;
  input: string;
  output: string;
  partitions: number;
  maxRecordBytes: number;
}

export const COUNTER_PROCESSOR = 'counter';
export const COUNTER_STORE = 'counts';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function classifyCounterInput(r: VRecord, maxRecordBytes: number): Verdict<{ key: string; seq: number }> {
  const size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (size > maxRecordBytes) return { bad: 'RECORD_TOO_LARGE', why: `${size} bytes` };
  let v: unknown = null;
  if (r.value !== null) {
    try {
      v = JSON.parse(utf8.decode(r.value));
    } catch (e) {
      return { bad: 'DESERIALIZATION_FAILED', why: (e as Error).message };
    }
  }
  const refuse = (why: string) => ({ bad: 'HANDLER_FAILED', why });
  if (r.key === null) return refuse('null key');
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return refuse('value is not an object');
  const o = v as Record<string, unknown>;
  if (o.type !== 'Tick') return refuse(`type ${JSON.stringify(o.type)}`);
  if (o.v !== 1) return refuse(`v ${JSON.stringify(o.v)}`);
  if (typeof o.key !== 'string') return refuse('key field is not a string');
  if (o.key !== r.key.toString('utf8')) return refuse('key field differs from the record key');
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) return refuse(`seq ${String(o.seq)}`);
  return { good: { key: o.key, seq: o.seq } };
}

export class CounterModel implements ModelCheck {
  readonly workload = 'counter';
  readonly inputTopics: string[];
  readonly outputTopics: string[];
  readonly transactionalTopics: string[];
  private readonly summary = emptyInputSummary();
  /** key → seqs of its good records, in input order */
  private readonly goodSeqs = new Map<string, number[]>();
  /** key → delivered outputs */
  private readonly delivered = new Map<string, Actual[]>();
  private readonly dlq: DlqCheck;
  private readonly changelog: ChangelogState;
  /** outputs outside their key's partition (only wrongValues and samples are used) */
  private readonly placement = emptySequenceFindings();

  constructor(private readonly t: CounterTopics) {
    const dlq = dlqName(t.app, COUNTER_PROCESSOR);
    const changelog = changelogName(t.app, COUNTER_PROCESSOR, COUNTER_STORE);
    this.inputTopics = [t.input];
    this.outputTopics = [t.output, dlq, changelog];
    this.transactionalTopics = [t.output, dlq, changelog];
    this.dlq = new DlqCheck(dlq, COUNTER_PROCESSOR);
    this.changelog = new ChangelogState(changelog);
  }

  onInput(r: VRecord): void {
    const v = classifyCounterInput(r, this.t.maxRecordBytes);
    countVerdict(this.summary, r, 'bad' in v, 'bad' in v ? `${v.bad}: ${v.why}` : '', BAD_KIND_HEADER);
    if ('bad' in v) {
      this.dlq.expect(r, v.bad, r.headers[BAD_KIND_HEADER] ?? v.why);
      return;
    }
    const seqs = this.goodSeqs.get(v.good.key);
    if (seqs) seqs.push(v.good.seq);
    else this.goodSeqs.set(v.good.key, [v.good.seq]);
  }

  onOutput(r: VRecord): void {
    if (r.topic === this.dlq.topic) return this.dlq.onRecord(r);
    if (r.topic === this.changelog.topic) return this.changelog.onRecord(r);
    const key = r.key?.toString('utf8') ?? '<null>';
    let value: { key?: unknown; n?: unknown; seq?: unknown } = {};
    try {
      value = JSON.parse(r.value?.toString('utf8') ?? 'null') ?? {};
    } catch {
      // an unreadable output counts as a wrong value below
    }
    checkPartition(this.placement, r, this.t.partitions);
    const list = this.delivered.get(key) ?? [];
    list.push({ id: String(value.n), value: canonical({ key: value.key, n: value.n, seq: value.seq }), where: at(r) });
    this.delivered.set(key, list);
  }

  finish(inputEnds: Map<string, bigint>): ModelFindings {
    const out: SequenceFindings = emptySequenceFindings();
    const storeModel = new Map<string, string>();
    for (const [key, seqs] of this.goodSeqs) {
      const expected: Expected[] = seqs.map((seq, i) => ({ id: String(i + 1), value: canonical({ key, n: i + 1, seq }) }));
      compareSequence(out, key, expected, this.delivered.get(key) ?? []);
      storeModel.set(key, canonical(seqs.length));
    }
    for (const [key, actual] of this.delivered) if (!this.goodSeqs.has(key)) compareSequence(out, key, [], actual);
    out.wrongValues += this.placement.wrongValues;
    out.samples.push(...this.placement.samples);

    const store = compareStore(COUNTER_STORE, this.changelog.topic, this.changelog.values, storeModel);
    for (const m of this.changelog.movedKeys) {
      store.mismatches++;
      store.samples.push(`key written in two partitions: ${m}`);
    }
    // The last position marker of each changelog partition must be the input partition's end.
    for (const [tp, end] of inputEnds) {
      const partition = Number(tp.slice(tp.lastIndexOf(':') + 1));
      if (end === 0n) continue;
      const at = this.changelog.positions.get(partition)?.[this.t.input];
      if (at !== String(end)) {
        store.mismatches++;
        if (store.samples.length < 12) store.samples.push(`position marker of partition ${partition} is ${at ?? 'absent'}; input ends at ${end}`);
      }
    }
    const stats = { keys: this.goodSeqs.size, expectedOutputs: out.expected };
    return { input: this.summary, outputs: { [this.t.output]: out }, stores: [store], dlq: [this.dlq.finish()], stats };
  }
}
