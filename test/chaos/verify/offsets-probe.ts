/**
 * End offsets of partitions at both isolation levels, with ListOffsets requests written by hand.
 *
 * Why not kafkajs: `admin.fetchTopicOffsets()` returns the LAST STABLE OFFSET in both its `offset` and `high` fields.
 * The admin client's cluster has no isolation level, and kafkajs's ListOffsets v2+ encoder defaults it to
 * READ_COMMITTED (node_modules/kafkajs/src/protocol/requests/listOffsets/index.js), so the broker answers with the LSO.
 * No public kafkajs call returns the high watermark: only a read_uncommitted consumer's private cluster would ask for
 * it. An open transaction is exactly "LSO < high watermark", so this file asks the partition leader itself:
 * ListOffsets v2 (timestamp -1 = latest, -2 = earliest) with isolation 0 (READ_UNCOMMITTED: the high watermark) and
 * 1 (READ_COMMITTED: the last stable offset).
 *
 * Part of the chaos verifier: imports only Node and kafkajs (for metadata), nothing from src/.
 */
import { connect, type Socket } from 'node:net';
import type { Admin } from 'kafkajs';

export interface PartitionEnds {
  topic: string;
  partition: number;
  /** offset after the last record, committed or not (ListOffsets READ_UNCOMMITTED) */
  highWatermark: bigint;
  /** offset below which every transaction is decided (ListOffsets READ_COMMITTED) */
  lastStable: bigint;
  /** first offset still in the log */
  logStart: bigint;
}

const LIST_OFFSETS = 2;
const VERSION = 2;
const LATEST = -1n;
const EARLIEST = -2n;
/** errors after which the partition's leader may have moved: refresh metadata and ask again */
export const RETRIABLE = new Set([3, 5, 6, 7, 13, 74, 75]);

/** One connection to one broker: size-framed requests (header v1: api key, version, correlation id, client id) and their answers. */
export class Connection {
  private readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;

  constructor(host: string, port: number) {
    this.socket = connect({ host, port });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (e) => this.failAll(e));
    this.socket.on('close', () => this.failAll(new Error(`connection to ${host}:${port} closed`)));
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 4) {
      const size = this.buffer.readInt32BE(0);
      if (this.buffer.length < 4 + size) return;
      const frame = this.buffer.subarray(4, 4 + size);
      this.buffer = this.buffer.subarray(4 + size);
      const id = frame.readInt32BE(0);
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      w?.resolve(frame.subarray(4));
    }
  }

  async request(apiKey: number, version: number, body: Buffer): Promise<Buffer> {
    await this.ready;
    const id = this.nextId++;
    const clientId = Buffer.from('chaos-verifier');
    const header = Buffer.alloc(10);
    header.writeInt16BE(apiKey, 0);
    header.writeInt16BE(version, 2);
    header.writeInt32BE(id, 4);
    header.writeInt16BE(clientId.length, 8);
    const payload = Buffer.concat([header, clientId, body]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length, 0);
    const answer = new Promise<Buffer>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.socket.write(Buffer.concat([size, payload]));
    return answer;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeInt16BE(b.length, 0);
  return Buffer.concat([len, b]);
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

function listOffsetsBody(isolation: 0 | 1, byTopic: Map<string, number[]>, timestamp: bigint): Buffer {
  const parts: Buffer[] = [int32(-1), Buffer.from([isolation]), int32(byTopic.size)];
  for (const [topic, partitions] of byTopic) {
    parts.push(str(topic), int32(partitions.length));
    for (const p of partitions) {
      const ts = Buffer.alloc(8);
      ts.writeBigInt64BE(timestamp, 0);
      parts.push(int32(p), ts);
    }
  }
  return Buffer.concat(parts);
}

interface Answer {
  topic: string;
  partition: number;
  error: number;
  offset: bigint;
}

function parseListOffsets(b: Buffer): Answer[] {
  let at = 4; // throttle_time_ms
  const out: Answer[] = [];
  const topics = b.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    const len = b.readInt16BE(at);
    at += 2;
    const topic = b.toString('utf8', at, at + len);
    at += len;
    const partitions = b.readInt32BE(at);
    at += 4;
    for (let p = 0; p < partitions; p++) {
      const partition = b.readInt32BE(at);
      const error = b.readInt16BE(at + 4);
      const offset = b.readBigInt64BE(at + 14); // after the int64 timestamp
      at += 22;
      out.push({ topic, partition, error, offset });
    }
  }
  return out;
}

/**
 * The brokers and the topics' partition leaders, asked again (up to `attempts` times, backing off) when the metadata
 * request fails: a run ends on a loaded machine, and after a broker restart its first answers can time out. One
 * timeout must not throw away an hour's run.
 */
export async function clusterMetadata(admin: Admin, topics: string[], attempts = 8) {
  for (let attempt = 1; ; attempt++) {
    try {
      const cluster = await admin.describeCluster();
      const md = await admin.fetchTopicMetadata({ topics });
      return { brokers: new Map(cluster.brokers.map((b) => [b.nodeId, b])), topics: md.topics };
    } catch (e) {
      if (attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/** Asks each partition's leader for its high watermark, last stable offset and log start offset. */
export async function probeEnds(admin: Admin, topics: string[], attempts = 10): Promise<PartitionEnds[]> {
  let lastError = '';
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt) await new Promise((r) => setTimeout(r, 300 * attempt));
    const md = await clusterMetadata(admin, topics);
    const brokers = md.brokers;
    const byLeader = new Map<number, Map<string, number[]>>();
    for (const t of md.topics) {
      for (const p of t.partitions) {
        const m = byLeader.get(p.leader) ?? new Map<string, number[]>();
        m.set(t.name, [...(m.get(t.name) ?? []), p.partitionId]);
        byLeader.set(p.leader, m);
      }
    }
    const result = new Map<string, PartitionEnds>();
    let retry = false;
    for (const [leader, byTopic] of byLeader) {
      const b = brokers.get(leader);
      if (!b) {
        retry = true;
        lastError = `leader ${leader} is not in the cluster metadata`;
        continue;
      }
      const conn = new Connection(b.host, b.port);
      try {
        const ask = async (isolation: 0 | 1, ts: bigint) =>
          parseListOffsets(await conn.request(LIST_OFFSETS, VERSION, listOffsetsBody(isolation, byTopic, ts)));
        const [hw, lso, start] = [await ask(0, LATEST), await ask(1, LATEST), await ask(0, EARLIEST)];
        for (let i = 0; i < hw.length; i++) {
          const [h, l, s] = [hw[i]!, lso.find((x) => x.topic === hw[i]!.topic && x.partition === hw[i]!.partition), start.find((x) => x.topic === hw[i]!.topic && x.partition === hw[i]!.partition)];
          const err = [h.error, l?.error ?? -1, s?.error ?? -1].find((e) => e !== 0);
          if (err !== undefined) {
            if (!RETRIABLE.has(err)) throw new Error(`ListOffsets ${h.topic}/${h.partition}: error code ${err}`);
            retry = true;
            lastError = `ListOffsets ${h.topic}/${h.partition}: error code ${err}`;
            continue;
          }
          result.set(`${h.topic}:${h.partition}`, { topic: h.topic, partition: h.partition, highWatermark: h.offset, lastStable: l!.offset, logStart: s!.offset });
        }
      } catch (e) {
        retry = true;
        lastError = (e as Error).message;
      } finally {
        conn.close();
      }
    }
    if (!retry) return [...result.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  }
  throw new Error(`could not read end offsets of ${topics.join(', ')}: ${lastError}`);
}

/** Partitions whose last stable offset is below the high watermark: a transaction is open there. */
export function openTransactions(ends: PartitionEnds[]): PartitionEnds[] {
  return ends.filter((e) => e.lastStable < e.highWatermark);
}
