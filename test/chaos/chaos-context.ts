/**
 * What a scenario works with: foldstream instances in numbered slots (each with its own state directory), signals,
 * the broker cluster, a seeded random source, and the counters that end up in the report. A kill -9 probes the
 * victim's partitions right after the process is gone: a partition whose last stable offset is below its high
 * watermark holds a transaction the victim left open (nobody else can have opened it on that task's partitions).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { killNode, startNode, type Cluster } from '../../scripts/kafka/cluster.ts';
import { Instance } from '../helpers/processes.ts';
import type { Rng } from './rng.ts';
import { probeEnds } from './verify/offsets-probe.ts';

export interface KillRecord {
  at: string;
  slot: number;
  pid: number;
  /** tasks the victim owned according to its last group.joined lines */
  tasks: number[];
  /** partitions of the victim's tasks that held an open transaction right after it died */
  openPartitions: string[];
  /** whether the victim had finished starting (readyz 200) */
  wasReady: boolean;
  /** whether the kill waited for a moment the victim had a transaction open (else: a purely random moment) */
  targeted: boolean;
}

export interface ChaosStats {
  starts: number;
  kills: KillRecord[];
  gracefulStops: number;
  /** openAtPause: partitions of the victim with a transaction open right after the SIGSTOP */
  zombies: { slot: number; pausedMs: number; openAtPause: number; fenced: boolean; evidence: string }[];
  brokerKills: { node: number; at: string; downMs: number }[];
  stateWipes: number;
  /** SIGTERM stops that did not exit 0 (a drain that failed or hung), as "slot N pid P: exit C" */
  drainFailures: string[];
}

export interface ChaosContextOptions {
  topologyFile: string;
  brokers: string[];
  runDir: string;
  stateRoot: string;
  /** topics whose partitions are probed for open transactions after a kill (outputs, changelogs, dead letters) */
  transactionalTopics: string[];
  /** processors (group suffixes) whose task lists to read from the logs */
  processors: string[];
  /**
   * topics of the workload's later stages (Workload.aimAt), in groups, whose transactions are short and rarely the
   * first to be open: the kill loop's aimed kills take turns waiting for any open transaction, then for one on a
   * topic of each group in turn
   */
  aimTopics?: string[][];
  app: string;
  rng: Rng;
  cluster?: Cluster;
  log: (line: string) => void;
}

export class ChaosContext {
  readonly slots = new Map<number, Instance>();
  readonly allInstances: Instance[] = [];
  readonly stats: ChaosStats = { starts: 0, kills: [], gracefulStops: 0, zombies: [], brokerKills: [], stateWipes: 0, drainFailures: [] };
  generatorDone = false;
  private stopping = false;
  private admin: Admin | undefined;

  constructor(readonly o: ChaosContextOptions) {}

  get rng(): Rng {
    return this.o.rng;
  }

  log(line: string): void {
    this.o.log(line);
  }

  get aborted(): boolean {
    return this.stopping;
  }

  abort(): void {
    this.stopping = true;
  }

  stateDir(slot: number): string {
    return join(this.o.stateRoot, `slot-${slot}`);
  }

  running(): number[] {
    return [...this.slots].filter(([, i]) => i.alive).map(([s]) => s);
  }

  start(slot: number): Instance {
    const existing = this.slots.get(slot);
    if (existing?.alive) return existing;
    const n = this.stats.starts++;
    const inst = new Instance(this.o.topologyFile, {
      stateDir: this.stateDir(slot),
      logDir: join(this.o.runDir, 'logs'),
      name: `slot-${slot}-start-${String(n).padStart(3, '0')}`,
      env: { FOLDSTREAM_LOG_LEVEL: 'info' },
    });
    this.slots.set(slot, inst);
    this.allInstances.push(inst);
    return inst;
  }

  /** Waits until the slot's instance is ready; false when it is not within `timeoutMs` (or it died). */
  async waitReady(slot: number, timeoutMs = 60_000): Promise<boolean> {
    const inst = this.slots.get(slot);
    if (!inst) return false;
    try {
      await inst.waitReady(timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** The tasks an instance owns now, per its last group.joined line of each processor's group. */
  tasksOf(inst: Instance): number[] {
    const tasks = new Set<number>();
    for (const p of this.o.processors) {
      const group = `${this.o.app}-${p}`;
      const joined = inst.lines.filter((l) => l.event === 'group.joined' && l.group === group).at(-1);
      for (const t of (joined?.tasks as number[] | undefined) ?? []) tasks.add(t);
    }
    return [...tasks].sort((a, b) => a - b);
  }

  private async getAdmin(): Promise<Admin> {
    if (!this.admin) {
      this.admin = new Kafka({ brokers: this.o.brokers, logLevel: logLevel.NOTHING, retry: { retries: 5 } }).admin();
      await this.admin.connect();
    }
    return this.admin;
  }

  /** Partitions of the slot's tasks that hold an open transaction now (of `topics`, by default every transactional one). */
  async openOn(slot: number, topics: string[] = this.o.transactionalTopics): Promise<string[]> {
    const inst = this.slots.get(slot);
    if (!inst) return [];
    const tasks = this.tasksOf(inst);
    const ends = await probeEnds(await this.getAdmin(), topics);
    return ends.filter((e) => e.lastStable < e.highWatermark && tasks.includes(e.partition)).map((e) => `${e.topic}/${e.partition}`);
  }

  /** Polls until the slot's instance has a transaction open (on one of `topics`, if given) (true), or `timeoutMs` passed (false). */
  async waitForOpenTransaction(slot: number, timeoutMs: number, topics?: string[]): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stopping && Date.now() < deadline && this.slots.get(slot)?.alive) {
      try {
        if ((await this.openOn(slot, topics)).length) return true;
      } catch {
        // a probe during a broker failure can fail; try again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** kill -9, then probe the victim's partitions for transactions it left open. */
  async kill(slot: number, targeted = false): Promise<KillRecord | undefined> {
    const inst = this.slots.get(slot);
    if (!inst?.alive) return undefined;
    const tasks = this.tasksOf(inst);
    const wasReady = (await inst.readyz())?.status === 200;
    inst.kill('SIGKILL');
    await inst.waitExit();
    let openPartitions: string[] = [];
    try {
      const ends = await probeEnds(await this.getAdmin(), this.o.transactionalTopics);
      openPartitions = ends.filter((e) => e.lastStable < e.highWatermark && tasks.includes(e.partition)).map((e) => `${e.topic}/${e.partition}`);
    } catch (e) {
      this.log(`probe after kill failed: ${(e as Error).message}`);
    }
    const rec: KillRecord = { at: new Date().toISOString(), slot, pid: inst.pid, tasks, openPartitions, wasReady, targeted };
    this.stats.kills.push(rec);
    this.log(`kill -9 slot ${slot} (pid ${inst.pid}, tasks ${tasks.join(',') || 'none'}${wasReady ? '' : ', not ready yet'}${targeted ? ', aimed at an open transaction' : ''}): ${openPartitions.length ? `open transactions on ${openPartitions.length} partitions` : 'no open transaction'}`);
    return rec;
  }

  /** SIGTERM and wait for the drain. */
  async stop(slot: number): Promise<void> {
    const inst = this.slots.get(slot);
    if (!inst?.alive) return;
    const code = await inst.stop(120_000);
    this.stats.gracefulStops++;
    if (code !== 0) this.stats.drainFailures.push(`slot ${slot} pid ${inst.pid}: exit ${code} (log ${inst.logFile})`);
    this.log(`stopped slot ${slot} (pid ${inst.pid}) with SIGTERM, exit ${code}`);
  }

  wipeState(slot: number): void {
    rmSync(this.stateDir(slot), { recursive: true, force: true });
    this.stats.stateWipes++;
    this.log(`deleted the state directory of slot ${slot}`);
  }

  /** kill -9 one broker of the cluster; returns a function that restarts it. */
  killBroker(node: number): () => void {
    const c = this.o.cluster;
    if (!c) throw new Error('this scenario runs without a cluster');
    const at = Date.now();
    killNode(c, node);
    this.log(`kill -9 broker node ${node}`);
    return () => {
      startNode(c, node);
      this.stats.brokerKills.push({ node, at: new Date(at).toISOString(), downMs: Date.now() - at });
      this.log(`restarted broker node ${node} after ${Date.now() - at} ms`);
    };
  }

  /** Sleeps, waking early when the run is being torn down. */
  async sleep(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(250, until - Date.now())));
  }

  /** SIGTERM every instance still alive (the drain commits), then close the probe's admin client. */
  async stopAll(): Promise<void> {
    await Promise.all(this.running().map((s) => this.stop(s)));
    await this.admin?.disconnect().catch(() => undefined);
    this.admin = undefined;
  }

  /** Kill whatever is still alive (a failed run). */
  killAll(): void {
    for (const i of this.allInstances) i.kill('SIGKILL');
  }
}
