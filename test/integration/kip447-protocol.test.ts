// The KIP-447 requests foldstream writes itself over kafkajs's connections (src/kafka/protocol/), against the real
// broker: TxnOffsetCommit v3 carries the group generation and member id, and the group coordinator refuses a commit
// from a stale generation (ILLEGAL_GENERATION) or from a member that is not in the group (UNKNOWN_MEMBER_ID) and
// accepts the current member's; OffsetFetch v7 with require_stable answers UNSTABLE_OFFSET_COMMIT while another
// transaction holds offsets of the partition that are not committed yet, and the offset once it commits.
// The generation and member id come from a real kafkajs consumer of the group (its JoinGroup answers, captured).
import test from 'ava';
import { createRequire } from 'node:module';
import { sendToBroker } from '../../src/kafka/protocol/kafkajs-protocol.ts';
import { offsetFetchV7, UNSTABLE_OFFSET_COMMIT } from '../../src/kafka/protocol/offset-fetch.ts';
import { txnOffsetCommitV3 } from '../../src/kafka/protocol/txn-offset-commit.ts';
import { retryOnCoordinatorError } from '../../src/kafka/errors.ts';
import { KafkaJsTxnCluster } from '../../src/kafka/task-producer.ts';
import { createTopics, deleteTopics, kafka, unique } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/processes.ts';

const require = createRequire(import.meta.url);
const ILLEGAL_GENERATION = 22;
const UNKNOWN_MEMBER_ID = 25;

interface Join {
  groupId: string;
  generationId: number;
  memberId: string;
}

/** Records every JoinGroup answer kafkajs receives (generation and member id; kafkajs's events do not carry the generation). */
function captureJoins(): { joins: Join[]; restore(): void } {
  const Broker = require('kafkajs/src/broker/index.js') as { prototype: { joinGroup(this: unknown, r: { groupId: string }): Promise<{ generationId: number; memberId: string }> } };
  const joinGroup = Broker.prototype.joinGroup;
  const joins: Join[] = [];
  Broker.prototype.joinGroup = async function (this: unknown, r) {
    const answer = await joinGroup.call(this, r);
    joins.push({ groupId: r.groupId, generationId: answer.generationId, memberId: answer.memberId });
    return answer;
  };
  return { joins, restore: () => (Broker.prototype.joinGroup = joinGroup) };
}

test('TxnOffsetCommit v3 is refused for a stale generation or an unknown member and accepted for the current member; OffsetFetch v7 require_stable answers UNSTABLE_OFFSET_COMMIT while the transaction is open', async (t) => {
  const input = unique('kip447-in');
  const groupId = unique('kip447-group');
  const transactionalId = unique('kip447-tx');
  await createTopics([{ topic: input, numPartitions: 1 }]);
  const capture = captureJoins();
  const consumer = kafka().consumer({ groupId, sessionTimeout: 30_000, heartbeatInterval: 1_000 });
  const cluster = new KafkaJsTxnCluster(kafka());
  try {
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.connect();
    await consumer.subscribe({ topic: input });
    await consumer.run({ eachMessage: async () => undefined });
    await waitFor(async () => joined, 30_000, 'the consumer in its group', 100);
    const member = capture.joins.filter((j) => j.groupId === groupId).at(-1)!;
    t.true(member.generationId >= 1);
    t.log(`group ${groupId}: generation ${member.generationId}, member ${member.memberId}`);

    await cluster.connect();
    const coordinator = await cluster.coordinator('transaction', transactionalId);
    const { producerId, producerEpoch } = await coordinator.initProducerId({ transactionalId, transactionTimeout: 60_000 });
    const ids = { transactionalId, producerId, producerEpoch };
    await retryOnCoordinatorError(() => coordinator.addOffsetsToTxn({ ...ids, groupId }));
    const groupCoordinator = await cluster.coordinator('group', groupId);
    const commit = async (generationId: number, memberId: string) => {
      const r = await sendToBroker(
        groupCoordinator,
        txnOffsetCommitV3({ ...ids, groupId, generationId, memberId, groupInstanceId: null, topics: [{ topic: input, partitions: [{ partition: 0, offset: '42' }] }] }, false),
      );
      return r.topics[0]!.partitions[0]!.errorCode;
    };
    t.is(await commit(member.generationId - 1, member.memberId), ILLEGAL_GENERATION, 'a zombie of the previous generation');
    t.is(await commit(member.generationId + 1, member.memberId), ILLEGAL_GENERATION, 'a generation the group has not reached');
    t.is(await commit(member.generationId, `${member.memberId}-gone`), UNKNOWN_MEMBER_ID, 'a member that is not in the group');
    // what kafkajs's TxnOffsetCommit v1 amounts to: no generation, no member — accepted whatever the group's state,
    // which is why the v3 fields are what fences a zombie
    t.is(await commit(-1, ''), 0, 'no generation: not checked');
    t.is(await commit(member.generationId, member.memberId), 0, 'the current member');

    const fetch = async (requireStable: boolean) => {
      const r = await sendToBroker(groupCoordinator, offsetFetchV7({ groupId, topics: [{ topic: input, partitions: [0] }], requireStable }));
      return r.topics.find((x) => x.topic === input)!.partitions.find((p) => p.partition === 0)!;
    };
    t.is((await fetch(true)).errorCode, UNSTABLE_OFFSET_COMMIT, 'require_stable: the open transaction holds offsets of the partition');
    const unstable = await fetch(false);
    t.deepEqual([unstable.errorCode, unstable.offset], [0, -1n], 'without require_stable: the last committed offset (none)');

    await coordinator.endTxn({ ...ids, transactionResult: true });
    let after = await fetch(true);
    await waitFor(async () => (after = await fetch(true)).errorCode === 0, 10_000, 'a stable offset once the transaction committed', 50);
    t.is(after.offset, 42n);
  } finally {
    capture.restore();
    await consumer.disconnect().catch(() => undefined);
    await cluster.disconnect().catch(() => undefined);
  }
  await deleteTopics([input]);
});
