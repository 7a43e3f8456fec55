/**
 * The systems under test, each a processor process started by the benchmark: foldstream (`foldstream run` from
 * source), the Kafka Streams reference app (bench/kstreams) and @kafkats/flow (bench/kafkats). Each reports when it
 * is ready (every task restored and running) and how its restore went, from its own logs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Proc, waitFor, type LogLine } from './proc.ts';
import type { WorkloadName } from './workload.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
const BENCH = join(ROOT, 'bench');

export type SystemName = 'foldstream' | 'kstreams' | 'kafkats';
export const SYSTEMS: SystemName[] = ['foldstream', 'kstreams', 'kafkats'];
export const LABELS: Record<SystemName | 'ceiling', string> = {
  foldstream: 'foldstream',
  kstreams: 'Kafka Streams',
  kafkats: '@kafkats/flow',
  ceiling: 'ceiling',
};

/** The topics of one run: the input and the workload's outputs. */
export interface RunTopics {
  input: string;
  /** projection */
  view?: string;
  /** aggregate */
  events?: string;
  replies?: string;
}

export interface StartSpec {
  workload: WorkloadName;
  app: string;
  stateDir: string;
  topics: RunTopics;
  brokers: string[];
  commitIntervalMs: number;
  sessionTimeoutMs: number;
  logFile: string;
  /** a group.instance.id: static membership (KIP-345) with sessionTimeoutMs as its session timeout (failover phase) */
  instanceId?: string;
}

export interface RestoreStats {
  /** changelog records the system reports it read (undefined: it does not say; the changelogs' offsets are used) */
  records: number | undefined;
  /** from the first restore starting to the last one done */
  ms: number;
}

export interface Running {
  proc: Proc;
  /** the consumer group whose committed offsets are the processor's progress */
  groupId: string;
  /** resolves with the time every task was restored and running */
  ready(timeoutMs: number): Promise<number>;
  restore(): RestoreStats | undefined;
  /** the input partitions of its active tasks, once ready (failover phase) */
  partitions(): Promise<number[]>;
  /** rebalances it went through that began at or after `since` (epoch ms), from its log */
  rebalancesSince(since: number): number;
}

export interface System {
  name: SystemName;
  /** builds what needs building; throws with the reason when the system cannot run */
  prepare(): void;
  start(spec: StartSpec): Running;
}

const tsxArgs = (entry: string) => ['--import', 'tsx', entry];

// ---------------------------------------------------------------------------------------------------- foldstream

/** The users example's processors (topology.yaml), on the run's topics. */
export function foldstreamTopology(s: StartSpec): Record<string, unknown> {
  const base = {
    app: s.app,
    kafka: { brokers: s.brokers.join(',') },
    processing: {
      guarantee: 'exactly_once',
      commitIntervalMs: s.commitIntervalMs,
      sessionTimeoutMs: s.sessionTimeoutMs,
      stateDir: s.stateDir,
      ...(s.instanceId === undefined ? {} : { staticMembership: { enabled: true, instanceId: s.instanceId, sessionTimeoutMs: s.sessionTimeoutMs } }),
    },
    http: { port: 0, host: '127.0.0.1' },
  };
  if (s.workload === 'projection') {
    return {
      ...base,
      topics: {
        events: { name: s.topics.input, partitions: 12, config: { 'retention.ms': '-1' } },
        'user-view': { name: s.topics.view, partitions: 12, config: { 'cleanup.policy': 'compact' } },
      },
      upcasters: [{ eventType: 'UserCreated', fromVersion: 1, toVersion: 2, rename: { name: 'fullName' }, defaults: { status: "'ACTIVE'" } }],
      processors: [
        {
          name: 'user-view',
          type: 'projection',
          input: 'events',
          output: 'user-view',
          maxEventVersion: { UserCreated: 2, EmailChanged: 1, StatusUpgraded: 1 },
          on: {
            UserCreated: { set: { id: 'aggregateId', email: 'data.email', fullName: 'data.fullName', status: 'data.status', createdAt: 'timestamp', updatedAt: 'timestamp' } },
            EmailChanged: { set: { email: 'data.newEmail', updatedAt: 'timestamp' }, increment: { emailChanges: 1 } },
            StatusUpgraded: { set: { status: 'data.status', updatedAt: 'timestamp' }, append: { statusHistory: 'data.status' } },
          },
        },
      ],
    };
  }
  return {
    ...base,
    modules: { root: ROOT },
    topics: {
      commands: { name: s.topics.input, partitions: 12 },
      replies: { name: s.topics.replies, partitions: 12 },
      events: { name: s.topics.events, partitions: 12, config: { 'retention.ms': '-1' } },
    },
    processors: [
      {
        name: 'users',
        type: 'aggregate',
        aggregateType: 'User',
        input: 'commands',
        output: { events: 'events', replies: 'replies' },
        module: join(ROOT, 'examples/users/user.ts'),
        history: true,
      },
    ],
  };
}

export const foldstream: System = {
  name: 'foldstream',
  prepare() {},
  start(s) {
    mkdirSync(s.stateDir, { recursive: true });
    // one file per state directory: two instances of an app (the failover phase) have topologies of their own
    const file = join(s.stateDir, '..', `${s.app}.${basename(s.stateDir)}.topology.yaml`);
    // JSON is YAML
    writeFileSync(file, JSON.stringify(foldstreamTopology(s), null, 2));
    const proc = new Proc(process.execPath, [...tsxArgs(join(ROOT, 'src/cli/main.ts')), 'run', file, '--state-dir', s.stateDir, '--http-port', '0'], {
      cwd: ROOT,
      env: { FOLDSTREAM_LOG_LEVEL: 'info' },
      logFile: s.logFile,
    });
    const processor = s.workload === 'projection' ? 'user-view' : 'users';
    const port = async () => (await proc.waitLine((l) => l.event === 'http.listening', 60_000, 'foldstream http.listening')).port;
    return {
      proc,
      groupId: `${s.app}-${processor}`,
      async partitions() {
        const res = await fetch(`http://127.0.0.1:${String(await port())}/readyz`);
        const body = (await res.json()) as { processors?: Record<string, { tasks?: Record<string, string> }> };
        return Object.keys(body.processors?.[processor]?.tasks ?? {}).map(Number).sort((a, b) => a - b);
      },
      rebalancesSince(since) {
        return proc.events('group.rebalancing').filter((l) => Date.parse(String(l.time)) >= since).length;
      },
      async ready(timeoutMs) {
        const listening = await proc.waitLine((l) => l.event === 'http.listening', timeoutMs, 'foldstream http.listening');
        let at = 0;
        await waitFor(
          async () => {
            if (!proc.alive) throw new Error(`foldstream exited before it was ready; log: ${s.logFile}`);
            try {
              const res = await fetch(`http://127.0.0.1:${String(listening.port)}/readyz`);
              at = Date.now();
              return res.status === 200;
            } catch {
              return false;
            }
          },
          timeoutMs,
          `foldstream ready (log: ${s.logFile})`,
          50,
        );
        return at;
      },
      restore() {
        // task.running: restoredRecords and ms (init, restore and position of the task) at `time`
        const running = proc.events('task.running');
        if (!running.length) return undefined;
        const end = (l: LogLine) => Date.parse(String(l.time));
        return {
          records: running.reduce((n, l) => n + Number(l.restoredRecords ?? 0), 0),
          ms: Math.max(...running.map(end)) - Math.min(...running.map((l) => end(l) - Number(l.ms ?? 0))),
        };
      },
    };
  },
};

// ------------------------------------------------------------------------------------------------- Kafka Streams

const KSTREAMS = join(BENCH, 'kstreams');

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Lifecycle lines of bench/kstreams and bench/kafkats: {"event":"state","to":"RUNNING","t":...}. */
function stateRunning(proc: Proc, what: string, logFile: string) {
  return async (timeoutMs: number): Promise<number> => {
    const l = await proc.waitLine((x) => x.event === 'state' && x.to === 'RUNNING', timeoutMs, `${what} RUNNING (log: ${logFile})`);
    return Number(l.t);
  };
}

export const kstreams: System = {
  name: 'kstreams',
  prepare() {
    const jar = join(KSTREAMS, 'target/kstreams-reference-1.jar');
    const stale = !existsSync(jar) || newestMtime(join(KSTREAMS, 'src')) > statSync(jar).mtimeMs || statSync(join(KSTREAMS, 'pom.xml')).mtimeMs > statSync(jar).mtimeMs;
    if (!stale) return;
    const r = spawnSync('mvn', ['-q', '-B', 'package'], { cwd: KSTREAMS, stdio: 'inherit' });
    if (r.error) throw new Error(`could not run Maven: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`mvn -q package failed in ${KSTREAMS} (exit ${r.status})`);
  },
  start(s) {
    mkdirSync(s.stateDir, { recursive: true });
    const t = s.topics;
    const topics = s.workload === 'projection' ? [`input=${t.input}`, `output=${t.view}`] : [`input=${t.input}`, `events=${t.events}`, `replies=${t.replies}`];
    const proc = new Proc(
      'java',
      [
        '-Xmx512m',
        '-XX:+UseG1GC',
        '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
        '-cp',
        `${join(KSTREAMS, 'target/classes')}:${join(KSTREAMS, 'target/lib/*')}`,
        'dev.foldstream.bench.Main',
        s.workload,
        `bootstrap=${s.brokers.join(',')}`,
        `app=${s.app}`,
        `stateDir=${s.stateDir}`,
        `commitIntervalMs=${s.commitIntervalMs}`,
        `sessionTimeoutMs=${s.sessionTimeoutMs}`,
        ...(s.instanceId === undefined ? [] : [`instanceId=${s.instanceId}`]),
        ...topics,
      ],
      { cwd: KSTREAMS, logFile: s.logFile },
    );
    return {
      proc,
      groupId: s.app,
      ready: stateRunning(proc, 'Kafka Streams', s.logFile),
      async partitions() {
        // printed each time it reaches RUNNING
        return ((proc.events('tasks').at(-1)?.partitions as number[] | undefined) ?? []).slice().sort((a, b) => a - b);
      },
      rebalancesSince(since) {
        return proc.events('state').filter((l) => l.to === 'REBALANCING' && Number(l.t) >= since).length;
      },
      restore() {
        const starts = proc.events('restore.start');
        const ends = proc.events('restore.end');
        if (!ends.length) return undefined;
        return {
          records: ends.reduce((n, l) => n + Number(l.records ?? 0), 0),
          ms: Math.max(...ends.map((l) => Number(l.t))) - Math.min(...starts.map((l) => Number(l.t))),
        };
      },
    };
  },
};

// ------------------------------------------------------------------------------------------------- @kafkats/flow

const KAFKATS = join(BENCH, 'kafkats');

export const kafkats: System = {
  name: 'kafkats',
  prepare() {
    if (existsSync(join(KAFKATS, 'node_modules/@kafkats/flow/package.json'))) return;
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: KAFKATS, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`npm install failed in ${KAFKATS} (exit ${r.status})`);
  },
  start(s) {
    const t = s.topics;
    const topics = s.workload === 'projection' ? [`input=${t.input}`, `output=${t.view}`] : [`input=${t.input}`, `events=${t.events}`, `replies=${t.replies}`];
    const proc = new Proc(
      process.execPath,
      [
        ...tsxArgs(join(KAFKATS, 'app.ts')),
        s.workload,
        `bootstrap=${s.brokers.join(',')}`,
        `app=${s.app}`,
        `commitIntervalMs=${s.commitIntervalMs}`,
        `sessionTimeoutMs=${s.sessionTimeoutMs}`,
        ...topics,
      ],
      { cwd: ROOT, logFile: s.logFile },
    );
    return {
      proc,
      groupId: s.app,
      ready: stateRunning(proc, '@kafkats/flow', s.logFile),
      async partitions() {
        throw new Error('@kafkats/flow does not say which partitions it runs (and has no static membership): no failover phase');
      },
      rebalancesSince(since) {
        return proc.events('state').filter((l) => l.to === 'REBALANCING' && Number(l.t) >= since).length;
      },
      restore() {
        // it restores its in-memory stores inside start(), between these two lines, and logs no figures
        const from = proc.events('state').find((l) => l.to === 'STARTING');
        const to = proc.events('state').find((l) => l.to === 'RUNNING');
        return from && to ? { records: undefined, ms: Number(to.t) - Number(from.t) } : undefined;
      },
    };
  },
};

export const systemsByName: Record<SystemName, System> = { foldstream, kstreams, kafkats };
