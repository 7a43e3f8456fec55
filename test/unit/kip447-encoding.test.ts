// The bytes of foldstream's KIP-447 requests (src/kafka/protocol/), written out by hand from Kafka's message
// definitions (TxnOffsetCommitRequest.json v3, OffsetFetchRequest.json v7): flexible versions, so compact strings and
// arrays (length + 1 as an unsigned varint, 0 = null) and an empty tagged-field section after every structure and
// after the request header (which kafkajs writes up to the client id; the body starts with the header's tags).
// The same requests against the real broker: test/integration/kip447-protocol.test.ts.
import test from 'ava';
import { decodeOffsetFetchV7, encodeOffsetFetchV7 } from '../../src/kafka/protocol/offset-fetch.ts';
import { decodeTxnOffsetCommitV3, encodeTxnOffsetCommitV3 } from '../../src/kafka/protocol/txn-offset-commit.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('TxnOffsetCommit v3 request: ids, generation, member, null instance id, topics with leader epoch -1 and null metadata', (t) => {
  const body = encodeTxnOffsetCommitV3({
    transactionalId: 't',
    groupId: 'g',
    producerId: '5',
    producerEpoch: 2,
    generationId: 7,
    memberId: 'm',
    groupInstanceId: null,
    topics: [{ topic: 'x', partitions: [{ partition: 1, offset: '42' }] }],
  }).buffer;
  t.deepEqual(
    body,
    hex(`00
      02 74  02 67  0000000000000005  0002  00000007  02 6d  00
      02  02 78  02  00000001 000000000000002a ffffffff 00 00  00
      00`),
  );
});

test('TxnOffsetCommit v3 response: per-partition error codes', (t) => {
  const raw = hex('00 00000000 02 02 78 02 00000001 0016 00 00 00');
  t.deepEqual(decodeTxnOffsetCommitV3(raw), { throttleTimeMs: 0, topics: [{ topic: 'x', partitions: [{ partition: 1, errorCode: 22 }] }] });
});

test('OffsetFetch v7 request with require_stable, and for all partitions (null topics)', (t) => {
  t.deepEqual(encodeOffsetFetchV7({ groupId: 'g', topics: [{ topic: 'x', partitions: [0, 3] }], requireStable: true }).buffer, hex('00 02 67 02 02 78 03 00000000 00000003 00 01 00'));
  t.deepEqual(encodeOffsetFetchV7({ groupId: 'g', topics: null, requireStable: false }).buffer, hex('00 02 67 00 00 00'));
});

test('OffsetFetch v7 response: offset, leader epoch, metadata and the partition error (UNSTABLE_OFFSET_COMMIT), then the group error', (t) => {
  const raw = hex('00 0000000a 02 02 78 02 00000000 000000000000002a ffffffff 01 0058 00 00 0000 00');
  t.deepEqual(decodeOffsetFetchV7(raw), {
    throttleTimeMs: 10,
    topics: [{ topic: 'x', partitions: [{ partition: 0, offset: 42n, leaderEpoch: -1, metadata: '', errorCode: 88 }] }],
    errorCode: 0,
  });
});
