// The read_committed filter foldstream installs into kafkajs's fetch responses (src/kafka/read-committed-filter.ts),
// on record layouts a partition written by several transactional producers can hold.
import test from 'ava';
import { createRequire } from 'node:module';
import { abortedMessages, filterFetchResponse, type AbortedTransaction, type FetchedMessage } from '../../src/kafka/read-committed-filter.ts';

const ABORT = Buffer.from([0, 0, 0, 0]);
const COMMIT = Buffer.from([0, 0, 0, 1]);

/** A data record of a transactional producer, a plain (non-transactional) record, a marker. */
const tx = (offset: number, producerId: string): FetchedMessage => ({ offset: String(offset), key: Buffer.from('k'), batchContext: { producerId, inTransaction: true } });
const plain = (offset: number): FetchedMessage => ({ offset: String(offset), key: Buffer.from('k'), batchContext: { producerId: '-1', inTransaction: false } });
const marker = (offset: number, producerId: string, key: Buffer): FetchedMessage => ({ offset: String(offset), key, isControlRecord: true, batchContext: { producerId, inTransaction: true } });
const aborted = (producerId: string, firstOffset: number): AbortedTransaction => ({ producerId, firstOffset: String(firstOffset) });
const offsets = (ms: Iterable<FetchedMessage>) => [...ms].map((m) => Number(m.offset));

// A sends 0-4, B sends 5-9, B aborts (10), A aborts (11), then a plain record: the broker lists B before A.
const overlapping = [...[0, 1, 2, 3, 4].map((o) => tx(o, 'A')), ...[5, 6, 7, 8, 9].map((o) => tx(o, 'B')), marker(10, 'B', ABORT), marker(11, 'A', ABORT), plain(12)];
const listedAsAborted = [aborted('B', 5), aborted('A', 0)];

test('two producers aborted in the opposite order they began: every record of both is aborted, the plain record is not', (t) => {
  t.deepEqual(offsets(abortedMessages(overlapping, listedAsAborted)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("kafkajs 2.2.4's own filter delivers the first producer's aborted records in that layout (why ours is installed)", (t) => {
  const require = createRequire(import.meta.url);
  const kafkajsFilter = require('kafkajs/src/consumer/filterAbortedMessages.js') as (a: { messages: FetchedMessage[]; abortedTransactions: AbortedTransaction[] }) => FetchedMessage[];
  const delivered = kafkajsFilter({ messages: overlapping, abortedTransactions: listedAsAborted }).filter((m) => !m.isControlRecord);
  t.deepEqual(offsets(delivered), [0, 1, 2, 3, 4, 12], 'if kafkajs is fixed, this test tells us the patch may go');
});

test('a fetch that starts inside two aborted transactions aborts the records of both from its first record on', (t) => {
  const ms = [tx(100, 'B'), tx(101, 'A'), tx(102, 'B'), marker(103, 'A', ABORT), marker(104, 'B', ABORT), plain(105)];
  t.deepEqual(offsets(abortedMessages(ms, [aborted('A', 90), aborted('B', 95)])), [100, 101, 102]);
});

test("a producer's committed transaction after its aborted one is kept, and so are other producers' records in between", (t) => {
  const ms = [tx(0, 'A'), tx(1, 'C'), marker(2, 'A', ABORT), tx(3, 'A'), tx(4, 'C'), marker(5, 'C', COMMIT), marker(6, 'A', COMMIT)];
  t.deepEqual(offsets(abortedMessages(ms, [aborted('A', 0)])), [0]);
});

test('without aborted transactions nothing is filtered; the response keeps aborted records as control records and an empty list', (t) => {
  t.deepEqual(offsets(abortedMessages(overlapping, [])), []);
  const messages = overlapping.map((m) => ({ ...m }));
  const data = filterFetchResponse({ responses: [{ partitions: [{ abortedTransactions: [...listedAsAborted], messages }] }] });
  const p = data.responses![0]!.partitions![0]!;
  t.deepEqual(p.abortedTransactions, []);
  t.deepEqual(offsets(messages.filter((m) => !m.isControlRecord)), [12], 'what kafkajs delivers');
  t.is(messages.length, overlapping.length, 'every record keeps its offset for the consumer position');
});
