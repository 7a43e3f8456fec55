/**
 * The ceiling: the broker's own perf tools (kafka-tools 4.4.0, fetched with Maven into bench/ceiling/target/lib)
 * moving the workload's records with no processing at all.
 * - throughput: ConsumerPerformance reads the workload's backlog (read_committed) while ProducerPerformance writes as
 *   many records as the processors write (views, or replies and events; payloads sampled from real outputs) in
 *   transactions of commitIntervalMs, at the same time; inputs/s = inputs / the longer of the two;
 * - latency: EndToEndLatency, one record of the input's size at a time (acks=all, read_committed consumer; it has no
 *   transactions);
 * - restore: ConsumerPerformance reading a processor's changelog topics (read_committed), as a restore reads them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './systems.ts';

const DIR = join(ROOT, 'bench/ceiling');
const CLASSPATH = join(DIR, 'target/lib/*');

export function prepareCeiling(): void {
  if (existsSync(join(DIR, 'target/lib/kafka-tools-4.4.0.jar'))) return;
  const r = spawnSync('mvn', ['-q', '-B', 'dependency:copy-dependencies'], { cwd: DIR, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`mvn dependency:copy-dependencies failed in ${DIR} (exit ${r.status})`);
}

function tool(main: string, args: string[], logFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-Xmx512m', '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', '-cp', CLASSPATH, `org.apache.kafka.tools.${main}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      writeFileSync(logFile, `# ${main} ${args.join(' ')}\n${out}`, { flag: 'a' });
      if (code === 0) resolve(out);
      else reject(new Error(`${main} exited with ${code}; see ${logFile}`));
    });
  });
}

/** ConsumerPerformance's result line: fetch.nMsg.sec leaves out the time it took to join the group. */
async function consume(brokers: string, target: string[], records: number, group: string, logFile: string): Promise<{ records: number; perSec: number; ms: number }> {
  const out = await tool(
    'ConsumerPerformance',
    ['--bootstrap-server', brokers, ...target, '--num-records', String(records), '--group', group, '--command-property', 'isolation.level=read_committed', '--timeout', '10000'],
    logFile,
  );
  const line = out.trim().split('\n').filter((l) => /^\d{4}-/.test(l)).pop();
  if (!line) throw new Error(`no result from ConsumerPerformance; see ${logFile}`);
  const f = line.split(',').map((x) => x.trim());
  const n = Number(f[4]);
  const fetchMs = Number(f[7]);
  return { records: n, perSec: Number(f[9]), ms: fetchMs };
}

async function produce(brokers: string, topic: string, records: number, payloadFile: string, transactionalId: string, txMs: number, logFile: string) {
  const out = await tool(
    'ProducerPerformance',
    ['--bootstrap-server', brokers, '--topic', topic, '--num-records', String(records), '--throughput', '-1', '--payload-file', payloadFile,
      '--transactional-id', transactionalId, '--transaction-duration-ms', String(txMs), '--command-property', 'acks=all'],
    logFile,
  );
  const m = /(\d+) records sent, ([\d.]+) records\/sec/.exec(out);
  if (!m) throw new Error(`no result from ProducerPerformance; see ${logFile}`);
  return { records: Number(m[1]), perSec: Number(m[2]), ms: (Number(m[1]) / Number(m[2])) * 1000 };
}

export interface CeilingThroughput {
  /** inputs/s: the backlog read and the outputs written at the same time */
  perSec: number;
  consume: { records: number; perSec: number; ms: number };
  produce: { records: number; perSec: number; ms: number };
}

export async function ceilingThroughput(o: {
  brokers: string;
  input: string;
  inputs: number;
  outputTopic: string;
  outputs: number;
  payloads: string[];
  prefix: string;
  commitIntervalMs: number;
  logFile: string;
  workDir: string;
}): Promise<CeilingThroughput> {
  const payloadFile = join(o.workDir, `${o.prefix}.payloads.txt`);
  writeFileSync(payloadFile, o.payloads.map((p) => p.replace(/\n/g, ' ')).join('\n'));
  const [consume_, produce_] = await Promise.all([
    consume(o.brokers, ['--topic', o.input], o.inputs, `${o.prefix}-consumer`, o.logFile),
    produce(o.brokers, o.outputTopic, o.outputs, payloadFile, `${o.prefix}-producer`, o.commitIntervalMs, o.logFile),
  ]);
  return { perSec: o.inputs / (Math.max(consume_.ms, produce_.ms) / 1000), consume: consume_, produce: produce_ };
}

export async function ceilingLatency(o: { brokers: string; topic: string; recordSize: number; records: number; logFile: string; workDir: string }) {
  const config = join(o.workDir, 'e2e-latency.properties');
  writeFileSync(config, 'isolation.level=read_committed\n');
  const out = await tool(
    'EndToEndLatency',
    ['--bootstrap-server', o.brokers, '--topic', o.topic, '--num-records', String(o.records), '--producer-acks', 'all', '--record-size', String(o.recordSize), '--command-config', config],
    o.logFile,
  );
  const m = /50th = ([\d.]+), 99th = ([\d.]+)/.exec(out);
  if (!m) throw new Error(`no result from EndToEndLatency; see ${o.logFile}`);
  return { p50: Number(m[1]), p99: Number(m[2]) };
}

/** Reading changelogs as a restore does: records/s. */
export async function ceilingRestore(o: { brokers: string; include: string; records: number; group: string; logFile: string }) {
  return consume(o.brokers, ['--include', o.include], o.records, o.group, o.logFile);
}
