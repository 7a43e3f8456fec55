/**
 * OffsetFetch v7 with require_stable (KIP-447): the committed offsets of a group, where a partition for which some
 * transaction holds offsets not yet committed or aborted answers UNSTABLE_OFFSET_COMMIT instead of the last committed
 * offset — so a new owner of a task can wait for the previous owner's transaction to end before it reads its
 * position. kafkajs 2.2.4 speaks OffsetFetch up to v4, without require_stable. Flexible version.
 *
 * OffsetFetch Request (Version: 7) => group_id [topics] require_stable TAG_BUFFER
 *   topics => name [partition_indexes] TAG_BUFFER
 * OffsetFetch Response (Version: 7) => throttle_time_ms [topics] error_code TAG_BUFFER
 *   topics => name [partitions] TAG_BUFFER
 *     partitions => partition_index committed_offset committed_leader_epoch metadata error_code TAG_BUFFER
 */
import { newDecoder, newEncoder, protocolError, readCompactArray, writeCompactArray, writeNoTags, type Encoder, type ProtocolRequest } from './kafkajs-protocol.ts';

export const OFFSET_FETCH = 9;
/** the partition has offsets of a transaction that has not ended yet */
export const UNSTABLE_OFFSET_COMMIT = 88;

export interface OffsetFetchV7 {
  groupId: string;
  /** null: every partition the group has offsets for */
  topics: { topic: string; partitions: number[] }[] | null;
  requireStable: boolean;
}

export interface FetchedOffset {
  partition: number;
  /** -1: none committed */
  offset: bigint;
  leaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

export interface OffsetFetchResult {
  throttleTimeMs: number;
  topics: { topic: string; partitions: FetchedOffset[] }[];
  errorCode: number;
}

export function encodeOffsetFetchV7(r: OffsetFetchV7): Encoder {
  const e = newEncoder();
  writeNoTags(e); // request header v2
  e.writeUVarIntString(r.groupId);
  if (r.topics === null) e.writeUVarInt(0);
  else {
    writeCompactArray(e, r.topics, (e, t) => {
      e.writeUVarIntString(t.topic);
      writeCompactArray(e, t.partitions, (e, p) => e.writeInt32(p));
      writeNoTags(e);
    });
  }
  e.writeBoolean(r.requireStable);
  writeNoTags(e);
  return e;
}

export function decodeOffsetFetchV7(raw: Buffer): OffsetFetchResult {
  const d = newDecoder(raw);
  d.readTaggedFields(); // response header v1
  const throttleTimeMs = d.readInt32();
  const topics = readCompactArray(d, (d) => {
    const topic = d.readUVarIntString() ?? '';
    const partitions = readCompactArray(d, (d) => {
      const p: FetchedOffset = {
        partition: d.readInt32(),
        offset: BigInt(d.readInt64().toString()),
        leaderEpoch: d.readInt32(),
        metadata: d.readUVarIntString(),
        errorCode: d.readInt16(),
      };
      d.readTaggedFields();
      return p;
    });
    d.readTaggedFields();
    return { topic, partitions };
  });
  const errorCode = d.readInt16();
  d.readTaggedFields();
  return { throttleTimeMs, topics, errorCode };
}

/**
 * The request for kafkajs's connection. A group-level error is thrown (kafkajs's protocol error); partition errors,
 * UNSTABLE_OFFSET_COMMIT among them, are returned per partition for the caller to act on.
 */
export function offsetFetchV7(r: OffsetFetchV7): ProtocolRequest<OffsetFetchResult> {
  return {
    request: { apiKey: OFFSET_FETCH, apiVersion: 7, apiName: 'OffsetFetch', encode: async () => encodeOffsetFetchV7(r) },
    response: {
      decode: async (raw) => decodeOffsetFetchV7(raw),
      parse: async (data) => {
        if (data.errorCode !== 0) throw protocolError(data.errorCode);
        return data;
      },
    },
  };
}
