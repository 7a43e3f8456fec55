// foldstream_transaction_retries_total: kafkajs has no retry hook, so client.ts counts the produce retries its
// producer logs; CONCURRENT_TRANSACTIONS is told apart from the other reasons.
import test from 'ava';
import { createKafka } from '../../src/kafka/client.ts';

const topology = { app: 'retry-count', kafka: { brokers: '127.0.0.1:9', connectionTimeoutMs: 1000, requestTimeoutMs: 1000 } } as never;

test('a produce retried for CONCURRENT_TRANSACTIONS is counted under its reason, others as other, other lines not at all', (t) => {
  const seen: string[] = [];
  const kafka = createKafka(topology, { observer: { transactionRetry: (reason) => seen.push(reason) } });
  const log = kafka.logger().namespace('Producer');
  // the lines kafkajs 2.2.4 writes (producer/sendMessages.js) with the message of error code 51 (protocol/error.js)
  log.error('Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing', { retryCount: 0, retryTime: 100 });
  log.error('Failed to send messages: This server is not the leader for that topic-partition', { retryCount: 0, retryTime: 100 });
  log.error('Connection error: connect ECONNREFUSED', {});
  log.info('Failed to send messages: not at error level', {});
  t.deepEqual(seen, ['concurrent_transactions', 'other']);
});

test('without an observer nothing is counted and nothing breaks', (t) => {
  const kafka = createKafka(topology);
  t.notThrows(() => kafka.logger().error('Failed to send messages: anything', {}));
});
