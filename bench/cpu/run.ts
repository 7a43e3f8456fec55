/**
 * `npm run bench:cpu`: the CPU and memory of foldstream's processing path with no broker. It drives the runtime's own
 * Task (record handler, stages, processor, buffered stores, commit path, LevelDB apply, metrics) over in-memory
 * stand-ins for the Kafka clients (a producer that only numbers offsets, a consumer control that never stops, an
 * admin with empty topics), on the bench's own generated inputs (bench/lib/workload.ts) and the bench's topology of
 * each workload (bench/lib/systems.ts). What it leaves out on purpose: kafkajs's encode and decode, the network and
 * the broker; what it reports is what foldstream itself costs per input record.
 *
 * Figures: CPU µs per input record (process.cpuUsage, user + system, every thread) over the records after the
 * warm-up, wall µs per record, heap used (after a full GC when node runs with --expose-gc, as each workload's own
 * process does) and RSS at the end, peak RSS, and where the commit time went
 * (foldstream_commit_phase_seconds, per phase, µs per input record). The machine is shared: compare paired runs
 * (before/after alternated), never a single figure against an old one.
 *
 *   npm run bench:cpu -- [--workload projection,aggregate] [--inputs 50000] [--aggregates 2000] [--batch 1000]
 *                        [--warmup 0.2] [--store leveldb|memory] [--cache-max-bytes N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import type { BatchControl, FetchedBatch, FetchedRecord, OutgoingRecord, TaskProducer } from '../../src/kafka/types.ts';
import { silentLogger } from '../../src/log.ts';
import { buildProcessorSpecs } from '../../src/processors/build.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { RunnerTransaction } from '../../src/runtime/runner-transaction.ts';
import { Task, type TaskEnv } from '../../src/runtime/task.ts';
import { TopicRegistry } from '../../src/runtime/topic-registry.ts';
import { MemoryCommittedStore } from '../../src/state/committed-store.ts';
import { LevelDbStore } from '../../src/state/leveldb-store.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { ROOT, foldstreamTopology } from '../lib/systems.ts';
import { Generator, type WorkloadName } from '../lib/workload.ts';

const PARTITIONS = 12;

/** A transactional producer that only numbers offsets per partition: the broker's part costs nothing here. */
class MemoryProducer implements TaskProducer {
  readonly transactional = true;
  inTransaction = false;
  private readonly ends = new Map<string, bigint>();
  constructor(private readonly sent: Map<string, number>) {}
  async init(): Promise<void> {}
  async begin(): Promise<void> {
    this.inTransaction = true;
  }
  async send(records: OutgoingRecord[]): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for (const r of records) {
      const key = `${r.topic}:${r.partition}`;
      const end = (this.ends.get(key) ?? 0n) + 1n;
      this.ends.set(key, end);
      out.set(key, end);
      this.sent.set(r.topic, (this.sent.get(r.topic) ?? 0) + 1);
    }
    return out;
  }
  async sendOffsets(): Promise<void> {}
  async commit(): Promise<void> {
    this.inTransaction = false;
  }
  async abort(): Promise<void> {
    this.inTransaction = false;
  }
  async close(): Promise<void> {}
}

const control: BatchControl = { heartbeat: async () => undefined, resolveOffset: () => undefined, shouldStop: () => false };

interface Options {
  inputs: number;
  aggregates: number;
  batch: number;
  warmup: number;
  store: 'leveldb' | 'memory';
  /** the read caches' byte budget; default: the topology's processing.cacheMaxBytes */
  cacheMaxBytes?: number;
}

export interface CpuResult {
  workload: WorkloadName;
  inputs: number;
  measured: number;
  cpuUsPerRecord: number;
  userUsPerRecord: number;
  systemUsPerRecord: number;
  wallUsPerRecord: number;
  heapUsedMiB: number;
  rssMiB: number;
  peakRssMiB: number;
  /** µs per measured input record spent in each commit phase */
  commitPhasesUs: Record<string, number>;
  outputs: Record<string, number>;
}

/** The inputs as the consumer would hand them over: per partition, in order, batches of at most `batch` records. */
function batches(workload: WorkloadName, topic: string, o: Options): FetchedBatch[] {
  const gen = new Generator({ workload, aggregates: o.aggregates, total: o.inputs, partitions: PARTITIONS, seed: 16, prefix: 'cpu' });
  const queues: FetchedRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  for (let i = 0; i < o.inputs; i++) {
    const r = gen.next(t0 + i);
    const q = queues[r.partition]!;
    q.push({ topic, partition: r.partition, offset: String(q.length), timestamp: t0 + i, key: Buffer.from(r.key), value: r.value, headers: {} });
  }
  // rounds of one batch per partition, as a fetch of every partition would return them
  const out: FetchedBatch[] = [];
  for (let from = 0; queues.some((q) => q.length > from); from += o.batch) {
    for (const q of queues) {
      const records = q.slice(from, from + o.batch);
      if (!records.length) continue;
      const last = records[records.length - 1]!.offset;
      out.push({ topic, partition: records[0]!.partition, fetchedOffset: records[0]!.offset, highWatermark: String(q.length), lastOffset: last, records });
    }
  }
  return out;
}

async function runWorkload(workload: WorkloadName, o: Options): Promise<CpuResult> {
  const dir = mkdtempSync(join(tmpdir(), `foldstream-cpu-${workload}-`));
  const topics = { input: `cpu-${workload}-in`, view: 'cpu-view', events: 'cpu-events', replies: 'cpu-replies' };
  const topologyObject = foldstreamTopology({
    workload,
    app: 'cpu',
    stateDir: dir,
    topics,
    brokers: ['127.0.0.1:9'],
    commitIntervalMs: 100,
    sessionTimeoutMs: 10_000,
    logFile: '',
  });
  const loaded = parseTopology(stringify(topologyObject), join(ROOT, 'bench/cpu/topology.yaml'));
  const [spec] = await buildProcessorSpecs(loaded);
  if (!spec) throw new Error('no processor');
  const registry = new Registry();
  const metrics = new RuntimeMetrics(registry, { defaultMetrics: false });
  const registryTopics = new TopicRegistry(loaded.topology);
  const sent = new Map<string, number>();
  const p = loaded.topology.processing as Record<string, unknown>;
  // the instance's read cache with the topology's byte budget, where the runtime has one (older commits: per store)
  const lru = (await import('../../src/state/lru-cache.ts')) as Record<string, unknown>;
  const ReadCacheClass = lru.ReadCache as (new (bytes: number) => unknown) | undefined;
  const readCache = ReadCacheClass ? (new ReadCacheClass(o.cacheMaxBytes ?? (p.cacheMaxBytes as number)) as never) : undefined;
  const tasks: Task[] = [];
  // the processor runner's transaction (exactly-once v2) over the same in-memory producer
  const txn = new RunnerTransaction({
    processor: spec.name,
    groupId: `cpu-${spec.name}`,
    exactlyOnce: true,
    transactionalId: `cpu-${spec.name}-bench`,
    // commits at maxBufferedRecords, not on the wall clock: the same work however busy the machine
    commitIntervalMs: 3_600_000,
    maxBufferedRecords: p.maxBufferedRecords as number,
    createProducer: () => new MemoryProducer(sent),
    participants: () => tasks,
    commitOffsets: async () => undefined,
    metrics,
    log: silentLogger,
  });
  txn.start();
  await txn.ready();
  txn.joined({ generationId: 1, memberId: 'bench' });
  const groupOffsets = { stableOffsets: async () => ({ unstable: false, offsets: {} }), abortTransactionOf: async () => undefined, memberInstanceIds: async () => new Set<string>(), close: async () => undefined };
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const env: TaskEnv = {
      app: 'cpu',
      spec,
      groupId: `cpu-${spec.name}`,
      partition,
      exactlyOnce: true,
      // commits at maxBufferedRecords or the end of a batch, not on the wall clock: the same work however busy the machine
      commitIntervalMs: 3_600_000,
      maxBufferedRecords: p.maxBufferedRecords as number,
      taskDir: join(dir, spec.name, String(partition)),
      topics: registryTopics,
      txn,
      groupOffsets,
      transactionTimeoutMs: 10_000,
      fenceDeadWriters: false,
      openStore: (s, d) => (o.store === 'memory' ? Promise.resolve(new MemoryCommittedStore(s.name)) : LevelDbStore.open(s.name, d)),
      destroyStore: (d) => LevelDbStore.destroy(d),
      reader: { read: async (_t, _p, from) => from, close: async () => undefined },
      admin: {
        endOffsets: async () => new Map(),
        highWatermarks: async () => new Map(),
        startOffsets: async () => new Map(),
        committedOffsets: async () => new Map(),
        partitionCount: async () => PARTITIONS,
        close: async () => undefined,
      },
      consumer: { seek: () => undefined, pause: () => undefined, resume: () => undefined, commitOffsets: async () => undefined },
      metrics,
      log: silentLogger,
      now: Date.now,
      onStateChange: () => undefined,
    };
    if (readCache) env.readCache = readCache;
    const task = new Task(env);
    await task.start();
    if (task.state !== 'running') throw new Error(`task ${partition} is ${task.state}`);
    tasks.push(task);
  }

  const all = batches(workload, topics.input, o);
  const warmupRecords = Math.floor(o.inputs * o.warmup);
  let done = 0;
  let i = 0;
  for (; i < all.length && done < warmupRecords; i++) {
    await txn.gate.shared(() => tasks[all[i]!.partition]!.processBatch(all[i]!, control));
    done += all[i]!.records.length;
  }
  const phasesBefore = await phaseSums(registry);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let measured = 0;
  for (; i < all.length; i++) {
    await txn.gate.shared(() => tasks[all[i]!.partition]!.processBatch(all[i]!, control));
    measured += all[i]!.records.length;
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  // the live heap, not what the collector has not got to yet (the children run with --expose-gc)
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  const phasesAfter = await phaseSums(registry);
  const commitPhasesUs: Record<string, number> = {};
  for (const [phase, s] of Object.entries(phasesAfter)) commitPhasesUs[phase] = round(((s - (phasesBefore[phase] ?? 0)) * 1e6) / measured);
  await txn.stop();
  for (const t of tasks) await t.close();
  rmSync(dir, { recursive: true, force: true });
  const MiB = 1024 * 1024;
  return {
    workload,
    inputs: o.inputs,
    measured,
    cpuUsPerRecord: round((cpu.user + cpu.system) / measured),
    userUsPerRecord: round(cpu.user / measured),
    systemUsPerRecord: round(cpu.system / measured),
    wallUsPerRecord: round((wall * 1000) / measured),
    heapUsedMiB: round(mem.heapUsed / MiB),
    rssMiB: round(mem.rss / MiB),
    peakRssMiB: round((process.resourceUsage().maxRSS * 1024) / MiB),
    commitPhasesUs,
    outputs: Object.fromEntries(sent),
  };
}

/** Seconds per commit phase so far (foldstream_commit_phase_seconds; empty where the runtime has no such metric). */
async function phaseSums(registry: Registry): Promise<Record<string, number>> {
  const m = registry.getSingleMetric('foldstream_commit_phase_seconds');
  if (!m) return {};
  const out: Record<string, number> = {};
  for (const v of (await m.get()).values) {
    if ((v as { metricName?: string }).metricName?.endsWith('_sum')) {
      const phase = String(v.labels.phase);
      out[phase] = (out[phase] ?? 0) + v.value;
    }
  }
  return out;
}

const round = (n: number) => Math.round(n * 10) / 10;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string', default: 'projection,aggregate' },
      'cache-max-bytes': { type: 'string' },
      inputs: { type: 'string', default: '50000' },
      aggregates: { type: 'string', default: '2000' },
      batch: { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '0.2' },
      store: { type: 'string', default: 'leveldb' },
      json: { type: 'boolean', default: false },
    },
  });
  const o: Options = {
    inputs: Number(values.inputs),
    aggregates: Number(values.aggregates),
    batch: Number(values.batch),
    warmup: Number(values.warmup),
    store: values.store === 'memory' ? 'memory' : 'leveldb',
  };
  if (values['cache-max-bytes'] !== undefined) o.cacheMaxBytes = Number(values['cache-max-bytes']);
  const workloads = values.workload.split(',') as WorkloadName[];
  if (workloads.length > 1) {
    // one process per workload, so that each one's memory figures are its own
    for (const w of workloads) {
      const args = process.argv.slice(1).filter((a, i, all) => a !== '--workload' && all[i - 1] !== '--workload' && !a.startsWith('--workload='));
      const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...args, '--workload', w], { stdio: 'inherit' });
      if (r.status !== 0) process.exitCode = r.status ?? 1;
    }
    return;
  }
  for (const w of workloads) {
    if (w !== 'projection' && w !== 'aggregate') throw new Error(`unknown workload ${w}`);
    const r = await runWorkload(w, o);
    if (values.json) console.log(JSON.stringify(r));
    else {
      const phases = Object.entries(r.commitPhasesUs).map(([k, v]) => `${k} ${v}`).join(', ');
      console.log(
        `${w.padEnd(10)} ${r.measured} records measured: CPU ${r.cpuUsPerRecord} µs/record (user ${r.userUsPerRecord}, system ${r.systemUsPerRecord}), ` +
          `wall ${r.wallUsPerRecord} µs/record; heap ${r.heapUsedMiB} MiB, RSS ${r.rssMiB} MiB, peak RSS ${r.peakRssMiB} MiB` +
          (phases ? `; commit phases µs/record: ${phases}` : '') +
          `; outputs ${JSON.stringify(r.outputs)}`,
      );
    }
  }
}

await main();
