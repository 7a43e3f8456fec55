/**
 * The users example (topology.yaml at the repository root) on the real broker with names of its own: the same
 * processors, rules and upcasters, with a unique app name and topic names, so tests run side by side and clean up.
 * Also a command client (send commands, wait for replies) and waits on what the processors have consumed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Consumer, Producer } from 'kafkajs';
import type { Reply } from '../../src/serde/envelope.ts';
import { loadTopology, type LoadedTopology } from '../../src/topology/load.ts';
import { internalTopics } from '../../src/topology/names.ts';
import { ROOT } from './cli.ts';
import { BROKERS, deleteTopics, kafka, readAll, unique, withAdmin, type ReadRecord } from './kafka.ts';
import type { Command } from './user-model.ts';

export interface UsersApp {
  app: string;
  dir: string;
  loaded: LoadedTopology;
  /** topic names by alias of topology.yaml: commands, replies, events, user-view, users-by-status */
  topic(alias: string): string;
  stateDir(name: string): string;
  cleanup(): Promise<void>;
}

/** The parsed topology.yaml, for a test to change before it is loaded. */
export interface UsersTopologyDoc {
  app: string;
  kafka: { brokers: string };
  processing: Record<string, unknown>;
  topics: Record<string, { name: string; config?: Record<string, string> }>;
  processors: { name: string; module?: string; [option: string]: unknown }[];
}

export async function usersApp(processing: Record<string, unknown> = {}, tweak: (doc: UsersTopologyDoc) => void = () => undefined): Promise<UsersApp> {
  const app = unique('users');
  const dir = mkdtempSync(join(tmpdir(), `${app}-`));
  const doc = parse(readFileSync(join(ROOT, 'topology.yaml'), 'utf8')) as UsersTopologyDoc;
  doc.app = app;
  doc.kafka.brokers = BROKERS.join(',');
  doc.processing = { ...doc.processing, commitIntervalMs: 100, sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000, ...processing };
  for (const t of Object.values(doc.topics)) t.name = `${app}-${t.name}`;
  for (const p of doc.processors) if (p.module) p.module = join(ROOT, p.module);
  // the modules stay in the repository while the file is in a temp folder
  (doc as { modules?: unknown }).modules = { root: ROOT };
  tweak(doc);
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, stringify(doc));
  const loaded = loadTopology(file, { env: { ...process.env, HTTP_PORT: '0', STATE_DIR: join(dir, 'state') } });
  const t = loaded.topology;
  return {
    app,
    dir,
    loaded,
    topic: (alias) => t.topics[alias]!.name,
    stateDir: (name) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      return d;
    },
    cleanup: async () => {
      await deleteTopics([...Object.values(t.topics).map((x) => x.name), ...internalTopics(t).map((x) => x.name)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends commands (keyed by aggregate id, in order) and collects replies (read_committed) by aggregate and commandId. */
export class CommandClient {
  /** by JSON [aggregateId, commandId]: a commandId is one aggregate's */
  readonly replies = new Map<string, Reply[]>();
  private constructor(
    private readonly producer: Producer,
    private readonly consumer: Consumer,
    private readonly commands: string,
  ) {}

  static async start(commands: string, replies: string): Promise<CommandClient> {
    const k = kafka('users-command-client');
    const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = k.consumer({ groupId: unique('replies'), readUncommitted: false, maxWaitTimeInMs: 100 });
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: replies, fromBeginning: true });
    const client = new CommandClient(producer, consumer, commands);
    await consumer.run({
      eachMessage: async ({ message }) => {
        const r = JSON.parse(String(message.value)) as Reply;
        const id = JSON.stringify([r.aggregateId, r.commandId]);
        client.replies.set(id, [...(client.replies.get(id) ?? []), r]);
      },
    });
    return client;
  }

  async send(commands: Command[]): Promise<void> {
    for (let i = 0; i < commands.length; i += 500) {
      const messages = commands.slice(i, i + 500).map((c) => ({ key: c.aggregateId, value: JSON.stringify(c) }));
      await this.producer.send({ topic: this.commands, acks: -1, messages });
    }
  }

  async sendRaw(records: { key: string | null; value: Buffer | string | null; headers?: Record<string, string> }[]): Promise<void> {
    await this.producer.send({ topic: this.commands, acks: -1, messages: records });
  }

  /**
   * Waits until every command (aggregate and commandId) has as many replies as it was sent; returns the replies per
   * command in the order of first sending, each in arrival order.
   */
  async waitFor(commands: Command[], timeoutMs = 120_000): Promise<Reply[][]> {
    const sent = new Map<string, number>();
    for (const c of commands) {
      const id = JSON.stringify([c.aggregateId, c.commandId]);
      sent.set(id, (sent.get(id) ?? 0) + 1);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = [...sent].filter(([id, n]) => (this.replies.get(id)?.length ?? 0) < n);
      if (missing.length === 0) return [...sent.keys()].map((id) => this.replies.get(id)!);
      if (Date.now() > deadline) throw new Error(`no reply to ${missing.length} command(s), e.g. ${missing[0]![0]}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }
}

/** Reads a topic (read_committed) until `done` holds for what was read, or fails after the timeout. */
export async function readUntil(topics: string[], done: (records: ReadRecord[]) => boolean, what: string, timeoutMs = 60_000): Promise<ReadRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await readAll(topics);
    if (done(records)) return records;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (read ${records.length} records)`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Waits until a consumer group has consumed every committed record of a topic. A transactional writer ends each
 * partition with a commit marker, so "everything" is the offset after the last readable record, not the high watermark.
 */
export async function waitForConsumed(groupId: string, topic: string, timeoutMs = 180_000): Promise<void> {
  const target = new Map<number, bigint>();
  for (const r of await readAll([topic])) {
    const next = BigInt(r.offset) + 1n;
    if (next > (target.get(r.partition) ?? 0n)) target.set(r.partition, next);
  }
  const deadline = Date.now() + timeoutMs;
  let behind = '';
  while (Date.now() < deadline) {
    const committed = await withAdmin(async (a) => (await a.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions ?? []);
    const lagging = [...target].filter(([p, want]) => {
      const c = committed.find((x) => x.partition === p);
      return !c || BigInt(c.offset) < want;
    });
    if (lagging.length === 0) return;
    behind = lagging.map(([p]) => p).join(',');
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`group ${groupId} did not consume all of ${topic} (partitions behind: ${behind})`);
}

/** The latest value per key of a compacted topic's records (tombstones remove the key). */
export function latestByKey(records: ReadRecord[]): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const r of [...records].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
    if (r.key === null) continue;
    if (r.value === null) out.delete(r.key);
    else out.set(r.key, JSON.parse(r.value.toString()));
  }
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
