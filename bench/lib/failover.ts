/**
 * The failover phase (bench/README.md): two instances of a system share the work under a fixed load; one is killed
 * with kill -9 and restarted at once on its state directory. With `staticMembership`, each instance has a
 * group.instance.id (foldstream: processing.staticMembership; Kafka Streams: the consumer's group.instance.id) and the
 * session timeout is the same for both systems (--session-timeout-ms); without it, today's dynamic membership.
 * Measured from the kill, on the output partitions of the tasks the killed instance ran:
 * - first: the first output committed after the kill on any of them;
 * - resumed: the last of them to get its first output after the kill (every task of the killed instance running again);
 * - caught up: the last output (any partition) slower than max(2 × p99 of the warm-up, 250 ms), as in the latency phase;
 * and, for the instance that was not killed: whether it went through a rebalance, and the longest gap in the outputs
 * of its partitions (after the kill, and during the warm-up for comparison: on a loaded machine gaps happen anyway). Afterwards every input must have exactly one output (0 duplicates, 0 missing).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RateLoad } from './kafka.ts';
import { Observer } from './observer.ts';
import { appName, createOutputs, type Context } from './phases.ts';
import { sleep, waitFor } from './proc.ts';
import { percentile } from './stats.ts';
import { systemsByName, type Running, type StartSpec, type SystemName } from './systems.ts';
import { Generator, type WorkloadName } from './workload.ts';

const RECOVERY_TIMEOUT_MS = 180_000;
const PARTITIONS = 12;

export interface FailoverResult {
  staticMembership: boolean;
  offeredPerSec: number;
  killedPartitions: number[];
  survivorPartitions: number[];
  firstOutputMs: number;
  resumedMs: number;
  caughtUpMs: number;
  thresholdMs: number;
  /** rebalances the instance that was not killed went through after the kill */
  survivorRebalances: number;
  /** the longest time without an output on a partition of the instance that was not killed, from the kill on */
  survivorLongestGapMs: number;
  /** the same during the warm-up (from its second second to the kill): what the machine does without a failover */
  survivorLongestGapBeforeMs: number;
  duplicates: number;
  missing: number;
}

/** The longest time between outputs (or from `from` to the first) on any of `partitions`. */
function longestGap(seen: { partition: number; seenAt: number }[], partitions: number[], from: number): number {
  const last = new Map(partitions.map((p) => [p, from]));
  let gap = 0;
  for (const s of seen) {
    const l = last.get(s.partition);
    if (l === undefined) continue;
    gap = Math.max(gap, s.seenAt - l);
    last.set(s.partition, s.seenAt);
  }
  return gap;
}

export async function failover(
  ctx: Context,
  system: SystemName,
  workload: WorkloadName,
  rep: number,
  o: { rate: number; warmupSec: number; aggregates: number; staticMembership: boolean },
): Promise<FailoverResult> {
  const app = appName(ctx, system, workload, `${o.staticMembership ? 'fs' : 'fd'}${rep}`);
  const topics = await createOutputs(ctx, workload, app);
  const sys = systemsByName[system];
  const spec = (name: string, log: string): StartSpec => {
    const stateDir = join(ctx.workDir, app, `state-${name}`);
    mkdirSync(stateDir, { recursive: true });
    return {
      workload,
      app,
      stateDir,
      topics,
      brokers: ctx.brokers,
      commitIntervalMs: ctx.commitIntervalMs,
      sessionTimeoutMs: ctx.sessionTimeoutMs,
      logFile: join(ctx.workDir, `${app}.${log}.log`),
      ...(o.staticMembership ? { instanceId: `${app}-${name}` } : {}),
    };
  };
  const gen = new Generator({ workload, aggregates: o.aggregates, total: o.rate * (o.warmupSec + 240), partitions: PARTITIONS, seed: 2000 + rep, prefix: `f${rep}` });
  const observer = new Observer(ctx.broker, workload, topics, `${app}-observer`);
  await observer.start();
  const load = new RateLoad(ctx.broker, topics.input, gen, o.rate, (r, at) => observer.sent(r.id, at));
  let victim: Running = sys.start(spec('a', 'failover-a'));
  const survivor = sys.start(spec('b', 'failover-b'));
  try {
    await victim.ready(300_000);
    await survivor.ready(300_000);
    // both running, the tasks split between them (the second's join moved some)
    let split: [number[], number[]] = [[], []];
    await waitFor(
      async () => {
        split = [await victim.partitions(), await survivor.partitions()];
        return split[0].length > 0 && split[1].length > 0 && new Set([...split[0], ...split[1]]).size === PARTITIONS && split[0].length + split[1].length === PARTITIONS;
      },
      300_000,
      `${system}: two instances running every task between them`,
    );
    const [killedPartitions, survivorPartitions] = split;
    ctx.log(`    ${o.staticMembership ? 'static' : 'dynamic'} membership; killed instance runs ${killedPartitions.join(',')}, the other ${survivorPartitions.join(',')}`);
    load.start();
    const warmStart = Date.now();
    await sleep(o.warmupSec * 1000);
    const warm = observer.seen.filter((s) => s.sentAt !== undefined && s.sentAt >= warmStart + 1000).map((s) => s.seenAt - s.sentAt!);
    const thresholdMs = Math.max(2 * percentile(warm, 99), 250);

    const killedAt = Date.now();
    const survivorLongestGapBeforeMs = longestGap(observer.seen.filter((x) => x.seenAt >= warmStart + 1000 && x.seenAt < killedAt), survivorPartitions, warmStart + 1000);
    victim.proc.kill();
    victim = sys.start(spec('a', 'failover-a-restarted'));
    await sleep(150);
    const primary = workload === 'projection' ? topics.view! : topics.replies!;
    const committedAtKill = await ctx.broker.endOffsets(primary);
    const firstNew = new Map<number, number>();
    const lastSeen = new Map<number, number>(survivorPartitions.map((p) => [p, killedAt]));
    let survivorLongestGapMs = 0;
    let lastSlow = killedAt;
    let scanned = observer.seen.findIndex((s) => s.seenAt >= killedAt);
    if (scanned < 0) scanned = observer.seen.length;
    const caughtUp = await waitFor(
      () => {
        for (; scanned < observer.seen.length; scanned++) {
          const s = observer.seen[scanned]!;
          if (!firstNew.has(s.partition) && s.offset >= (committedAtKill.get(s.partition) ?? 0)) firstNew.set(s.partition, s.seenAt);
          if (s.sentAt !== undefined && s.seenAt - s.sentAt > thresholdMs) lastSlow = s.seenAt;
          const last = lastSeen.get(s.partition);
          if (last !== undefined) {
            survivorLongestGapMs = Math.max(survivorLongestGapMs, s.seenAt - last);
            lastSeen.set(s.partition, s.seenAt);
          }
        }
        const now = Date.now();
        const resumed = killedPartitions.every((p) => firstNew.has(p));
        const flowing = observer.seen.length > 0 && now - observer.seen[observer.seen.length - 1]!.seenAt < 1000;
        return resumed && flowing && now - lastSlow > 5000;
      },
      RECOVERY_TIMEOUT_MS,
      `${system} to recover from kill -9 and catch up`,
    ).then(
      () => true,
      () => false,
    );
    if (!caughtUp) ctx.log(`    not caught up ${RECOVERY_TIMEOUT_MS / 1000} s after kill -9`);
    const survivorRebalances = survivor.rebalancesSince(killedAt);
    await load.stop();
    await waitFor(() => observer.missing === 0, 60_000, 'every input to have its output').catch(() => undefined);
    await sleep(1000); // a duplicate would arrive after its original
    const times = killedPartitions.map((p) => firstNew.get(p)).filter((t): t is number => t !== undefined);
    return {
      staticMembership: o.staticMembership,
      offeredPerSec: o.rate,
      killedPartitions,
      survivorPartitions,
      firstOutputMs: times.length ? Math.min(...times) - killedAt : Number.NaN,
      resumedMs: times.length === killedPartitions.length ? Math.max(...times) - killedAt : Number.NaN,
      caughtUpMs: caughtUp ? lastSlow - killedAt : Number.NaN,
      thresholdMs,
      survivorRebalances,
      survivorLongestGapMs,
      survivorLongestGapBeforeMs,
      duplicates: observer.duplicates,
      missing: observer.missing,
    };
  } finally {
    await load.stop();
    await observer.stop();
    for (const r of [victim, survivor]) if (r.proc.alive) await r.proc.stop();
  }
}
