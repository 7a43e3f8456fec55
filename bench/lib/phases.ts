/**
 * The measurements of one system on one workload:
 * - throughput: max events/s through a pre-filled backlog, from the group's committed offsets; then the outputs are
 *   read back and checked (verify.ts);
 * - restore: a fresh state directory restoring the changelogs the throughput run left;
 * - latency and recovery: inputs offered at a fixed rate, end-to-end latency in the steady state, then kill -9 and
 *   an immediate restart on the same state directory: time to the first new committed output and to caught up.
 * Each phase leaves its topics, groups and state directories (under ctx.workDir/<app>) to bench/run.ts, which deletes
 * them unless --keep.
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Broker } from './kafka.ts';
import { RateLoad } from './kafka.ts';
import { Observer } from './observer.ts';
import { sleep, waitFor } from './proc.ts';
import { percentile } from './stats.ts';
import { systemsByName, type RunTopics, type StartSpec, type SystemName } from './systems.ts';
import { verifyOutputs, type Verification } from './verify.ts';
import { Generator, type Expected, type WorkloadName } from './workload.ts';

export interface Context {
  broker: Broker;
  brokers: string[];
  prefix: string;
  workDir: string;
  commitIntervalMs: number;
  sessionTimeoutMs: number;
  log: (s: string) => void;
}

export interface Backlog {
  topic: string;
  inputs: number;
  bytes: number;
  expected: Expected;
}

const short: Record<SystemName, string> = { foldstream: 'fs', kstreams: 'ks', kafkats: 'kf' };

export function appName(ctx: Context, system: SystemName, workload: WorkloadName, tag: string): string {
  return `${ctx.prefix}-${short[system]}-${workload === 'projection' ? 'p' : 'a'}-${tag}`;
}

export async function createOutputs(ctx: Context, workload: WorkloadName, app: string, input?: string): Promise<RunTopics> {
  const topics: RunTopics =
    workload === 'projection' ? { input: input ?? `${app}-in`, view: `${app}-view` } : { input: input ?? `${app}-in`, events: `${app}-events`, replies: `${app}-replies` };
  const create: { name: string; partitions: number; compact?: boolean; retainForever?: boolean }[] = input ? [] : [{ name: topics.input, partitions: 12 }];
  if (topics.view) create.push({ name: topics.view, partitions: 12, compact: true });
  // an events topic keeps every event (foldstream refuses one with a finite retention: docs/topology.md)
  if (topics.events) create.push({ name: topics.events, partitions: 12, retainForever: true });
  if (topics.replies) create.push({ name: topics.replies, partitions: 12 });
  await ctx.broker.createTopics(create);
  return topics;
}

function spec(ctx: Context, workload: WorkloadName, app: string, topics: RunTopics, stateDir: string, log: string): StartSpec {
  return {
    workload,
    app,
    stateDir,
    topics,
    brokers: ctx.brokers,
    commitIntervalMs: ctx.commitIntervalMs,
    sessionTimeoutMs: ctx.sessionTimeoutMs,
    logFile: join(ctx.workDir, `${app}.${log}.log`),
  };
}

export interface ThroughputResult {
  app: string;
  topics: RunTopics;
  eventsPerSec: number;
  /** from spawning the process to the last input committed */
  wallMs: number;
  firstCommitMs: number;
  peakRssBytes: number;
  cpuMsPer1k: number;
  verification: Verification;
  loadavg: number[];
}

export async function throughput(ctx: Context, system: SystemName, workload: WorkloadName, backlog: Backlog, rep: number): Promise<ThroughputResult> {
  const app = appName(ctx, system, workload, `t${rep}`);
  const topics = await createOutputs(ctx, workload, app, backlog.topic);
  const stateDir = join(ctx.workDir, app, 'state');
  const la = loadavg();
  const running = systemsByName[system].start(spec(ctx, workload, app, topics, stateDir, 'throughput'));
  const proc = running.proc;
  let first: { t: number; n: number } | undefined;
  let done = 0;
  let progress = { t: Date.now(), n: 0 };
  try {
    for (;;) {
      const n = await ctx.broker.committed(running.groupId, backlog.topic).catch(() => 0);
      const now = Date.now();
      if (n > 0 && !first) first = { t: now, n };
      if (n >= backlog.inputs) {
        done = now;
        break;
      }
      if (n > progress.n) progress = { t: now, n };
      if (!proc.alive) throw new Error(`${system} exited during the throughput run (log: ${join(ctx.workDir, `${app}.throughput.log`)})`);
      if (now - progress.t > 180_000) throw new Error(`${system} made no progress for 180 s at ${n}/${backlog.inputs} inputs`);
      await sleep(100);
    }
    const peakRssBytes = proc.peakRss();
    const cpuMs = proc.cpuMs();
    await proc.stop();
    const verification = await verifyOutputs(ctx.broker, workload, topics, backlog.expected, `${app}-verify`);
    const f = first!;
    return {
      app,
      topics,
      // inputs committed after the first commit, over the time since it
      eventsPerSec: done > f.t ? ((backlog.inputs - f.n) * 1000) / (done - f.t) : Number.NaN,
      wallMs: done - proc.startedAt,
      firstCommitMs: f.t - proc.startedAt,
      peakRssBytes,
      cpuMsPer1k: (cpuMs * 1000) / backlog.inputs,
      verification,
      loadavg: la,
    };
  } finally {
    if (proc.alive) await proc.stop();
  }
}

export interface RestoreResult {
  records: number;
  ms: number;
  recordsPerSec: number;
  timeToReadyMs: number;
  peakRssBytes: number;
  /** the changelog topics it restored, for the ceiling */
  changelogs: string[];
}

export async function restore(ctx: Context, system: SystemName, workload: WorkloadName, from: ThroughputResult): Promise<RestoreResult> {
  const stateDir = join(ctx.workDir, from.app, 'state-restore');
  const running = systemsByName[system].start(spec(ctx, workload, from.app, from.topics, stateDir, 'restore'));
  try {
    const readyAt = await running.ready(600_000);
    const stats = running.restore();
    const admin = await ctx.broker.connect();
    const changelogs = (await admin.listTopics()).filter((t) => t.startsWith(`${from.app}-`) && t.endsWith('-changelog'));
    let records = stats?.records;
    if (records === undefined) {
      // the system does not say: the changelogs' end offsets (which also count transaction markers)
      records = 0;
      for (const t of changelogs) records += await ctx.broker.sum(t);
    }
    const ms = stats?.ms ?? Number.NaN;
    return { records, ms, recordsPerSec: (records * 1000) / ms, timeToReadyMs: readyAt - running.proc.startedAt, peakRssBytes: running.proc.peakRss(), changelogs };
  } finally {
    await running.proc.stop();
  }
}

/** how long a restarted instance has to catch up before the run says it did not */
const RECOVERY_TIMEOUT_MS = 180_000;

export interface LatencyResult {
  offeredPerSec: number;
  p50Ms: number;
  p99Ms: number;
  samples: number;
  /** it did not keep up with the offered rate: latency grows without bound, and recovery is not measured */
  saturated: boolean;
  /** CPU the processor used in the window per 1000 of the window's inputs whose outputs were seen (those of p50/p99) */
  cpuMsPer1k: number;
  peakRssBytes: number;
  recovery:
    | {
    /** kill -9 to the first output committed by the restarted instance */
    firstOutputMs: number;
    /** kill -9 to the last output whose latency was above the threshold */
    caughtUpMs: number;
    /** restarted instance ready (all tasks restored and running), from the kill */
    readyMs: number;
    thresholdMs: number;
      }
    | undefined;
  /** outputs that matched no outstanding input (exactly-once broken) */
  duplicates: number;
  /** inputs with no output after the drain */
  missing: number;
  loadavg: number[];
}

export async function latencyAndRecovery(
  ctx: Context,
  system: SystemName,
  workload: WorkloadName,
  rep: number,
  o: { rate: number; warmupSec: number; measureSec: number; aggregates: number },
): Promise<LatencyResult> {
  const app = appName(ctx, system, workload, `l${rep}`);
  const topics = await createOutputs(ctx, workload, app);
  const stateDir = join(ctx.workDir, app, 'state');
  mkdirSync(stateDir, { recursive: true });
  const gen = new Generator({ workload, aggregates: o.aggregates, total: o.rate * (o.warmupSec + o.measureSec + 60), partitions: 12, seed: 1000 + rep, prefix: `u${rep}` });
  const observer = new Observer(ctx.broker, workload, topics, `${app}-observer`);
  await observer.start();
  const sys = systemsByName[system];
  let running = sys.start(spec(ctx, workload, app, topics, stateDir, 'latency'));
  const load = new RateLoad(ctx.broker, topics.input, gen, o.rate, (r, at) => observer.sent(r.id, at));
  const la = loadavg();
  try {
    await running.ready(300_000);
    load.start();
    await sleep(o.warmupSec * 1000);
    const tA = Date.now();
    const cpuA = running.proc.cpuMs();
    await sleep(o.measureSec * 1000);
    const tB = Date.now();
    const cpuB = running.proc.cpuMs();
    await sleep(2000); // outputs of the last inputs of the window
    const window = observer.seen.filter((s) => s.sentAt !== undefined && s.sentAt >= tA && s.sentAt < tB).map((s) => s.seenAt - s.sentAt!);
    const sentInWindow = Math.round((o.rate * (tB - tA)) / 1000);
    const p50 = percentile(window, 50);
    const p99 = percentile(window, 99);
    const peakRssBytes = running.proc.peakRss();
    const cpuMsPer1k = ((cpuB - cpuA) * 1000) / window.length;
    // a system that cannot keep up with the offered rate has a backlog that only grows: no steady state to measure
    const saturated = window.length < 0.99 * sentInWindow;
    ctx.log(`    steady state: ${window.length} outputs of ${sentInWindow} inputs, p50 ${p50} ms, p99 ${p99} ms${saturated ? ' — SATURATED: it does not keep up with the offered rate' : ''}`);
    const base = { offeredPerSec: o.rate, p50Ms: p50, p99Ms: p99, samples: window.length, saturated, cpuMsPer1k, peakRssBytes, loadavg: la };
    if (saturated) return { ...base, recovery: undefined, duplicates: observer.duplicates, missing: Number.NaN };

    // kill -9, and at once a new instance on the same state directory
    const seenBefore = observer.seen.length;
    const killedAt = Date.now();
    running.proc.kill();
    running = sys.start(spec(ctx, workload, app, topics, stateDir, 'latency-restarted'));
    const readyP = running.ready(300_000).then((t) => t - killedAt, () => Number.NaN);
    // what was committed before the kill is below these offsets (a new process needs far longer than this to commit)
    await sleep(150);
    const primary = workload === 'projection' ? topics.view! : topics.replies!;
    const committedAtKill = await ctx.broker.endOffsets(primary);
    const thresholdMs = Math.max(2 * p99, 250);
    let firstNew: number | undefined;
    let lastSlow = killedAt;
    let scanned = seenBefore;
    const caughtUp = await waitFor(
      () => {
        for (; scanned < observer.seen.length; scanned++) {
          const s = observer.seen[scanned]!;
          if (firstNew === undefined && s.offset >= (committedAtKill.get(s.partition) ?? 0)) firstNew = s.seenAt;
          if (s.sentAt !== undefined && s.seenAt - s.sentAt > thresholdMs) lastSlow = s.seenAt;
        }
        const now = Date.now();
        const flowing = observer.seen.length > 0 && now - observer.seen[observer.seen.length - 1]!.seenAt < 1000;
        return firstNew !== undefined && lastSlow > killedAt && flowing && now - lastSlow > 5000;
      },
      RECOVERY_TIMEOUT_MS,
      `${system} to recover from kill -9 and catch up`,
    ).then(
      () => true,
      () => false,
    );
    if (!caughtUp) ctx.log(`    not caught up ${RECOVERY_TIMEOUT_MS / 1000} s after kill -9`);
    const readyMs = await readyP;
    await load.stop();
    await waitFor(() => observer.missing === 0, 60_000, 'every input to have its output').catch(() => undefined);
    await sleep(1000); // a duplicate would arrive after its original
    return {
      ...base,
      recovery: {
        firstOutputMs: firstNew === undefined ? Number.NaN : firstNew - killedAt,
        caughtUpMs: caughtUp ? lastSlow - killedAt : Number.NaN,
        readyMs,
        thresholdMs,
      },
      duplicates: observer.duplicates,
      missing: observer.missing,
    };
  } finally {
    await load.stop();
    await observer.stop();
    if (running.proc.alive) await running.proc.stop();
  }
}
