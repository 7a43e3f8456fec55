// foldstream partitions keys as the Java client does, so that other producers (Kafka Streams apps, Java services,
// kafka-console-producer) put an aggregate's commands and events in the same partition as foldstream. The reference
// here is the Java client itself: test/fixtures/java/JavaPartitions.java runs Apache Kafka's KafkaProducer from the
// broker's jars (the ones `npm test` fetched to run the broker), sends records to the real broker, and prints the
// partition the broker acknowledged and `Utils.murmur2` of each key.
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describeCluster, ensureKafkaJars } from '../../scripts/kafka/cluster.ts';
import { App } from '../../src/app/app.ts';
import type { EventEnvelope } from '../../src/serde/envelope.ts';
import { murmur2, partitionForKey } from '../../src/serde/murmur2.ts';
import { ROOT } from '../helpers/cli.ts';
import { BROKERS, createTopics, deleteTopics, unique } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { prng } from '../helpers/prng.ts';
import { command } from '../helpers/user-model.ts';
import { CommandClient, readUntil, usersApp } from '../helpers/users-app.ts';

interface JavaSent {
  key: string;
  murmur2: number;
  partition: number;
}

/** Sends records with the Java producer's default partitioner; returns what Java computed and where each landed. */
function javaProduce(topic: string, records: { key: Buffer; value?: Buffer }[]): Promise<JavaSent[]> {
  const libs = ensureKafkaJars(describeCluster().version);
  const source = join(ROOT, 'test/fixtures/java/JavaPartitions.java');
  return new Promise((resolve, reject) => {
    const java = spawn('java', ['-Xmx128m', '-cp', join(libs, '*'), source, BROKERS.join(','), topic], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    java.stdout.on('data', (b: Buffer) => (out += b.toString()));
    java.stderr.on('data', (b: Buffer) => (err += b.toString()));
    java.on('error', reject);
    java.on('close', (code) => {
      if (code !== 0) return reject(new Error(`JavaPartitions exited ${code}: ${err.slice(-2000)}`));
      resolve(out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as JavaSent));
    });
    java.stdin.end(records.map((r) => (r.value ? `${r.key.toString('hex')} ${r.value.toString('hex')}` : r.key.toString('hex'))).join('\n') + '\n');
  });
}

/** Keys of every shape: ASCII of every length up to 40, tenant keys, multi-byte UTF-8, emoji, bytes that are not UTF-8. */
function keys(): Buffer[] {
  const rnd = prng(7);
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(33 + Math.floor(rnd() * 94))).join('');
  const out = [
    ...Array.from({ length: 41 }, (_, n) => ascii(n)),
    ...Array.from({ length: 40 }, (_, i) => `tenant-${i % 3}:user-${i}`),
    'élodie', '日本語のキー', 'user-😀', 'Ω≈ç√∫', 'a\u0000b',
    ...Array.from({ length: 20 }, (_, i) => `user-${i}-${'x'.repeat(i * 7)}`),
  ].map((s) => Buffer.from(s, 'utf8'));
  for (let i = 0; i < 30; i++) out.push(Buffer.from(Array.from({ length: 1 + (i % 13) }, () => Math.floor(rnd() * 256))));
  return out;
}

test('murmur2 and the partition of every kind of key agree with the Java client, on 12 and on 7 partitions', async (t) => {
  const twelve = unique('java-p12');
  const seven = unique('java-p7');
  await createTopics([{ topic: twelve, numPartitions: 12 }, { topic: seven, numPartitions: 7 }]);
  try {
    const ks = keys();
    const [on12, on7] = await Promise.all([javaProduce(twelve, ks.map((key) => ({ key }))), javaProduce(seven, ks.map((key) => ({ key })))]);
    t.is(on12.length, ks.length);
    t.is(on7.length, ks.length);
    const disagree: string[] = [];
    ks.forEach((key, i) => {
      const hex = key.toString('hex');
      if (on12[i]!.key !== hex || on7[i]!.key !== hex) throw new Error('Java answered out of order');
      if (murmur2(key) !== on12[i]!.murmur2) disagree.push(`murmur2(${hex}) = ${murmur2(key)}, Java ${on12[i]!.murmur2}`);
      if (partitionForKey(key, 12) !== on12[i]!.partition) disagree.push(`${hex} on 12: ${partitionForKey(key, 12)}, Java ${on12[i]!.partition}`);
      if (partitionForKey(key, 7) !== on7[i]!.partition) disagree.push(`${hex} on 7: ${partitionForKey(key, 7)}, Java ${on7[i]!.partition}`);
    });
    t.deepEqual(disagree, []);
    // the keys spread over every partition, so a partitioner that ignored the key could not pass
    t.is(new Set(on12.map((s) => s.partition)).size, 12);
    // and some hashes are negative, where the Java client's toPositive (not Math.abs) matters
    t.true(on12.some((s) => s.murmur2 < 0));
  } finally {
    await deleteTopics([twelve, seven]);
  }
});

test('commands written by a Java producer and the events foldstream emits for them share each aggregate\'s partition', async (t) => {
  const env = await usersApp();
  const app = new App(env.loaded, { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  let client: CommandClient | undefined;
  try {
    await app.start();
    client = await CommandClient.start(env.topic('commands'), env.topic('replies'));
    const ids = Array.from({ length: 36 }, (_, i) => `java-user-${i}-${'é'.repeat(i % 4)}`);
    const commands = ids.map((id) => command('CreateUser', id, { email: `${id.replace(/[^a-z0-9-]/g, 'e')}@x.example`, fullName: id }));
    const sent = await javaProduce(env.topic('commands'), commands.map((c) => ({ key: Buffer.from(c.aggregateId), value: Buffer.from(JSON.stringify(c)) })));
    const replies = await client.waitFor(commands);
    t.true(replies.every((r) => r.length === 1 && r[0]!.status === 'accepted'));
    const events = await readUntil([env.topic('events')], (rs) => rs.length >= ids.length, 'one UserCreated per user');
    const commandPartition = new Map(sent.map((s) => [Buffer.from(s.key, 'hex').toString('utf8'), s.partition]));
    const misplaced = events
      .map((r) => ({ id: (JSON.parse(String(r.value)) as EventEnvelope).aggregateId, partition: r.partition, key: r.key }))
      .filter((e) => e.key !== e.id || e.partition !== commandPartition.get(e.id));
    t.deepEqual(misplaced, []);
    t.deepEqual(events.map((r) => r.key!).sort(), [...ids].sort());
    t.true(new Set(sent.map((s) => s.partition)).size > 6, 'the commands spread over the partitions');
  } finally {
    await client?.close();
    await app.stop();
    await env.cleanup();
  }
});
