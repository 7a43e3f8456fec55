// Fetches Apache Kafka's own broker with Maven and runs it (KRaft, combined broker+controller) on loopback.
// Used by `npm run kafka:start`, `npm start`, `npm test` and by the chaos tests (three nodes, kill -9 one).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensureCertificates, scramFormatArgs, securedLayout, securedProperties, securedSecrets, type SecuredLayout } from './secure.ts';

/** The Kafka line we test against; see README "Which Kafka". Override with KAFKA_VERSION. */
export const DEFAULT_KAFKA_VERSION = '4.4.0';
const LOG4J_VERSION = '2.24.3';

export interface ClusterOptions {
  /** 1 (default) or 3 nodes. */
  nodes?: number;
  /** client port of node 1; node n listens on basePort + n - 1. Controllers listen 10000 above. */
  basePort?: number;
  version?: string;
  /** JVM heap per node, e.g. "384m". */
  heap?: string;
  /** a name for the data folder; defaults to one derived from ports and node count. */
  name?: string;
  /** wipe the data folder before starting (fresh cluster). */
  fresh?: boolean;
  /** one node with TLS, SASL, mutual TLS and ACLs on ports basePort..basePort+2 (secure.ts); never the plain broker */
  secured?: boolean;
}

export interface Cluster {
  name: string;
  dir: string;
  version: string;
  nodes: number;
  basePort: number;
  brokers: string[];
  heap: string;
  /** set for a secured cluster: its listeners, certificate files and secrets file */
  secured?: SecuredLayout;
}

export function cacheDir(): string {
  return process.env.FOLDSTREAM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'foldstream');
}

export function describeCluster(opts: ClusterOptions = {}): Cluster {
  const nodes = opts.nodes ?? 1;
  const basePort = opts.basePort ?? 9092;
  if (opts.secured && nodes !== 1) throw new Error('a secured cluster has one node');
  if (opts.secured && basePort === 9092) throw new Error('a secured broker needs a port of its own (not 9092, the plain broker)');
  const version = opts.version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
  const name = opts.name ?? `kafka-${version}-p${basePort}-n${nodes}${opts.secured ? '-secured' : ''}`;
  const dir = join(cacheDir(), 'clusters', name);
  return {
    name,
    dir,
    version,
    nodes,
    basePort,
    brokers: Array.from({ length: nodes }, (_, i) => `127.0.0.1:${basePort + i}`),
    heap: opts.heap ?? process.env.FOLDSTREAM_KAFKA_HEAP ?? '384m',
    ...(opts.secured ? { secured: securedLayout(dir, basePort) } : {}),
  };
}

/**
 * How the harness (waitForCluster, tests) reaches the cluster with every right: the client port, or for a secured
 * cluster its inter-broker listener as the super user `admin`. Options for kafkajs's Kafka constructor.
 */
export function harnessClient(c: Cluster): { brokers: string[]; sasl?: { mechanism: 'plain'; username: string; password: string } } {
  if (!c.secured) return { brokers: c.brokers };
  const { admin } = securedSecrets(c.secured);
  return { brokers: [`127.0.0.1:${c.secured.internalPort}`], sasl: { mechanism: 'plain', username: admin.username, password: admin.password } };
}

/** Downloads the broker and its runtime dependencies once into the cache; returns the folder of jars. */
export function ensureKafkaJars(version: string, log: (s: string) => void = console.error): string {
  const home = join(cacheDir(), 'kafka', version);
  const libs = join(home, 'libs');
  if (existsSync(join(home, '.complete'))) return libs;
  mkdirSync(home, { recursive: true });
  const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.foldstream</groupId><artifactId>kafka-broker-runtime</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
`;
  writeFileSync(join(home, 'pom.xml'), pom);
  log(`fetching Apache Kafka ${version} (org.apache.kafka:kafka_2.13) with Maven into ${libs}`);
  rmSync(libs, { recursive: true, force: true });
  const r = spawnSync('mvn', ['-q', '-B', '-f', join(home, 'pom.xml'), 'dependency:copy-dependencies',
    `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], { stdio: 'inherit' });
  if (r.error) throw new Error(`could not run Maven (mvn): ${r.error.message}. Install Maven and Java 17+.`);
  if (r.status !== 0) throw new Error(`Maven could not fetch org.apache.kafka:kafka_2.13:${version} (exit ${r.status})`);
  writeFileSync(join(home, '.complete'), new Date().toISOString());
  return libs;
}

function nodeDir(c: Cluster, id: number): string {
  return join(c.dir, `node-${id}`);
}

function serverProperties(c: Cluster, id: number): string {
  const rf = Math.min(3, c.nodes);
  const voters = Array.from({ length: c.nodes }, (_, i) => `${i + 1}@127.0.0.1:${c.basePort + i + 10000}`).join(',');
  const port = c.basePort + id - 1;
  const listeners = c.secured
    ? securedProperties(c.secured, securedSecrets(c.secured))
    : [
        `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${port + 10000}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
        'inter.broker.listener.name=PLAINTEXT',
        'controller.listener.names=CONTROLLER',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      ];
  return [
    'process.roles=broker,controller',
    `node.id=${id}`,
    `controller.quorum.voters=${voters}`,
    ...listeners,
    `log.dirs=${join(nodeDir(c, id), 'data')}`,
    'num.partitions=1',
    `default.replication.factor=1`,
    'auto.create.topics.enable=false',
    // internal topics sized for a small local cluster
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${rf > 1 ? 2 : 1}`,
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    // tests use short session timeouts to provoke zombies quickly
    'group.min.session.timeout.ms=1000',
    // a small heap: the cleaner's dedupe buffer defaults to 128 MiB
    'log.cleaner.dedupe.buffer.size=16777216',
    'log.cleaner.backoff.ms=5000',
    'num.network.threads=2',
    'num.io.threads=4',
    'num.recovery.threads.per.data.dir=2',
    'unclean.leader.election.enable=false',
    'share.coordinator.state.topic.replication.factor=' + rf,
    'share.coordinator.state.topic.min.isr=1',
    '',
  ].join('\n');
}

const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.metadata.name = org.apache.kafka.image
logger.metadata.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
`;

function java(): string {
  return process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

/**
 * A KRaft cluster id: 16 random bytes in base64url, never starting with '-' (one in 64 would, and the storage tool's
 * argument parser then takes it for an option: "argument --cluster-id/-t: expected one argument"; Kafka's own
 * Uuid.randomUuid() skips such ids for the same reason).
 */
export function newClusterId(random: (n: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = random(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function clusterId(c: Cluster): string {
  const f = join(c.dir, 'cluster-id');
  const kept = existsSync(f) ? readFileSync(f, 'utf8').trim() : '';
  // an id starting with '-' was never formatted (see newClusterId): replace it
  if (kept && !kept.startsWith('-')) return kept;
  const id = newClusterId();
  writeFileSync(f, id);
  return id;
}

function prepareNode(c: Cluster, libs: string, id: number): void {
  const dir = nodeDir(c, id);
  mkdirSync(dir, { recursive: true });
  if (c.secured) ensureCertificates(c.secured, securedSecrets(c.secured));
  // a secured node's properties hold its passwords
  writeFileSync(join(dir, 'server.properties'), serverProperties(c, id), { mode: 0o600 });
  writeFileSync(join(dir, 'log4j2.properties'), LOG4J2);
  if (existsSync(join(dir, 'data', 'meta.properties'))) return;
  const scram = c.secured ? scramFormatArgs(securedSecrets(c.secured)) : [];
  const r = spawnSync(java(), ['-Xmx256m', '-cp', join(libs, '*'), `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    'kafka.tools.StorageTool', 'format', '-t', clusterId(c), '-c', join(dir, 'server.properties'), ...scram], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`formatting KRaft storage for node ${id} failed: ${r.stderr || r.stdout}`);
}

export function pidOf(c: Cluster, id: number): number | undefined {
  const f = join(nodeDir(c, id), 'kafka.pid');
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8'));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Starts one node (its storage must be formatted). Returns its pid. */
export function startNode(c: Cluster, id: number): number {
  const running = pidOf(c, id);
  if (running) return running;
  const libs = ensureKafkaJars(c.version);
  prepareNode(c, libs, id);
  const dir = nodeDir(c, id);
  const out = openSync(join(dir, 'kafka.log'), 'a');
  const child = spawn(java(), [
    `-Xms${c.heap}`, `-Xmx${c.heap}`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    '-cp', join(libs, '*'), 'kafka.Kafka', join(dir, 'server.properties'),
  ], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  if (!child.pid) throw new Error(`could not start java for Kafka node ${id}`);
  writeFileSync(join(dir, 'kafka.pid'), String(child.pid));
  return child.pid;
}

/** kill -9 one node (broker-failure tests). */
export function killNode(c: Cluster, id: number): void {
  const pid = pidOf(c, id);
  if (pid) process.kill(pid, 'SIGKILL');
}

export function portAnswers(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Waits until every node is in the cluster metadata and the controller is known. */
export async function waitForCluster(c: Cluster, timeoutMs = 120_000): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (await portAnswers(c.basePort)) {
      const admin = new Kafka({ ...harnessClient(c), logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
      try {
        await admin.connect();
        const d = await admin.describeCluster();
        if (d.brokers.length >= c.nodes && d.controller !== null) return;
        last = `${d.brokers.length}/${c.nodes} brokers`;
      } catch (e) {
        last = (e as Error).message;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
    for (let id = 1; id <= c.nodes; id++) {
      if (!pidOf(c, id) && existsSync(join(nodeDir(c, id), 'kafka.pid'))) {
        throw new Error(`Kafka node ${id} exited; see ${join(nodeDir(c, id), 'kafka.log')}`);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Kafka did not become ready in ${timeoutMs} ms (${last}); logs in ${c.dir}`);
}

/**
 * Starts the cluster unless something already answers on its first port (then it is reused).
 * Returns whether this call started it.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<{ cluster: Cluster; started: boolean }> {
  const c = describeCluster(opts);
  const allRunning = Array.from({ length: c.nodes }, (_, i) => pidOf(c, i + 1)).every(Boolean);
  if (!opts.fresh && (allRunning || (await portAnswers(c.basePort)))) {
    await waitForCluster(c);
    return { cluster: c, started: false };
  }
  if (opts.fresh) {
    await stopCluster(c);
    rmSync(c.dir, { recursive: true, force: true });
  }
  mkdirSync(c.dir, { recursive: true });
  ensureKafkaJars(c.version);
  for (let id = 1; id <= c.nodes; id++) startNode(c, id);
  await waitForCluster(c);
  return { cluster: c, started: true };
}

export async function stopNode(c: Cluster, id: number, timeoutMs = 30_000): Promise<void> {
  const pid = pidOf(c, id);
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidOf(c, id)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  process.kill(pid, 'SIGKILL');
}

export async function stopCluster(c: Cluster): Promise<void> {
  await Promise.all(Array.from({ length: c.nodes }, (_, i) => stopNode(c, i + 1)));
}
