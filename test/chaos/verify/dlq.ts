/**
 * The dead-letter topic of one processor against the bad records the model expects there: each exactly once, in the
 * source record's partition, with its key and bytes, its reason (`foldstream.error.code`), a message and the source
 * coordinates (docs/wire-formats.md, "Dead letters").
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import { createHash } from 'node:crypto';
import type { VRecord } from './read-topics.ts';
import { DLQ, where } from './wire.ts';

export interface DlqFindings {
  topic: string;
  expected: number;
  found: number;
  /** expected dead letters not in the topic */
  missing: number;
  /** dead letters of records the model considers good (or of no input record at all) */
  extra: number;
  /** a source record dead-lettered more than once */
  duplicates: number;
  /** right record, wrong reason code, partition, key, bytes or headers */
  wrongReason: number;
  /** expected count per reason code, e.g. { DESERIALIZATION_FAILED: 12 } */
  byCode: Record<string, number>;
  samples: string[];
}

interface Entry {
  code: string;
  kind: string;
  keyHash: string;
  valueHash: string;
  seenAt: string | undefined;
}

interface Found {
  headers: Record<string, string>;
  partition: number;
  keyHash: string;
  valueHash: string;
  at: string;
}

const hash = (b: Buffer | null) => (b === null ? 'null' : createHash('sha1').update(b).digest('base64'));

export class DlqCheck {
  private readonly expected = new Map<string, Entry>();
  private readonly found: Found[] = [];
  private readonly f: DlqFindings;

  constructor(
    readonly topic: string,
    private readonly processor: string,
  ) {
    this.f = { topic, expected: 0, found: 0, missing: 0, extra: 0, duplicates: 0, wrongReason: 0, byCode: {}, samples: [] };
  }

  private sample(s: string): void {
    if (this.f.samples.length < 8) this.f.samples.push(s);
  }

  /** The model says this input record must be dead-lettered with this code. */
  expect(input: VRecord, code: string, kind: string): void {
    this.expected.set(`${input.topic}:${input.partition}:${input.offset}`, { code, kind, keyHash: hash(input.key), valueHash: hash(input.value), seenAt: undefined });
    this.f.expected++;
    this.f.byCode[code] = (this.f.byCode[code] ?? 0) + 1;
  }

  /** Dead letters are matched in finish(): the records they name may be read later (a projection's input is an output too). */
  onRecord(r: VRecord): void {
    this.f.found++;
    this.found.push({ headers: r.headers, partition: r.partition, keyHash: hash(r.key), valueHash: hash(r.value), at: where(r) });
  }

  private match(r: Found): void {
    const h = r.headers;
    const source = `${h[DLQ.topic]}:${h[DLQ.partition]}:${h[DLQ.offset]}`;
    const e = this.expected.get(source);
    if (!e) {
      this.f.extra++;
      this.sample(`extra: ${r.at} dead-letters ${source} (${h[DLQ.code]}: ${h[DLQ.message]?.slice(0, 120)})`);
      return;
    }
    if (e.seenAt) {
      this.f.duplicates++;
      this.sample(`duplicate: ${r.at} dead-letters ${source} again (first at ${e.seenAt})`);
      return;
    }
    e.seenAt = r.at;
    const problems: string[] = [];
    if (h[DLQ.code] !== e.code) problems.push(`code ${h[DLQ.code]}, expected ${e.code}`);
    if (!h[DLQ.message]) problems.push('no message header');
    if (h[DLQ.processor] !== this.processor) problems.push(`processor header ${h[DLQ.processor]}`);
    if (h[DLQ.timestamp] === undefined) problems.push('no source timestamp header');
    if (String(r.partition) !== h[DLQ.partition]) problems.push(`in partition ${r.partition}, source partition ${h[DLQ.partition]}`);
    if (r.keyHash !== e.keyHash) problems.push('key differs from the source record');
    if (r.valueHash !== e.valueHash) problems.push('bytes differ from the source record');
    if (problems.length) {
      this.f.wrongReason++;
      this.sample(`wrong: ${r.at} for ${source} (${e.kind}): ${problems.join('; ')}`);
    }
  }

  finish(): DlqFindings {
    for (const r of this.found) this.match(r);
    for (const [source, e] of this.expected) {
      if (e.seenAt) continue;
      this.f.missing++;
      this.sample(`missing: ${source} (${e.kind}, expected ${e.code})`);
    }
    return this.f;
  }
}
