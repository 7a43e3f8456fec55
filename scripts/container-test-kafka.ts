// Used by scripts/container-test.sh after `docker stop`: lists the partitions of the app's topics (the topics the
// topology declares and the internal ones named after its app: changelogs, repartition topics) that still have a
// transaction open — high watermark above the last stable offset — after giving the coordinator 5 s to write the
// markers of transactions that had just ended. Prints them and exits 1 when there are any; a drain leaves none.
//   npx tsx scripts/container-test-kafka.ts <topology.yaml>      (brokers: KAFKA_BROKERS, as the topology reads them)
import { loadTopology } from '../src/topology/load.ts';
import { openTransactions, settleTransactions, withAdmin } from '../test/helpers/kafka.ts';

const file = process.argv[2];
if (!file) {
  console.error('usage: container-test-kafka.ts <topology.yaml>');
  process.exit(2);
}
const t = loadTopology(file).topology;
const brokers = Array.isArray(t.kafka.brokers) ? t.kafka.brokers : t.kafka.brokers.split(',').map((b) => b.trim());
const declared = new Set(Object.values(t.topics).map((d) => d.name));
const existing = await withAdmin((admin) => admin.listTopics(), brokers);
const topics = existing.filter((name) => declared.has(name) || name.startsWith(`${t.app}-`)).sort();
await settleTransactions(topics, 5000, brokers);
const open = (await Promise.all(topics.map(async (topic) => ({ topic, partitions: await openTransactions(topic, brokers) })))).filter((o) => o.partitions.length);
for (const o of open) console.log(`${o.topic}: a transaction is open on partitions ${o.partitions.join(', ')}`);
console.log(`${topics.length} topics of ${t.app} checked, ${open.length} with a transaction open`);
process.exit(open.length ? 1 : 0);
