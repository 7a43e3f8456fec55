/**
 * Comparing what a topic holds with what the model predicts: per-key sequences of outputs (exactly once, in order)
 * and stores (last value per key). Counts every kind of difference and keeps a few samples for the report.
 *
 * Part of the chaos verifier: imports only Node, nothing from src/.
 */
import type { VRecord } from './read-topics.ts';
import { at, partitionOf, VIEW_VERSION_HEADER, where } from './wire.ts';

/** JSON with object keys sorted, so equal values compare equal as strings. */
export function canonical(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

export interface SequenceFindings {
  /** records read */
  records: number;
  /** records the model predicts */
  expected: number;
  /** records whose identity was already delivered earlier for the key */
  duplicates: number;
  /** predicted records never delivered */
  losses: number;
  /** first deliveries that came after a record the model orders later */
  outOfOrder: number;
  /** first deliveries whose value differs from the model, or that the model does not predict at all */
  wrongValues: number;
  samples: string[];
}

export interface Expected {
  id: string;
  value: string;
}

export interface Actual {
  id: string;
  value: string;
  /** partition@offset (the topic is the output's), for samples */
  where: string;
}

const MAX_SAMPLES = 8;

/** A record outside the partition murmur2 gives its key counts as a wrong value. */
export function checkPartition(f: SequenceFindings, r: VRecord, partitions: number): void {
  if (r.key && partitionOf(r.key, partitions) !== r.partition) {
    f.wrongValues++;
    if (f.samples.length < 4) f.samples.push(`wrong partition: key ${r.key.toString('utf8')} at ${where(r)}`);
  }
}

/** A view record as the sequence checks see it: its version header is its identity, its value canonical JSON. */
export function viewActual(r: VRecord): Actual {
  let value: string;
  try {
    value = canonical(r.value === null ? null : (JSON.parse(r.value.toString('utf8')) as unknown));
  } catch {
    value = canonical({ unreadable: r.value?.toString('utf8').slice(0, 100) });
  }
  return { id: r.headers[VIEW_VERSION_HEADER] ?? `no version header at ${at(r)}`, value, where: at(r) };
}

export function emptySequenceFindings(): SequenceFindings {
  return { records: 0, expected: 0, duplicates: 0, losses: 0, outOfOrder: 0, wrongValues: 0, samples: [] };
}

function sample(f: { samples: string[] }, s: string): void {
  if (f.samples.length < MAX_SAMPLES) f.samples.push(s);
}

/** Compares the delivered sequence of one key with the predicted one, adding into `f`. */
export function compareSequence(f: SequenceFindings, key: string, expected: Expected[], actual: Actual[]): void {
  f.records += actual.length;
  f.expected += expected.length;
  const index = new Map(expected.map((e, i) => [e.id, i]));
  const seen = new Map<string, string>();
  let maxIndex = -1;
  for (const a of actual) {
    const first = seen.get(a.id);
    if (first !== undefined) {
      f.duplicates++;
      sample(f, `duplicate: key ${key} id ${a.id} at ${a.where}, first at ${first}`);
      continue;
    }
    seen.set(a.id, a.where);
    const i = index.get(a.id);
    if (i === undefined) {
      f.wrongValues++;
      sample(f, `unexpected: key ${key} id ${a.id} at ${a.where}: ${a.value.slice(0, 200)}`);
      continue;
    }
    if (i < maxIndex) {
      f.outOfOrder++;
      sample(f, `out of order: key ${key} id ${a.id} at ${a.where} after id ${expected[maxIndex]!.id}`);
    }
    maxIndex = Math.max(maxIndex, i);
    if (expected[i]!.value !== a.value) {
      f.wrongValues++;
      sample(f, `wrong value: key ${key} id ${a.id} at ${a.where}: ${a.value.slice(0, 200)}; model: ${expected[i]!.value.slice(0, 200)}`);
    }
  }
  for (const e of expected) {
    if (!seen.has(e.id)) {
      f.losses++;
      sample(f, `lost: key ${key} id ${e.id}: ${e.value.slice(0, 200)}`);
    }
  }
}

export interface StoreFindings {
  store: string;
  changelog: string;
  keys: number;
  expectedKeys: number;
  mismatches: number;
  samples: string[];
}

/** Last value per key (canonical strings) against the model; a key on one side only is a mismatch too. */
export function compareStore(store: string, changelog: string, actual: Map<string, string>, model: Map<string, string>): StoreFindings {
  const f: StoreFindings = { store, changelog, keys: actual.size, expectedKeys: model.size, mismatches: 0, samples: [] };
  for (const [k, v] of model) {
    const a = actual.get(k);
    if (a === v) continue;
    f.mismatches++;
    sample(f, a === undefined ? `missing key ${JSON.stringify(k)}; model: ${v.slice(0, 200)}` : `key ${JSON.stringify(k)}: ${a.slice(0, 200)}; model: ${v.slice(0, 200)}`);
  }
  for (const [k, a] of actual) {
    if (model.has(k)) continue;
    f.mismatches++;
    sample(f, `extra key ${JSON.stringify(k)}: ${a.slice(0, 200)}`);
  }
  return f;
}
