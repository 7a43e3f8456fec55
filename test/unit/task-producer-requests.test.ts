// The task producer's requests (src/kafka/produce-plan.ts, src/kafka/txn-producer.ts): one Produce per leader
// broker carrying every partition, its own sequence numbers per partition, partitions added once per transaction,
// coordinators cached, and — the rule that makes kafkajs's duplicate-batch defect impossible (docs/reliability.md,
// anomaly 1) — a send that partly fails poisons the transaction: nothing is sent again, and after the abort the next
// transaction starts from a new InitProducerId, never from new sequence numbers on old records. The cluster below is
// a recording stand-in (the wire behaviour against a real broker: test/integration/txn-producer.test.ts).
import test from 'ava';
import { FoldstreamError } from '../../src/errors.ts';
import { addSequence, planProduce } from '../../src/kafka/produce-plan.ts';
import { TxnProducer, type TxnBroker, type TxnCluster, type TxnRetryReason } from '../../src/kafka/txn-producer.ts';
import type { OutgoingRecord } from '../../src/kafka/types.ts';

const rec = (topic: string, partition: number, n: number, bytes = 10): OutgoingRecord => ({
  topic,
  partition,
  key: Buffer.from(`k${n}`),
  value: Buffer.alloc(bytes, n),
});

test('the plan has one request per leader broker carrying every partition it leads, each with its own sequences, in order', (t) => {
  const records = [rec('a', 0, 1), rec('b', 0, 2), rec('a', 1, 3), rec('a', 0, 4), rec('b', 0, 5), rec('a', 1, 6)];
  const leader = (topic: string, p: number) => (topic === 'a' && p === 1 ? '2' : '1');
  const plan = planProduce(records, leader, new Map([['a:0', 10]]), 1 << 20);
  t.deepEqual([...plan.byBroker.keys()].sort(), ['1', '2']);
  const one = plan.byBroker.get('1')!;
  t.is(one.length, 1, 'one request to broker 1');
  t.deepEqual(
    one[0]!.map((b) => [b.topic, b.partition, b.firstSequence, b.records.map((r) => r.key!.toString())]),
    [
      ['a', 0, 10, ['k1', 'k4']],
      ['b', 0, 0, ['k2', 'k5']],
    ],
  );
  t.deepEqual(plan.byBroker.get('2')!.map((req) => req.map((b) => [b.topic, b.partition, b.firstSequence, b.records.length])), [[['a', 1, 0, 2]]]);
  t.deepEqual(plan.nextSequences, new Map([['a:0', 12], ['b:0', 2], ['a:1', 2]]));
});

test('a partition above the batch limit is split into batches that go in successive requests with consecutive sequences; a single large record goes alone', (t) => {
  const records = [rec('a', 0, 1, 400), rec('a', 0, 2, 400), rec('b', 0, 9), rec('a', 0, 3, 400), rec('a', 0, 4, 5000), rec('a', 0, 5, 10)];
  const plan = planProduce(records, () => '1', new Map(), 1000);
  const requests = plan.byBroker.get('1')!;
  t.deepEqual(
    requests.map((req) => req.map((b) => `${b.topic}${b.partition}@${b.firstSequence}:${b.records.map((r) => r.key!.toString()).join(',')}`)),
    [['a0@0:k1,k2', 'b0@0:k9'], ['a0@2:k3'], ['a0@3:k4'], ['a0@4:k5']],
  );
  t.is(plan.nextSequences.get('a:0'), 5);
});

test('sequence numbers wrap to 0 after 2^31 - 1', (t) => {
  t.is(addSequence(2 ** 31 - 2, 1), 2 ** 31 - 1);
  t.is(addSequence(2 ** 31 - 1, 1), 0);
  t.is(addSequence(2 ** 31 - 2, 5), 3);
});

// ---------------------------------------------------------------------------------------------------------------
// The producer against a recording cluster

interface Sent {
  api: string;
  broker: string;
  body: Record<string, unknown>;
}

const protocolError = (type: string, code: number) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, code });
const connectionError = () => Object.assign(new Error('Connection error: read ECONNRESET'), { name: 'KafkaJSConnectionError' });

/** Partitions 0 of every topic are led by broker 1, others by broker 2; broker 1 is also the coordinator. */
class RecordingCluster implements TxnCluster {
  sent: Sent[] = [];
  findCoordinator = 0;
  /** the next answers of an api (an error to throw, or undefined to answer normally), in order */
  failures = new Map<string, (Error | undefined)[]>();
  private epoch = -1;
  private offset = 100n;

  private broker_(id: string): TxnBroker {
    const answer = async <T>(api: string, body: Record<string, unknown>, ok: () => T): Promise<T> => {
      this.sent.push({ api, broker: id, body });
      await new Promise((r) => setImmediate(r));
      const queue = this.failures.get(`${api}@${id}`) ?? this.failures.get(api);
      const failure = queue?.shift();
      if (failure) throw failure;
      return ok();
    };
    return {
      initProducerId: (b) => answer('InitProducerId', b, () => ({ producerId: '7', producerEpoch: ++this.epoch })),
      addPartitionsToTxn: (b) => answer('AddPartitionsToTxn', b, () => ({})),
      addOffsetsToTxn: (b) => answer('AddOffsetsToTxn', b, () => ({})),
      txnOffsetCommit: (b) => answer('TxnOffsetCommit', b, () => ({})),
      endTxn: (b) => answer('EndTxn', b, () => ({})),
      produce: (b) =>
        answer('Produce', b, () => ({
          topics: b.topicData.map((td) => ({
            topicName: td.topic,
            partitions: td.partitions.map((p) => {
              const base = this.offset;
              this.offset += BigInt(p.messages.length);
              return { partition: p.partition, errorCode: 0, baseOffset: base.toString() };
            }),
          })),
        })),
    };
  }

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async coordinator(): Promise<TxnBroker> {
    this.findCoordinator++;
    return this.broker_('1');
  }
  async leaders(_topic: string, partitions: number[]): Promise<Map<number, string>> {
    return new Map(partitions.map((p) => [p, p === 0 ? '1' : '2']));
  }
  async broker(nodeId: string): Promise<TxnBroker> {
    return this.broker_(nodeId);
  }
  async anyBroker(): Promise<TxnBroker> {
    return this.broker_('1');
  }
  async refreshMetadata(): Promise<void> {}

  apis(): string[] {
    return this.sent.map((s) => s.api);
  }
  /** [broker, topic, partition, firstSequence, epoch, values] of every batch produced */
  batches(): [string, string, number, number, number, string[]][] {
    return this.sent
      .filter((s) => s.api === 'Produce')
      .flatMap((s) => {
        const b = s.body as unknown as Parameters<TxnBroker['produce']>[0];
        return b.topicData.flatMap((td) =>
          td.partitions.map((p) => [s.broker, td.topic, p.partition, p.firstSequence, b.producerEpoch, p.messages.map((m) => m.key!.toString())] as [string, string, number, number, number, string[]]),
        );
      });
  }
}

async function producer(cluster: RecordingCluster, retries: TxnRetryReason[] = []): Promise<TxnProducer> {
  const p = new TxnProducer(cluster, { transactionalId: 'tx', transactionTimeoutMs: 10_000, groupId: 'g', onRetry: (r) => retries.push(r), retryTimeoutMs: 2_000 });
  await p.init();
  return p;
}

test('a transaction: partitions added once in one request (offsets alongside), one Produce per broker, then TxnOffsetCommit and EndTxn; the coordinator is looked up once', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  for (let tx = 0; tx < 2; tx++) {
    await p.begin();
    const ends = await p.send([rec('out', 0, 1), rec('out', 1, 2), rec('log', 0, 3), rec('log', 1, 4), rec('out', 0, 5)]);
    t.is(ends.size, 4);
    await p.send([rec('out', 0, 6), rec('log', 1, 7)]); // nothing new to add: no AddPartitionsToTxn
    await p.sendOffsets('g', [{ topic: 'in', partition: 3, offset: '42' }]);
    await p.commit();
  }
  const perTransaction = ['AddPartitionsToTxn', 'AddOffsetsToTxn', 'Produce', 'Produce', 'Produce', 'Produce', 'TxnOffsetCommit', 'EndTxn'];
  t.deepEqual(c.apis().slice(1).sort(), [...perTransaction, ...perTransaction].sort());
  t.is(c.apis()[0], 'InitProducerId');
  t.is(c.findCoordinator, 2, 'the transaction coordinator once, the group coordinator once');
  const adds = c.sent.filter((s) => s.api === 'AddPartitionsToTxn').map((s) => s.body.topics);
  t.deepEqual(adds[0], [
    { topic: 'out', partitions: [0, 1] },
    { topic: 'log', partitions: [0, 1] },
  ]);
  // per partition, consecutive sequences across sends and transactions, same epoch
  const seq = (topic: string, partition: number) => c.batches().filter(([, tp, pp]) => tp === topic && pp === partition).map(([, , , s, e, v]) => `${e}/${s}:${v.join(',')}`);
  t.deepEqual(seq('out', 0), ['0/0:k1,k5', '0/2:k6', '0/3:k1,k5', '0/5:k6']);
  t.deepEqual(seq('log', 1), ['0/0:k4', '0/1:k7', '0/2:k4', '0/3:k7']);
  // one request per broker per send, holding both topics' partitions of that broker
  const firstSend = c.sent.filter((s) => s.api === 'Produce').slice(0, 2);
  t.deepEqual(firstSend.map((s) => s.broker).sort(), ['1', '2']);
  for (const s of firstSend) t.is((s.body as unknown as Parameters<TxnBroker['produce']>[0]).topicData.length, 2);
});

test('a send that fails at one broker poisons the transaction: nothing is sent again, the abort ends it, and the next transaction starts from a new InitProducerId with sequences from 0', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  await p.begin();
  await p.send([rec('out', 0, 1), rec('out', 1, 2)]);
  c.failures.set('Produce@2', [protocolError('NOT_LEADER_FOR_PARTITION', 6)]);
  const e = await t.throwsAsync(p.send([rec('out', 0, 3), rec('out', 1, 4)]), { instanceOf: FoldstreamError });
  t.is(e.code, 'TRANSACTION_FAILED');
  const before = c.sent.length;
  await t.throwsAsync(p.send([rec('out', 0, 5)]), { message: /already failed/ });
  await t.throwsAsync(p.sendOffsets('g', [{ topic: 'in', partition: 0, offset: '1' }]), { message: /already failed/ });
  await t.throwsAsync(p.commit(), { message: /failed: abort it/ });
  t.is(c.sent.length, before, 'a poisoned transaction sends nothing');
  await p.abort();
  t.deepEqual(c.sent.slice(before).map((s) => [s.api, s.body.transactionResult]), [['EndTxn', false]]);
  await p.begin();
  await p.send([rec('out', 0, 6), rec('out', 1, 7)]);
  await p.commit();
  t.deepEqual(
    c.batches().map(([b, , part, s, epoch, v]) => `${b}:${part}@${epoch}/${s}:${v.join(',')}`),
    [
      '1:0@0/0:k1',
      '2:1@0/0:k2',
      // the failed send: partition 0 was written, partition 1 was not
      '1:0@0/1:k3',
      '2:1@0/1:k4',
      // after the abort: a new epoch, sequences from 0, only the new records (k3/k4 are the task's to process again)
      '1:0@1/0:k6',
      '2:1@1/0:k7',
    ],
  );
  t.is(c.apis().filter((a) => a === 'InitProducerId').length, 2);
});

test('a Produce answered without an acknowledgement for one of its partitions fails the send like an error does', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  const broker = await c.broker('1');
  const produce = broker.produce;
  c.broker = async () => ({ ...broker, produce: async (b) => ({ topics: (await produce(b)).topics.filter((x) => x.topicName !== 'b') }) });
  await p.begin();
  await t.throwsAsync(p.send([rec('a', 0, 1), rec('b', 0, 2)]), { message: /no acknowledgement for 1 records to b-0/ });
  t.true(p.inTransaction, 'poisoned, still to be aborted');
});

test('CONCURRENT_TRANSACTIONS is retried within a few ms, and reported', async (t) => {
  const c = new RecordingCluster();
  const retries: TxnRetryReason[] = [];
  const p = await producer(c, retries);
  c.failures.set('AddPartitionsToTxn', [protocolError('CONCURRENT_TRANSACTIONS', 51), protocolError('CONCURRENT_TRANSACTIONS', 51)]);
  await p.begin();
  await p.send([rec('a', 0, 1)]);
  await p.commit();
  t.deepEqual(retries, ['concurrent_transactions', 'concurrent_transactions']);
  t.is(c.apis().filter((a) => a === 'AddPartitionsToTxn').length, 3);
  t.is(c.apis().filter((a) => a === 'Produce').length, 1);
});

test('the coordinator is looked up again only after a coordinator error', async (t) => {
  const c = new RecordingCluster();
  const retries: TxnRetryReason[] = [];
  const p = await producer(c, retries);
  t.is(c.findCoordinator, 1);
  c.failures.set('EndTxn', [protocolError('NOT_COORDINATOR_FOR_GROUP', 16)]);
  await p.begin();
  await p.send([rec('a', 0, 1)]);
  await p.commit();
  t.is(c.findCoordinator, 2);
  t.deepEqual(retries, ['coordinator']);
  await p.begin();
  await p.send([rec('a', 0, 2)]);
  await p.commit();
  t.is(c.findCoordinator, 2);
});

test('a fencing answer becomes PRODUCER_FENCED and the producer cannot be used again', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  c.failures.set('Produce', [protocolError('INVALID_PRODUCER_EPOCH', 47)]);
  await p.begin();
  const e = await t.throwsAsync(p.send([rec('a', 0, 1)]), { instanceOf: FoldstreamError });
  t.is(e.code, 'PRODUCER_FENCED');
  t.false(p.inTransaction);
  await t.throwsAsync(p.begin(), { message: /unusable/ });
});

test('an EndTxn lost with the connection is not sent again: the outcome is unknown and the producer is unusable', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  c.failures.set('EndTxn', [connectionError()]);
  await p.begin();
  await p.send([rec('a', 0, 1)]);
  await p.sendOffsets('g', [{ topic: 'in', partition: 0, offset: '1' }]);
  const e = await t.throwsAsync(p.commit(), { instanceOf: FoldstreamError });
  t.is(e.code, 'TRANSACTION_FAILED');
  t.is(c.apis().filter((a) => a === 'EndTxn').length, 1);
  t.false(p.inTransaction);
  await t.throwsAsync(p.begin(), { message: /unusable/ });
});

test('an EndTxn refused by the coordinator\'s connection never left: it is sent again to the coordinator found anew', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9192'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' });
  c.failures.set('EndTxn', [refused]);
  await p.begin();
  await p.send([rec('a', 0, 1)]);
  await p.commit();
  t.is(c.apis().filter((a) => a === 'EndTxn').length, 2);
  t.is(c.findCoordinator, 2);
  t.false(p.inTransaction);
});

test('a transaction that reached no broker ends without EndTxn', async (t) => {
  const c = new RecordingCluster();
  const p = await producer(c);
  await p.begin();
  await p.send([]);
  await p.commit();
  await p.begin();
  await p.abort();
  t.deepEqual(c.apis(), ['InitProducerId']);
});

test('without a transactional id: idempotent sends with sequences, no transaction requests; a failed send re-initialises before the next', async (t) => {
  const c = new RecordingCluster();
  const p = new TxnProducer(c, { transactionTimeoutMs: 10_000 });
  await p.init();
  await p.begin();
  await p.send([rec('a', 0, 1), rec('a', 0, 2)]);
  c.failures.set('Produce', [connectionError()]);
  await t.throwsAsync(p.send([rec('a', 0, 3)]));
  await p.send([rec('a', 0, 4)]);
  t.deepEqual(c.apis(), ['InitProducerId', 'Produce', 'Produce', 'InitProducerId', 'Produce']);
  t.deepEqual(c.batches().map(([, , , s, e]) => `${e}/${s}`), ['0/0', '0/2', '1/0']);
  for (const s of c.sent.filter((x) => x.api === 'Produce')) t.is(s.body.transactionalId, null);
});
