/**
 * One chaos run, start to end, in the manner of Kafka Streams' EOS system test:
 *   1. brokers: the shared single broker, or a fresh three-broker cluster of the run's own (broker scenario);
 *   2. a topology of unique topics and app id; the input topics created as declared;
 *   3. the generator writes the seeded input while the scenario injects its faults into foldstream instances that run
 *      as OS processes;
 *   4. an instance runs until every group consumed its input to the end, then all stop with SIGTERM;
 *   5. (optionally an anomaly is planted, to prove it is caught;) the independent verifier reads everything back;
 *   6. a report (JSON and markdown) goes to test/chaos/reports/.
 * Topics, state and logs are kept when the run fails, and deleted after a clean one unless `keep` is set.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { startCluster, startNode, stopCluster, type Cluster } from '../../scripts/kafka/cluster.ts';
import { lags, type Lag } from './catch-up.ts';
import { ChaosContext } from './chaos-context.ts';
import { createInputTopics, generate, type GeneratorResult } from './generator.ts';
import { plant, type Planted } from './plant.ts';
import type { RunOptions } from './profiles.ts';
import { writeReport, type RunReport } from './report.ts';
import { Rng } from './rng.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { sourceFingerprint } from './source.ts';
import type { ModelCheck } from './verify/model.ts';
import { verify, type Verification } from './verify/verifier.ts';
import { WORKLOADS, modelFor, plantTargets } from './workloads/index.ts';

export interface RunResult {
  report: RunReport;
  files: { json: string; md: string };
}

async function deleteRunTopics(brokers: string[], app: string): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${app}-`));
    if (mine.length) await admin.deleteTopics({ topics: mine });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${app}-`));
    if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

function observed(ctx: ChaosContext): RunReport['observed'] {
  let rebalances = 0;
  let fencedTasks = 0;
  let failedTransactions = 0;
  let deadLettered = 0;
  for (const i of ctx.allInstances) {
    for (const l of i.lines) {
      if (l.event === 'group.joined' && l.leader === true) rebalances++;
      else if (l.event === 'task.fenced') fencedTasks++;
      else if (l.event === 'task.transaction_failed') failedTransactions++;
      else if (l.event === 'runner.transaction_aborted') {
        if (l.code === 'GENERATION_FENCED' || l.code === 'PRODUCER_FENCED') fencedTasks++;
        else failedTransactions++;
      }
      else if (l.event === 'record.dead_lettered') deadLettered++;
    }
  }
  return { rebalances, fencedTasks, failedTransactions, deadLettered, instanceStarts: ctx.stats.starts };
}

export async function runChaos(opts: RunOptions, log: (line: string) => void = (l) => console.error(l)): Promise<RunResult> {
  const scenario = SCENARIOS[opts.scenario];
  if (!scenario) throw new Error(`unknown scenario ${opts.scenario}; one of ${Object.keys(SCENARIOS).join(', ')}`);
  const workload = WORKLOADS[opts.workload];
  if (!workload) throw new Error(`unknown workload ${opts.workload}; one of ${Object.keys(WORKLOADS).join(', ')}`);
  const o: RunOptions = { ...opts, ...scenario.tune?.(opts) };
  const runId = `${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}-${randomBytes(2).toString('hex')}`;
  const app = `chaos-${o.scenario}-${o.workload}-${runId}`;
  const runDir = join(o.reportDir, 'runs', runId);
  const stateRoot = join(tmpdir(), 'foldstream-chaos', runId);
  mkdirSync(join(runDir, 'logs'), { recursive: true });
  const startedAt = new Date().toISOString();
  const say = (line: string) => log(`[${o.scenario}/${o.workload} ${new Date().toISOString().slice(11, 19)}] ${line}`);

  let cluster: Cluster | undefined;
  let brokers = o.brokers;
  if (scenario.cluster) {
    say(`starting a three-broker cluster at 127.0.0.1:${o.clusterBasePort}-${o.clusterBasePort + 2}`);
    ({ cluster } = await startCluster({ nodes: 3, basePort: o.clusterBasePort, heap: o.clusterHeap, fresh: true, name: `chaos-p${o.clusterBasePort}-n3` }));
    brokers = cluster.brokers;
  }
  const replicationFactor = cluster ? 3 : 1;
  const topologyFile = join(runDir, 'topology.yaml');
  writeFileSync(
    topologyFile,
    workload.topologyYaml({
      app,
      brokers,
      partitions: o.partitions,
      replicationFactor,
      commitIntervalMs: o.commitIntervalMs,
      maxBufferedRecords: o.maxBufferedRecords,
      sessionTimeoutMs: o.sessionTimeoutMs,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      transactionTimeoutMs: o.transactionTimeoutMs,
      maxRecordBytes: o.maxRecordBytes,
    }),
  );
  const model: ModelCheck = modelFor(o.workload, app, o);
  const rng = new Rng(o.seed);
  const ctx = new ChaosContext({
    topologyFile,
    brokers,
    runDir,
    stateRoot,
    transactionalTopics: model.transactionalTopics,
    processors: workload.processors(app).map((p) => p.processor),
    ...(workload.aimAt ? { aimTopics: workload.aimAt(app) } : {}),
    app,
    rng: rng.fork('chaos'),
    ...(cluster ? { cluster } : {}),
    log: say,
  });

  let gen: GeneratorResult = { records: 0, bad: 0, badByKind: {} };
  let verification: Verification | undefined;
  let caughtUp = false;
  let lastLags: Lag[] = [];
  let planted: Planted | undefined;
  let error: string | undefined;
  try {
    await createInputTopics(brokers, workload.inputTopics(app), o.partitions, replicationFactor);
    say(`app ${app}: ${o.events} events over ${Math.round(o.durationMs / 1000)} s, ${o.kills} fault actions; run folder ${runDir}`);
    const generating = generate({
      brokers,
      app,
      workload,
      seed: o.seed,
      events: o.events,
      badRate: o.badRate,
      keys: o.keys,
      maxRecordBytes: o.maxRecordBytes,
      partitions: o.partitions,
      replicationFactor,
      durationMs: o.durationMs,
      burstRecords: o.burstRecords,
      stopped: () => ctx.aborted,
      log: say,
    }).then(
      (r) => {
        gen = r;
        ctx.generatorDone = true;
        say(`generator done: ${r.records} records, ${r.bad} bad`);
      },
      (e: Error) => {
        ctx.generatorDone = true;
        ctx.abort();
        throw e;
      },
    );
    await Promise.all([generating, scenario.chaos(ctx, o)]);

    // Let one instance (at least) finish the work, restarting it should it die.
    if (cluster) for (let node = 1; node <= 3; node++) startNode(cluster, node);
    if (ctx.running().length === 0) ctx.start(0);
    const groups = workload.processors(app).map((p) => ({ group: `${app}-${p.processor}`, topics: p.inputs }));
    // an input that some processor writes in transactions may end in markers or aborted records (catch-up.ts)
    const transactionalInputs = new Set(workload.processors(app).flatMap((p) => p.inputs).filter((t) => model.transactionalTopics.includes(t)));
    const deadline = Date.now() + o.catchUpTimeoutMs;
    say('waiting for the processors to consume all input');
    let cleanPasses = 0;
    while (Date.now() < deadline) {
      if (ctx.running().length === 0) ctx.start(0);
      try {
        lastLags = await lags(brokers, groups, transactionalInputs);
      } catch (e) {
        say(`lag check failed: ${(e as Error).message}`);
        cleanPasses = -1;
      }
      if (lastLags.length === 0 && cleanPasses >= 0) {
        // a cycle of processors (workload.settlePasses) must be seen idle in several passes in a row
        if (++cleanPasses >= (workload.settlePasses ?? 1)) {
          caughtUp = true;
          break;
        }
      } else {
        cleanPasses = 0;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    say(caughtUp ? 'all input consumed; stopping the instances' : `gave up waiting: ${lastLags.length} partitions behind`);
    // a drain worth the name: stop instances that finished starting (SIGTERM during start-up kills a bare process)
    for (const s of ctx.running()) await ctx.waitReady(s, 60_000);
    await ctx.stopAll();

    if (o.plant) {
      planted = await plant(brokers, o.plant, plantTargets(o.workload, app));
      say(`planted: ${planted.what}`);
    }
    say('verifying');
    verification = await verify({ brokers, check: model, log: say });
    await planted?.cleanup?.();
  } catch (e) {
    error = (e as Error).stack ?? String(e);
    say(`run failed: ${(e as Error).message}`);
    ctx.abort();
    ctx.killAll();
    await planted?.cleanup?.().catch(() => undefined);
  }

  const clean = !error && caughtUp && verification !== undefined && verification.problems.length === 0;
  const { brokers: _b, reportDir: _r, ...options } = o;
  const report: RunReport = {
    runId,
    app,
    scenario: o.scenario,
    description: scenario.description,
    workload: o.workload,
    profile: o.profile,
    seed: o.seed,
    startedAt,
    finishedAt: new Date().toISOString(),
    options,
    brokers,
    source: sourceFingerprint(),
    generator: gen,
    chaos: ctx.stats,
    observed: observed(ctx),
    caughtUp,
    lags: lastLags,
    ...(planted ? { planted: planted.what } : {}),
    verification,
    ...(error ? { error } : {}),
    logDir: join(runDir, 'logs'),
    verdict: clean ? 'PASS' : 'FAIL',
  };
  const files = writeReport(o.reportDir, report);

  if (clean && !o.keep && !o.plant) {
    if (!cluster) await deleteRunTopics(brokers, app).catch((e: Error) => say(`could not delete the run's topics: ${e.message}`));
    rmSync(stateRoot, { recursive: true, force: true });
  }
  if (cluster) {
    say('stopping the three-broker cluster');
    await stopCluster(cluster);
    if (clean && !o.keep) rmSync(cluster.dir, { recursive: true, force: true });
  }
  return { report, files };
}
