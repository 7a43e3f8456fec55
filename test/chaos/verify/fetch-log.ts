/**
 * Reads a partition's log itself, with Fetch requests written by hand, and decides which records are committed from
 * the transaction markers in the log, with no help from a client library's read_committed filtering.
 *
 * Why: kafkajs's read_committed filter (node_modules/kafkajs/src/consumer/filterAbortedMessages.js) assumes the
 * broker lists a partition's aborted transactions in order of their first offset. The broker lists them in the order
 * they were aborted, so where transactions of several producers overlap in one partition and the later-started one
 * is aborted first, kafkajs delivers records of the earlier one although it was aborted
 * (test/chaos/repro/kafkajs-aborted-order.ts). foldstream reads with kafkajs; a verifier that read the same way would
 * see what foldstream saw, not what the broker committed.
 *
 * How: Fetch v4 (the oldest version Kafka 4 serves) with isolation READ_UNCOMMITTED returns every record batch up to
 * the high watermark, control batches included. Record batches (magic 2) are decoded here. A record of a
 * transactional batch belongs to the open transaction of its producer id in that partition, which ends at the next
 * control batch of the same producer id: COMMIT (control key type 1) or ABORT (type 0). A producer has at most one
 * transaction open, so this decides every transactional record below the last stable offset; non-transactional
 * records are committed as written. Committed records are handed on in offset order (a record waits while an earlier
 * one is undecided), which is the order a read_committed consumer sees them in.
 *
 * Part of the chaos verifier: imports only Node and kafkajs (for metadata), nothing from src/.
 */
import { gunzipSync } from 'node:zlib';
import type { Admin } from 'kafkajs';
import { clusterMetadata, Connection, int32, RETRIABLE, str } from './offsets-probe.ts';
import type { VRecord } from './read-topics.ts';

const FETCH = 1;
const FETCH_VERSION = 4;

interface Batch {
  baseOffset: bigint;
  /** offset after the batch */
  next: bigint;
  producerId: bigint;
  transactional: boolean;
  control: boolean;
  /** control batches: 0 abort, 1 commit */
  controlType: number | undefined;
  records: VRecord[];
}

class Reader {
  constructor(
    readonly b: Buffer,
    public at = 0,
  ) {}
  int8 = () => this.b.readInt8(this.at++);
  int16 = () => ((this.at += 2), this.b.readInt16BE(this.at - 2));
  int32 = () => ((this.at += 4), this.b.readInt32BE(this.at - 4));
  int64 = () => ((this.at += 8), this.b.readBigInt64BE(this.at - 8));
  bytes = (n: number) => ((this.at += n), this.b.subarray(this.at - n, this.at));
  string = () => this.bytes(this.int16()).toString('utf8');
  varlong(): bigint {
    let shift = 0n;
    let raw = 0n;
    for (;;) {
      const x = this.b[this.at++]!;
      raw |= BigInt(x & 0x7f) << shift;
      if (!(x & 0x80)) break;
      shift += 7n;
    }
    return (raw >> 1n) ^ -(raw & 1n);
  }
  varint = () => Number(this.varlong());
}

/** The complete record batches in a Fetch answer's record set (the last one may be cut off by the size limit). */
function decodeBatches(set: Buffer, topic: string, partition: number): Batch[] {
  const out: Batch[] = [];
  let at = 0;
  while (at + 12 <= set.length) {
    const baseOffset = set.readBigInt64BE(at);
    const length = set.readInt32BE(at + 8);
    if (at + 12 + length > set.length) break;
    const r = new Reader(set.subarray(at + 12, at + 12 + length));
    at += 12 + length;
    r.int32(); // partition leader epoch
    const magic = r.int8();
    if (magic !== 2) throw new Error(`${topic}/${partition}@${baseOffset}: record batch magic ${magic}; only v2 is read`);
    r.int32(); // crc
    const attributes = r.int16();
    const lastOffsetDelta = r.int32();
    const baseTimestamp = r.int64();
    r.int64(); // max timestamp
    const producerId = r.int64();
    r.int16(); // producer epoch
    r.int32(); // base sequence
    const count = r.int32();
    const codec = attributes & 0x07;
    let body: Reader;
    if (codec === 0) body = r;
    else if (codec === 1) body = new Reader(gunzipSync(r.bytes(r.b.length - r.at)));
    else throw new Error(`${topic}/${partition}@${baseOffset}: compression codec ${codec} is not read here (none and gzip are)`);
    const batch: Batch = {
      baseOffset,
      next: baseOffset + BigInt(lastOffsetDelta) + 1n,
      producerId,
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
      controlType: undefined,
      records: [],
    };
    for (let i = 0; i < count; i++) {
      body.varint(); // record length
      body.int8(); // record attributes
      const timestamp = Number(baseTimestamp + body.varlong());
      const offset = baseOffset + BigInt(body.varint());
      const keyLength = body.varint();
      const key = keyLength < 0 ? null : Buffer.from(body.bytes(keyLength));
      const valueLength = body.varint();
      const value = valueLength < 0 ? null : Buffer.from(body.bytes(valueLength));
      const headers: Record<string, string> = {};
      const headerCount = body.varint();
      for (let h = 0; h < headerCount; h++) {
        const name = body.bytes(body.varint()).toString('utf8');
        const len = body.varint();
        headers[name] = len < 0 ? '' : body.bytes(len).toString('utf8');
      }
      if (batch.control) {
        // control record key: version int16, type int16
        if (key && key.length >= 4) batch.controlType = key.readInt16BE(2);
        continue;
      }
      batch.records.push({ topic, partition, offset, key, value, headers, timestamp });
    }
    out.push(batch);
  }
  return out;
}

function fetchBody(topic: string, partition: number, offset: bigint, maxBytes: number): Buffer {
  const o = Buffer.alloc(8);
  o.writeBigInt64BE(offset, 0);
  // replica -1, max wait 100 ms, min bytes 1, max bytes, isolation READ_UNCOMMITTED; one topic, one partition
  return Buffer.concat([int32(-1), int32(100), int32(1), int32(maxBytes), Buffer.from([0]), int32(1), str(topic), int32(1), int32(partition), o, int32(maxBytes)]);
}

function parseFetch(b: Buffer): { error: number; highWatermark: bigint; records: Buffer } {
  const r = new Reader(b);
  r.int32(); // throttle
  const topics = r.int32();
  if (topics !== 1) throw new Error(`Fetch answered ${topics} topics for one`);
  r.string();
  const partitions = r.int32();
  if (partitions !== 1) throw new Error(`Fetch answered ${partitions} partitions for one`);
  r.int32(); // partition
  const error = r.int16();
  const highWatermark = r.int64();
  r.int64(); // last stable offset
  const aborted = r.int32();
  for (let i = 0; i < aborted; i++) r.int64(), r.int64(); // producer id, first offset: not used (see the header)
  const size = r.int32();
  return { error, highWatermark, records: size < 0 ? Buffer.alloc(0) : r.bytes(size) };
}

export interface LogReadOptions {
  /** committed records only (decided by the markers), or every data record */
  isolation: 'read_committed' | 'read_uncommitted';
  /** hand on records below this offset */
  end: bigint;
  /** read batches up to here (the high watermark: markers of records below `end` can lie beyond it) */
  readTo: bigint;
  from: bigint;
  maxBytes?: number;
  stallMs?: number;
}

/** Reads one partition from `from` to `readTo` from its leader, handing on the records `isolation` lets through below `end`, in offset order. */
export async function readPartition(admin: Admin, topic: string, partition: number, o: LogReadOptions, onRecord: (r: VRecord) => void): Promise<void> {
  const maxBytes = o.maxBytes ?? 4 * 1024 * 1024;
  const stallMs = o.stallMs ?? 60_000;
  /** records in offset order, each undecided until its producer's marker */
  const queue: { r: VRecord; state: 'pending' | 'committed' | 'aborted' }[] = [];
  const open = new Map<bigint, { state: 'pending' | 'committed' | 'aborted' }[]>();
  const release = () => {
    while (queue.length && queue[0]!.state !== 'pending') {
      const e = queue.shift()!;
      if (e.state === 'committed' && e.r.offset < o.end) onRecord(e.r);
    }
  };
  let offset = o.from;
  let conn: Connection | undefined;
  let progressAt = Date.now();
  try {
    while (offset < o.readTo) {
      if (Date.now() - progressAt > stallMs) throw new Error(`reading ${topic}/${partition} stalled at offset ${offset} (reading to ${o.readTo})`);
      if (!conn) {
        const md = await clusterMetadata(admin, [topic]);
        const leader = md.topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
        const broker = leader === undefined ? undefined : md.brokers.get(leader);
        if (!broker) {
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
        conn = new Connection(broker.host, broker.port);
      }
      let answer: ReturnType<typeof parseFetch>;
      try {
        answer = parseFetch(await conn.request(FETCH, FETCH_VERSION, fetchBody(topic, partition, offset, maxBytes)));
      } catch (e) {
        conn.close();
        conn = undefined;
        await new Promise((r) => setTimeout(r, 300));
        if (Date.now() - progressAt > stallMs) throw e;
        continue;
      }
      if (answer.error !== 0) {
        if (!RETRIABLE.has(answer.error)) throw new Error(`Fetch ${topic}/${partition}@${offset}: error code ${answer.error}`);
        conn.close();
        conn = undefined;
        await new Promise((r) => setTimeout(r, 300));
        continue;
      }
      for (const batch of decodeBatches(answer.records, topic, partition)) {
        if (batch.next <= offset) continue; // already read (a fetch starts at the batch holding the offset)
        offset = batch.next;
        progressAt = Date.now();
        if (batch.control) {
          const state = batch.controlType === 1 ? 'committed' : batch.controlType === 0 ? 'aborted' : undefined;
          if (!state) continue;
          for (const e of open.get(batch.producerId) ?? []) e.state = state;
          open.delete(batch.producerId);
          continue;
        }
        for (const r of batch.records) {
          if (r.offset < o.from) continue;
          const e = { r, state: (o.isolation === 'read_uncommitted' || !batch.transactional ? 'committed' : 'pending') as 'pending' | 'committed' };
          queue.push(e);
          if (e.state === 'pending') open.set(batch.producerId, [...(open.get(batch.producerId) ?? []), e]);
        }
      }
      release();
    }
    // what is still undecided belongs to transactions open at the high watermark: not committed (and at or past `end`)
    for (const e of queue) if (e.state === 'pending') e.state = 'aborted';
    release();
  } finally {
    conn?.close();
  }
}
