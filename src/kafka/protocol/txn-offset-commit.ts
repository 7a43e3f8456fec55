/**
 * TxnOffsetCommit v3 (KIP-447): the transactional offset commit that carries the consumer group's generation id,
 * member id and group instance id, so the group coordinator refuses a commit from a member of an old generation
 * (ILLEGAL_GENERATION) or one that left the group (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID): a zombie's transaction
 * then aborts instead of committing offsets the new owner of the partition also processes. kafkajs 2.2.4 speaks only
 * v0-v1 (no generation). Flexible version: compact strings and arrays, tagged fields.
 *
 * TxnOffsetCommit Request (Version: 3) => transactional_id group_id producer_id producer_epoch generation_id member_id
 *                                         group_instance_id [topics] TAG_BUFFER
 *   topics => name [partitions] TAG_BUFFER
 *     partitions => partition_index committed_offset committed_leader_epoch committed_metadata TAG_BUFFER
 * TxnOffsetCommit Response (Version: 3) => throttle_time_ms [topics] TAG_BUFFER
 *   topics => name [partitions] TAG_BUFFER
 *     partitions => partition_index error_code TAG_BUFFER
 */
import { newDecoder, newEncoder, protocolError, readCompactArray, writeCompactArray, writeNoTags, type Encoder, type ProtocolRequest } from './kafkajs-protocol.ts';

export const TXN_OFFSET_COMMIT = 28;

export interface TxnOffsetCommitV3 {
  transactionalId: string;
  groupId: string;
  producerId: string;
  producerEpoch: number;
  /** the group generation the committing member belongs to; -1 with member id "" commits without a generation check */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  topics: { topic: string; partitions: { partition: number; offset: string; leaderEpoch?: number; metadata?: string | null }[] }[];
}

export interface TxnOffsetCommitResult {
  throttleTimeMs: number;
  topics: { topic: string; partitions: { partition: number; errorCode: number }[] }[];
}

/** The request body (after kafkajs's header v1), starting with the header v2's tagged fields. */
export function encodeTxnOffsetCommitV3(r: TxnOffsetCommitV3): Encoder {
  const e = newEncoder();
  writeNoTags(e); // request header v2: its tagged fields (kafkajs wrote the header up to the client id)
  e.writeUVarIntString(r.transactionalId)
    .writeUVarIntString(r.groupId)
    .writeInt64(r.producerId)
    .writeInt16(r.producerEpoch)
    .writeInt32(r.generationId)
    .writeUVarIntString(r.memberId)
    .writeUVarIntString(r.groupInstanceId);
  writeCompactArray(e, r.topics, (e, t) => {
    e.writeUVarIntString(t.topic);
    writeCompactArray(e, t.partitions, (e, p) => {
      e.writeInt32(p.partition).writeInt64(p.offset).writeInt32(p.leaderEpoch ?? -1).writeUVarIntString(p.metadata ?? null);
      writeNoTags(e);
    });
    writeNoTags(e);
  });
  writeNoTags(e);
  return e;
}

export function decodeTxnOffsetCommitV3(raw: Buffer): TxnOffsetCommitResult {
  const d = newDecoder(raw);
  d.readTaggedFields(); // response header v1
  const throttleTimeMs = d.readInt32();
  const topics = readCompactArray(d, (d) => {
    const topic = d.readUVarIntString() ?? '';
    const partitions = readCompactArray(d, (d) => {
      const p = { partition: d.readInt32(), errorCode: d.readInt16() };
      d.readTaggedFields();
      return p;
    });
    d.readTaggedFields();
    return { topic, partitions };
  });
  d.readTaggedFields();
  return { throttleTimeMs, topics };
}

/**
 * The request for kafkajs's connection. With `throwOnError` (default) the first partition error is thrown as kafkajs's
 * protocol error (numeric `code`, `type`), with the partition it is about.
 */
export function txnOffsetCommitV3(r: TxnOffsetCommitV3, throwOnError = true): ProtocolRequest<TxnOffsetCommitResult> {
  return {
    request: {
      apiKey: TXN_OFFSET_COMMIT,
      apiVersion: 3,
      apiName: 'TxnOffsetCommit',
      encode: async () => encodeTxnOffsetCommitV3(r),
    },
    response: {
      decode: async (raw) => decodeTxnOffsetCommitV3(raw),
      parse: async (data) => {
        if (!throwOnError) return data;
        for (const t of data.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw Object.assign(protocolError(p.errorCode), { topic: t.topic, partition: p.partition });
          }
        }
        return data;
      },
    },
  };
}
