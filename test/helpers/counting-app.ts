/**
 * The counting app used by the runtime's integration tests: a custom processor that counts per key (store
 * `counts`) and forwards { key, n }. Exactly-once means: per key, outputs n = 1..N exactly once, in order, and the
 * store (read through its changelog) holds N — a model computed from what was produced, not from foldstream.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { rmSync } from 'node:fs';
import { FIXTURES } from './cli.ts';
import type { Instance } from './processes.ts';
import type { ExecutionContext } from 'ava';
import { BROKERS, createTopics, deleteTopics, kafka, openTransactions, readAll, unique, type ReadRecord } from './kafka.ts';

export interface CountingApp {
  app: string;
  dir: string;
  file: string;
  input: string;
  output: string;
  changelog: string;
  dlq: string;
  partitions: number;
  /** where the app and its topics are: BROKERS unless `brokers` was given */
  brokers: string[];
  stateDir(name: string): string;
  cleanup(): Promise<void>;
}

export interface CountingOptions {
  partitions?: number;
  commitIntervalMs?: number;
  maxBufferedRecords?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  guarantee?: 'exactly_once' | 'at_least_once';
  stateCleanupDelayMs?: number;
  /** a broker of the test's own (default: BROKERS) */
  brokers?: string[];
  /** the topology's `kafka:` mapping as YAML lines (a secured broker's listener and credentials); default: `brokers` */
  kafkaYaml?: string[];
  /** more lines of the `processing:` section, indented by two spaces (e.g. `  staticMembership: { enabled: true }`) */
  processingYaml?: string[];
  /** top-level YAML lines that replace the defaults of their sections (e.g. an `http:` line) */
  extraYaml?: string[];
}

export async function countingApp(opts: CountingOptions = {}): Promise<CountingApp> {
  const app = unique('count');
  const partitions = opts.partitions ?? 12;
  const brokers = opts.brokers ?? BROKERS;
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const input = `${app}-input`;
  const output = `${app}-counts`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    [
      `app: ${app}`,
      ...(opts.kafkaYaml ? ['kafka:', ...opts.kafkaYaml.map((l) => `  ${l}`)] : [`kafka: { brokers: "${brokers.join(',')}" }`]),
      'processing:',
      `  guarantee: ${opts.guarantee ?? 'exactly_once'}`,
      `  commitIntervalMs: ${opts.commitIntervalMs ?? 100}`,
      `  maxBufferedRecords: ${opts.maxBufferedRecords ?? 1000}`,
      `  sessionTimeoutMs: ${opts.sessionTimeoutMs ?? 10000}`,
      `  heartbeatIntervalMs: ${opts.heartbeatIntervalMs ?? 1000}`,
      `  stateCleanupDelayMs: ${opts.stateCleanupDelayMs ?? 600000}`,
      ...(opts.processingYaml ?? []),
      ...(opts.extraYaml?.some((l) => l.startsWith('http:')) ? [] : ['http: { port: 0 }']),
      ...(opts.extraYaml ?? []),
      `modules: { root: ${FIXTURES} }`,
      'topics:',
      `  input: { name: ${input}, partitions: ${partitions} }`,
      `  counts: { name: ${output}, partitions: ${partitions} }`,
      'stores:',
      '  counts: {}',
      'processors:',
      '  - name: counter',
      '    type: custom',
      '    input: input',
      `    module: ${join(FIXTURES, 'modules/counter.ts')}`,
      '    stores: [counts]',
      '    outputs: [counts]',
      '',
    ].join('\n'),
  );
  await createTopics([{ topic: input, numPartitions: partitions }], brokers);
  const changelog = `${app}-counter-counts-changelog`;
  const dlq = `${app}-counter-dlq`;
  return {
    app,
    dir,
    file,
    input,
    output,
    changelog,
    dlq,
    partitions,
    brokers,
    stateDir: (name) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      return d;
    },
    cleanup: () => deleteTopics([input, output, changelog, dlq], brokers),
  };
}

/** Produces `count` records over `keys` keys (key-i for record i mod keys); returns the expected count per key. */
export async function produceCounting(topic: string, count: number, keys: number, model = new Map<string, number>(), brokers: string[] = BROKERS): Promise<Map<string, number>> {
  // idempotent: a retried produce on a slow broker must not write the input twice (the model counts what was sent)
  const producer = kafka('counting-producer', brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let start = 0; start < count; start += 1000) {
      const messages = [];
      for (let i = start; i < Math.min(count, start + 1000); i++) {
        const key = `key-${i % keys}`;
        model.set(key, (model.get(key) ?? 0) + 1);
        messages.push({ key, value: JSON.stringify({ i }) });
      }
      await producer.send({ topic, messages, acks: -1 });
    }
  } finally {
    await producer.disconnect();
  }
  return model;
}

export interface CountCheck {
  outputs: number;
  duplicates: string[];
  gaps: string[];
  outOfOrder: string[];
  /** last n per key */
  counts: Map<string, number>;
}

/**
 * Checks outputs per key are 1..N exactly once, in order, and that no input record produced two outputs (each output
 * names its input as `source`: an input processed twice would otherwise pass as n and n + 1).
 */
export function checkCounts(records: ReadRecord[]): CountCheck {
  const byKey = new Map<string, number[]>();
  const check: CountCheck = { outputs: records.length, duplicates: [], gaps: [], outOfOrder: [], counts: new Map() };
  const sources = new Set<string>();
  for (const r of [...records].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
    const v = JSON.parse(String(r.value)) as { key: string; n: number; source?: string };
    const list = byKey.get(v.key) ?? [];
    list.push(v.n);
    byKey.set(v.key, list);
    if (v.source === undefined) continue;
    if (sources.has(v.source)) check.duplicates.push(`${v.key}: input ${v.source} again as #${v.n}`);
    sources.add(v.source);
  }
  for (const [key, ns] of byKey) {
    const seen = new Set<number>();
    for (let i = 0; i < ns.length; i++) {
      const n = ns[i]!;
      if (seen.has(n)) check.duplicates.push(`${key}#${n}`);
      seen.add(n);
      if (i > 0 && n <= ns[i - 1]!) check.outOfOrder.push(`${key}: ${ns[i - 1]} then ${n}`);
    }
    const max = Math.max(...ns);
    for (let n = 1; n <= max; n++) if (!seen.has(n)) check.gaps.push(`${key}#${n}`);
    check.counts.set(key, max);
  }
  return check;
}

/**
 * Records per key in the input topic (read_committed). Compared with the test's model, it tells an input written
 * twice by the test's producer from an input processed twice by foldstream.
 */
export async function inputCounts(topic: string, brokers: string[] = BROKERS): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const r of await readAll([topic], { brokers })) counts.set(r.key ?? 'null', (counts.get(r.key ?? 'null') ?? 0) + 1);
  return counts;
}

/** The store as its changelog says: last value per key (tombstones delete), markers skipped. */
export async function changelogState(topic: string, brokers: string[] = BROKERS): Promise<Map<string, unknown>> {
  const state = new Map<string, unknown>();
  const records = await readAll([topic], { brokers });
  records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  for (const r of records) {
    if (r.key === null || r.key.startsWith('\u0000')) continue;
    if (r.value === null) state.delete(r.key);
    else state.set(r.key, unpack(r.value));
  }
  return state;
}

/** Waits until the group's committed offsets reach the end of every partition of the input (all input processed). */
export async function waitForCaughtUp(groupId: string, input: string, timeoutMs = 180_000, brokers: string[] = BROKERS): Promise<void> {
  const admin = kafka('caught-up', brokers).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    let behind = '';
    while (Date.now() < deadline) {
      const ends = await admin.fetchTopicOffsets(input);
      const committed = (await admin.fetchOffsets({ groupId, topics: [input] }))[0]?.partitions ?? [];
      const lagging = ends.filter((e) => {
        const c = committed.find((p) => p.partition === e.partition);
        return BigInt(e.high) > 0n && (!c || BigInt(c.offset) < BigInt(e.high));
      });
      if (lagging.length === 0) return;
      behind = lagging.map((e) => `${e.partition}`).join(',');
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`group ${groupId} did not catch up with ${input} (partitions behind: ${behind})`);
  } finally {
    await admin.disconnect();
  }
}

/** A map as a plain object in key order, for deepEqual (Map equality in ava depends on insertion order). */
export function sortedObject<V>(m: Map<string, V>): Record<string, V> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Exactly once, against the model of what was sent: per key the outputs are 1..N, each once and in order; the input
 * holds what the test sent; the last count and the store (read through its changelog) equal the model; and no
 * transaction is left open on the output or the changelog.
 */
export async function assertExactlyOnce(t: ExecutionContext, c: CountingApp, model: Map<string, number>, brokers: string[] = BROKERS): Promise<void> {
  const check = checkCounts(await readAll([c.output], { brokers }));
  t.deepEqual(check.duplicates, [], 'no output twice');
  t.deepEqual(check.gaps, [], 'no output lost');
  t.deepEqual(check.outOfOrder, [], 'per-key order kept');
  t.deepEqual(sortedObject(await inputCounts(c.input, brokers)), sortedObject(model), 'the input holds what the test sent');
  t.deepEqual(sortedObject(check.counts), sortedObject(model), 'the last count of every key is its number of records');
  t.deepEqual(sortedObject(await changelogState(c.changelog, brokers)), sortedObject(model), 'the store (its changelog) equals the model');
  t.deepEqual(await openTransactions(c.output, brokers), [], 'no transaction left open on the output');
  t.deepEqual(await openTransactions(c.changelog, brokers), [], 'no transaction left open on the changelog');
}

/**
 * The processes a test starts, killed when it ends (passed or not); then the app's folder (kept with KEEP_TEST_DIRS)
 * and its topics are removed. Push each Instance onto the returned list.
 */
export function cleanUpAfter(t: ExecutionContext, c: CountingApp): Instance[] {
  const instances: Instance[] = [];
  t.teardown(async () => {
    for (const i of instances) i.kill();
    if (!process.env.KEEP_TEST_DIRS) rmSync(c.dir, { recursive: true, force: true });
    await c.cleanup();
  });
  return instances;
}
