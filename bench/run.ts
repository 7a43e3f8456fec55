/**
 * foldstream's benchmark (DESIGN §12, bench/README.md): the users example's projection and aggregate, end to end
 * with exactly-once on the local broker, on foldstream, the Kafka Streams reference app (bench/kstreams) and
 * @kafkats/flow (bench/kafkats), with the broker's own perf tools as the ceiling — all in one run, on one broker, so
 * the ratios compare like with like. Results go to bench/results/<run>.json and .md.
 *
 *   npm run bench -- [--events 200000] [--aggregates 20000] [--workload projection,aggregate]
 *                    [--systems foldstream,kstreams,kafkats,ceiling] [--phases throughput,restore,latency,failover,failover-dynamic]
 *                    [--repeat 3] [--rate 500] [--warmup 5] [--measure 20] [--commit-interval-ms 100]
 *                    [--session-timeout-ms 10000] [--brokers 127.0.0.1:9092] [--out bench/results] [--keep]
 *   npm run bench -- --delete <run>     deletes what a run kept with --keep
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from '../scripts/kafka/cluster.ts';
import { ceilingLatency, ceilingRestore, ceilingThroughput, prepareCeiling } from './lib/ceiling.ts';
import { Broker, fill } from './lib/kafka.ts';
import { failover } from './lib/failover.ts';
import { appName, latencyAndRecovery, restore, throughput, type Backlog, type Context } from './lib/phases.ts';
import { add, markdown, ratio, summarizeAll, type Column, type Values } from './lib/report.ts';
import { LABELS, ROOT, SYSTEMS, systemsByName, type SystemName } from './lib/systems.ts';
import { Generator, WORKLOADS, type WorkloadName } from './lib/workload.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    aggregates: { type: 'string' },
    workload: { type: 'string', default: WORKLOADS.join(',') },
    systems: { type: 'string', default: [...SYSTEMS, 'ceiling'].join(',') },
    phases: { type: 'string', default: 'throughput,restore,latency' },
    repeat: { type: 'string', default: '3' },
    rate: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '5' },
    measure: { type: 'string', default: '20' },
    'commit-interval-ms': { type: 'string', default: '100' },
    'session-timeout-ms': { type: 'string', default: '10000' },
    brokers: { type: 'string', default: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
    keep: { type: 'boolean', default: false },
    delete: { type: 'string' },
  },
});
const WORK_ROOT = join('/tmp', 'foldstream-bench');

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

if (args.delete !== undefined) {
  // what a run kept with --keep: its topics and groups (all named after the run) and its work directory
  if (!/^bench-\d{8}-\d{6}-[0-9a-f]{4}$/.test(args.delete)) throw new Error(`--delete takes a run id such as bench-20261127-151601-3a43, not ${args.delete}`);
  const b = new Broker(list(args.brokers));
  const removed = await b.deleteByPrefix(args.delete);
  await b.close();
  rmSync(join(WORK_ROOT, args.delete), { recursive: true, force: true });
  console.error(`deleted ${removed.topics} topics and ${removed.groups} consumer groups of ${args.delete}, and ${join(WORK_ROOT, args.delete)}/`);
  process.exit(0);
}

const events = Number(args.events);
const aggregates = Number(args.aggregates ?? Math.max(1, Math.round(events / 10)));
const workloads = list(args.workload) as WorkloadName[];
const wanted = list(args.systems);
const systems = wanted.filter((s): s is SystemName => (SYSTEMS as string[]).includes(s));
const withCeiling = wanted.includes('ceiling');
const phases = new Set(list(args.phases));
const repeat = Number(args.repeat);
const rate = Number(args.rate);
for (const [name, v] of Object.entries({ events, aggregates, repeat, rate, warmup: Number(args.warmup), measure: Number(args.measure) })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, not ${String(v)}`);
}
for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; one of ${WORKLOADS.join(', ')}`);
for (const s of wanted) if (!(SYSTEMS as string[]).includes(s) && s !== 'ceiling') throw new Error(`unknown system ${s}; one of ${[...SYSTEMS, 'ceiling'].join(', ')}`);

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const runId = `bench-${stamp}-${randomBytes(2).toString('hex')}`;
const workDir = join(WORK_ROOT, runId);
mkdirSync(workDir, { recursive: true });
mkdirSync(args.out, { recursive: true });
const log = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

const brokers = list(args.brokers);
const port = Number(brokers[0]!.split(':').pop());
log(`run ${runId}: ${events} inputs over ${aggregates} aggregates, 12 partitions; workloads ${workloads.join(', ')}; ${[...systems, ...(withCeiling ? ['ceiling'] : [])].join(', ')}; ${repeat}×; work dir ${workDir}`);
const { cluster } = await startCluster({ basePort: port });
log(`broker: Apache Kafka ${cluster.version} at ${brokers.join(',')}`);
for (const s of systems) systemsByName[s].prepare();
if (withCeiling) prepareCeiling();

const broker = new Broker(brokers);
const ctx: Context = {
  broker,
  brokers,
  prefix: runId,
  workDir,
  commitIntervalMs: Number(args['commit-interval-ms']),
  sessionTimeoutMs: Number(args['session-timeout-ms']),
  log,
};
const values: Values = {};
const raw: Record<string, unknown>[] = [];
const failures: string[] = [];
/** runs that could not keep up with the offered rate */
const saturated: string[] = [];
const digests: Record<string, Record<string, string[]>> = {};
const samples: Record<string, string[]> = {};
const loads: number[][] = [loadavg()];
const started = new Date();

/** Records a figure; one that is not a finite number is a failed measurement, listed rather than silently left out. */
function put(w: WorkloadName, system: Column, figure: string, value: number): void {
  if (Number.isFinite(value)) add(values, w, system, figure, value);
  else failures.push(`${system} ${w} ${figure}: no figure (${String(value)})`);
}

/** Deletes a phase's topics, consumer groups and state directories (all named after its app), unless --keep. */
async function cleanup(app: string): Promise<void> {
  if (args.keep) return;
  await broker.deleteByPrefix(app);
  rmSync(join(workDir, app), { recursive: true, force: true });
}

async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    const message = `${what}: ${(e as Error).message}`;
    failures.push(message);
    log(`  FAILED ${message}`);
    return undefined;
  }
}

try {
  // the backlogs: the same input bytes for every system and repetition
  const backlogs = new Map<WorkloadName, Backlog>();
  for (const w of workloads) {
    const topic = `${runId}-${w}-backlog`;
    await broker.createTopics([{ name: topic, partitions: 12 }]);
    const gen = new Generator({ workload: w, aggregates, total: events, partitions: 12, seed: 42, prefix: 'user' });
    const { bytes, ms } = await fill(broker, topic, gen, events);
    backlogs.set(w, { topic, inputs: events, bytes, expected: gen.expected });
    log(`backlog ${w}: ${events} inputs, ${(bytes / events).toFixed(0)} bytes each on average, written in ${(ms / 1000).toFixed(1)} s; outcomes ${JSON.stringify(gen.expected.outcomes)}`);
  }

  for (let rep = 1; rep <= repeat; rep++) {
    // rotate the order of the systems, so that none is always first (or last) after the broker's other work
    const order = systems.map((_, i) => systems[(i + rep - 1) % systems.length]!);
    for (const w of workloads) {
      const backlog = backlogs.get(w)!;
      for (const system of order) {
        log(`rep ${rep}/${repeat} ${w} on ${LABELS[system]}`);
        if (phases.has('throughput') || phases.has('restore')) {
          // a restore needs the changelogs of a throughput run: without the throughput phase, that run only prepares
          // them, and its throughput and RSS are not reported (its outputs are still checked)
          const measured = phases.has('throughput');
          const what = measured ? 'throughput' : 'restore preparation';
          const t = await attempt(`${system} ${w} ${what} #${rep}`, () => throughput(ctx, system, w, backlog, rep));
          if (t) {
            log(`  ${what}${measured ? '' : ' (not reported)'}: ${t.eventsPerSec.toFixed(0)} events/s (all in ${(t.wallMs / 1000).toFixed(1)} s from spawn), peak RSS ${(t.peakRssBytes / 2 ** 20).toFixed(0)} MiB, CPU ${t.cpuMsPer1k.toFixed(0)} ms per 1000; outputs ${t.verification.ok ? 'as expected' : `WRONG: ${t.verification.problems.join('; ')}`} (digest ${t.verification.digest})`);
            if (measured) {
              put(w, system, 'throughput', t.eventsPerSec);
              put(w, system, 'rss', t.peakRssBytes / 2 ** 20);
            }
            raw.push({ phase: measured ? 'throughput' : 'restore-preparation', system, workload: w, rep, ...t, verification: { ...t.verification, samples: undefined } });
            if (!t.verification.ok) failures.push(`${system} ${w} #${rep}: outputs differ from the model: ${t.verification.problems.join('; ')}`);
            ((digests[w] ??= {})[system] ??= []).push(t.verification.digest);
            for (const [topic, vs] of Object.entries(t.verification.samples)) {
              const kind = topic === t.topics.events ? 'events' : 'primary';
              samples[`${w}:${kind}`] ??= vs;
            }
            if (phases.has('restore')) {
              const r = await attempt(`${system} ${w} restore #${rep}`, () => restore(ctx, system, w, t));
              if (r) {
                log(`  restore ${r.records} records in ${(r.ms / 1000).toFixed(2)} s: ${r.recordsPerSec.toFixed(0)} records/s (ready ${(r.timeToReadyMs / 1000).toFixed(1)} s after spawn)`);
                put(w, system, 'restore', r.recordsPerSec);
                raw.push({ phase: 'restore', system, workload: w, rep, ...r });
                if (withCeiling && system === 'foldstream') {
                  const c = await attempt(`ceiling ${w} restore #${rep}`, () =>
                    ceilingRestore({ brokers: brokers.join(','), include: `^${t.app}-.*-changelog$`, records: r.records, group: `${t.app}-ceiling-restore`, logFile: join(workDir, 'ceiling.log') }),
                  );
                  if (c && c.records >= r.records) {
                    put(w, 'ceiling', 'restore', c.perSec);
                    raw.push({ phase: 'restore', system: 'ceiling', workload: w, rep, ...c });
                  } else if (c) {
                    failures.push(`ceiling ${w} restore #${rep}: read ${c.records} of the ${r.records} records foldstream restored`);
                  }
                }
              }
            }
          }
          await cleanup(appName(ctx, system, w, `t${rep}`));
        }
        if (phases.has('latency')) {
          const l = await attempt(`${system} ${w} latency #${rep}`, () =>
            latencyAndRecovery(ctx, system, w, rep, { rate, warmupSec: Number(args.warmup), measureSec: Number(args.measure), aggregates: Math.max(100, Math.round(rate * 3)) }),
          );
          if (l) {
            raw.push({ phase: 'latency', system, workload: w, rep, ...l });
            if (l.saturated) {
              saturated.push(`${LABELS[system]} ${w} #${rep}`);
            } else {
              put(w, system, 'p50', l.p50Ms);
              put(w, system, 'p99', l.p99Ms);
              put(w, system, 'cpu', l.cpuMsPer1k);
            }
            if (l.recovery) {
              const r = l.recovery;
              log(`  recovery: first new output ${(r.firstOutputMs / 1000).toFixed(1)} s, caught up ${(r.caughtUpMs / 1000).toFixed(1)} s after kill -9 (ready after ${(r.readyMs / 1000).toFixed(1)} s); duplicates ${l.duplicates}, missing ${l.missing}`);
              put(w, system, 'recoveryFirst', r.firstOutputMs / 1000);
              if (Number.isFinite(r.caughtUpMs)) put(w, system, 'recoveryCaughtUp', r.caughtUpMs / 1000);
              if (!Number.isFinite(r.caughtUpMs)) failures.push(`${system} ${w} #${rep}: not caught up 180 s after kill -9`);
            }
            if (l.duplicates || l.missing) failures.push(`${system} ${w} latency #${rep}: ${l.duplicates} duplicate and ${l.missing} missing outputs`);
          }
          await cleanup(appName(ctx, system, w, `l${rep}`));
        }
        for (const variant of ['failover', 'failover-dynamic'] as const) {
          // two instances, kill -9 of one and an immediate restart (bench/lib/failover.ts); @kafkats/flow has no static
          // membership and does not say which partitions it runs
          if (!phases.has(variant) || system === 'kafkats') continue;
          const staticMembership = variant === 'failover';
          const f = await attempt(`${system} ${w} ${variant} #${rep}`, () =>
            failover(ctx, system, w, rep, { rate, warmupSec: Number(args.warmup), aggregates: Math.max(100, Math.round(rate * 3)), staticMembership }),
          );
          if (f) {
            raw.push({ phase: variant, system, workload: w, rep, ...f });
            const s = (ms: number) => (ms / 1000).toFixed(1);
            log(`  ${variant}: first new output of the killed instance's tasks ${s(f.firstOutputMs)} s, all of them ${s(f.resumedMs)} s, caught up ${s(f.caughtUpMs)} s after kill -9; the other instance: ${f.survivorRebalances} rebalance(s), longest output gap ${s(f.survivorLongestGapMs)} s (${s(f.survivorLongestGapBeforeMs)} s before the kill); duplicates ${f.duplicates}, missing ${f.missing}`);
            const prefix = staticMembership ? 'failover' : 'failoverDynamic';
            put(w, system, `${prefix}First`, f.firstOutputMs / 1000);
            put(w, system, `${prefix}Resumed`, f.resumedMs / 1000);
            put(w, system, `${prefix}CaughtUp`, f.caughtUpMs / 1000);
            if (f.duplicates || f.missing) failures.push(`${system} ${w} ${variant} #${rep}: ${f.duplicates} duplicate and ${f.missing} missing outputs`);
          }
          await cleanup(appName(ctx, system, w, `${staticMembership ? 'fs' : 'fd'}${rep}`));
        }
        loads.push(loadavg());
      }
      if (withCeiling) log(`rep ${rep}/${repeat} ${w} ceiling`);
      if (withCeiling && phases.has('throughput')) {
        const outputs = backlog.expected.primary + backlog.expected.events;
        const primary = samples[`${w}:primary`] ?? [];
        const evs = samples[`${w}:events`] ?? [];
        // outputs in the workload's proportions (replies and events), or the inputs' sizes when no system ran
        const payloads = primary.length ? [...primary, ...evs.slice(0, Math.round((primary.length * backlog.expected.events) / backlog.expected.primary))] : [];
        const c = await attempt(`ceiling ${w} throughput #${rep}`, async () => {
          const out = `${runId}-ceiling-${w}-${rep}`;
          await broker.createTopics([{ name: out, partitions: 12 }]);
          return ceilingThroughput({
            brokers: brokers.join(','),
            input: backlog.topic,
            inputs: backlog.inputs,
            outputTopic: out,
            outputs,
            payloads: payloads.length ? payloads : ['x'.repeat(Math.round(backlog.bytes / backlog.inputs))],
            prefix: out,
            commitIntervalMs: ctx.commitIntervalMs,
            logFile: join(workDir, 'ceiling.log'),
            workDir,
          });
        });
        if (c) {
          log(`  ceiling ${c.perSec.toFixed(0)} events/s (consume ${c.consume.perSec.toFixed(0)} records/s while producing ${c.produce.perSec.toFixed(0)} records/s transactionally)`);
          put(w, 'ceiling', 'throughput', c.perSec);
          raw.push({ phase: 'throughput', system: 'ceiling', workload: w, rep, ...c });
        }
      }
      if (withCeiling) {
        if (phases.has('latency')) {
          const e = await attempt(`ceiling ${w} latency #${rep}`, () =>
            ceilingLatency({ brokers: brokers.join(','), topic: `${runId}-ceiling-e2e-${w}-${rep}`, recordSize: Math.round(backlog.bytes / backlog.inputs), records: 2000, logFile: join(workDir, 'ceiling.log'), workDir }),
          );
          if (e) {
            log(`  ceiling latency p50 ${e.p50} ms, p99 ${e.p99} ms`);
            put(w, 'ceiling', 'p50', e.p50);
            put(w, 'ceiling', 'p99', e.p99);
            raw.push({ phase: 'latency', system: 'ceiling', workload: w, rep, ...e });
          }
        }
        loads.push(loadavg());
      }
    }
  }
} finally {
  if (args.keep) {
    const kept = await broker.listByPrefix(runId).catch(() => ({ topics: [], groups: [] }));
    log(`--keep: kept ${kept.topics.length} topics: ${kept.topics.join(' ')}`);
    log(`--keep: kept ${kept.groups.length} consumer groups: ${kept.groups.join(' ')}`);
    log(`--keep: kept the logs and state directories in ${workDir}/`);
    log(`--keep: delete them all with: npm run bench -- --delete ${runId} --brokers ${brokers.join(',')}`);
  } else {
    const removed = await broker.deleteByPrefix(runId).catch(() => ({ topics: 0, groups: 0 }));
    log(`deleted ${removed.topics} topics and ${removed.groups} consumer groups of ${runId}`);
    rmSync(workDir, { recursive: true, force: true });
  }
  await broker.close();
}

const summaries = summarizeAll(values);
const columns: Column[] = [...systems, ...(withCeiling ? (['ceiling'] as const) : [])];
const titles: Record<WorkloadName, string> = {
  projection: `projection \`user-view\`: ${events.toLocaleString('en-US')} events over ${aggregates.toLocaleString('en-US')} aggregates in, a compacted view out`,
  aggregate: `aggregate \`users\`: ${events.toLocaleString('en-US')} commands over ${aggregates.toLocaleString('en-US')} aggregates in, events and replies out`,
};
const table = markdown(summaries, columns, workloads.map((w) => ({ name: w, title: titles[w] })));
const ratios: Record<string, Record<string, Record<string, number | undefined>>> = {};
for (const w of workloads) {
  for (const c of columns.filter((x) => x !== 'foldstream')) {
    for (const f of ['throughput', 'p50', 'p99', 'restore', 'recoveryFirst', 'recoveryCaughtUp', 'failoverFirst', 'failoverResumed', 'failoverCaughtUp', 'failoverDynamicFirst', 'failoverDynamicResumed', 'failoverDynamicCaughtUp', 'rss', 'cpu']) {
      ((ratios[w] ??= {})[`foldstream/${c}`] ??= {})[f] = ratio(summaries, w, 'foldstream', c, f);
    }
  }
}
const versions = {
  node: process.version,
  java: (await import('node:child_process')).spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr.split('\n')[0],
  kafka: cluster.version,
  kafkaStreams: '4.4.0',
  kafkajs: '2.2.4',
  kafkatsFlow: '0.12.0',
};
const machine = { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) };
const result = {
  run: runId,
  started: started.toISOString(),
  finished: new Date().toISOString(),
  options: { events, aggregates, workloads, systems: columns, phases: [...phases], keep: args.keep, repeat, rate, warmupSec: Number(args.warmup), measureSec: Number(args.measure), commitIntervalMs: ctx.commitIntervalMs, sessionTimeoutMs: ctx.sessionTimeoutMs, partitions: 12 },
  machine,
  versions,
  loadavg: loads,
  summaries,
  ratios,
  digests,
  failures,
  saturated,
  runs: raw,
};
const base = join(args.out, runId);
writeFileSync(`${base}.json`, JSON.stringify(result, null, 2));
const sameOutputs = Object.entries(digests).map(([w, d]) => {
  const all = new Set(Object.values(d).flat());
  return `${w}: ${all.size === 1 ? 'every system wrote the same outputs' : `digests differ: ${JSON.stringify(d)}`}`;
});
const md = [
  `# foldstream benchmark ${runId}`,
  '',
  `${started.toISOString()} → ${result.finished}; ${machine.cpus} × ${machine.model}, ${machine.memoryGiB} GiB; Node ${versions.node}, ${versions.java}; Apache Kafka ${versions.kafka} (one broker); ` +
    `12 partitions, exactly-once, commit interval ${ctx.commitIntervalMs} ms, session timeout ${ctx.sessionTimeoutMs} ms; ${repeat} repetition(s), median (min–max); ` +
    `fixed load ${rate}/s; load average (1 min) ${Math.min(...loads.map((l) => l[0]!)).toFixed(1)}–${Math.max(...loads.map((l) => l[0]!)).toFixed(1)} during the run.`,
  '',
  table,
  sameOutputs.map((s) => `- ${s}`).join('\n'),
  saturated.length ? `\nNot sustaining the offered ${rate}/s (no latency or recovery figure): ${saturated.join(', ')}.` : '',
  failures.length ? `\n**Failures**\n\n${failures.map((f) => `- ${f}`).join('\n')}` : '',
  '',
].join('\n');
writeFileSync(`${base}.md`, md);
console.log(md);
log(`results: ${base}.json and ${base}.md`);
// a failed measurement or outputs that differ between systems make the run fail (the figures are still written)
process.exit(failures.length === 0 && sameOutputs.every((s) => !s.includes('digests differ')) ? 0 : 1);
