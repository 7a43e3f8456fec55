/**
 * After a throughput run: reads every output with read_committed and checks it against the model of the inputs —
 * how many views, replies and events, and the replies' outcomes — and computes a digest of the outputs, per key in
 * order, with event ids (which name the events topic, so differ between runs) checked and then left out. Two systems
 * whose digests agree wrote the same bytes for the same inputs.
 */
import { createHash, type Hash } from 'node:crypto';
import { eventId } from '../../src/processors/aggregate/event-id.ts';
import type { Broker } from './kafka.ts';
import { sleep } from './proc.ts';
import type { RunTopics } from './systems.ts';
import type { Expected, WorkloadName } from './workload.ts';

export interface Verification {
  ok: boolean;
  problems: string[];
  counts: Record<string, number>;
  outcomes: Record<string, number>;
  digest: string;
  /** output values, a few hundred per topic, for the ceiling's payload files */
  samples: Record<string, string[]>;
}

export async function verifyOutputs(broker: Broker, workload: WorkloadName, topics: RunTopics, expected: Expected, groupId: string): Promise<Verification> {
  const outputs = workload === 'projection' ? { [topics.view!]: expected.primary } : { [topics.replies!]: expected.primary, [topics.events!]: expected.events };
  const counts: Record<string, number> = Object.fromEntries(Object.keys(outputs).map((t) => [t, 0]));
  const outcomes: Record<string, number> = {};
  const samples: Record<string, string[]> = Object.fromEntries(Object.keys(outputs).map((t) => [t, []]));
  const problems: string[] = [];
  const perKey = new Map<string, Hash>();
  const seenCommands = new Set<string>();
  const hash = (topic: string, key: string) => {
    const k = `${topic === topics.events ? 'e' : 'p'}:${key}`;
    let h = perKey.get(k);
    if (!h) perKey.set(k, (h = createHash('sha256')));
    return h;
  };

  const consumer = broker.kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  for (const t of Object.keys(outputs)) await consumer.subscribe({ topic: t, fromBeginning: true });
  let last = Date.now();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      last = Date.now();
      const topic = batch.topic;
      for (const m of batch.messages) {
        counts[topic]!++;
        const key = m.key?.toString() ?? '';
        let value = m.value?.toString() ?? 'null';
        if (samples[topic]!.length < 500) samples[topic]!.push(value);
        if (workload === 'projection') {
          // the header is counted, not hashed: a system that writes none still shows whether its views agree
          if (m.headers?.['foldstream.view.version'] === undefined) counts.withoutVersionHeader = (counts.withoutVersionHeader ?? 0) + 1;
          hash(topic, key).update(`${value}\n`);
          continue;
        }
        if (topic === topics.events) {
          const e = JSON.parse(value) as { eventId: string; aggregateVersion: number };
          const want = eventId(topics.events, 'User', key, e.aggregateVersion);
          if (e.eventId !== want && problems.length < 20) problems.push(`event ${key} v${e.aggregateVersion} has eventId ${e.eventId}, expected ${want}`);
          value = value.replace(e.eventId, '<eventId>');
        } else {
          const r = JSON.parse(value) as { commandId: string; status: string; eventIds: string[] };
          const outcome = seenCommands.has(r.commandId) ? 'duplicate' : r.status;
          seenCommands.add(r.commandId);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          for (const id of r.eventIds) value = value.replace(id, '<eventId>');
        }
        hash(topic, key).update(`${value}\n`);
      }
    },
  });
  const complete = () => Object.entries(outputs).every(([t, n]) => counts[t]! >= n);
  // stop when everything expected arrived and a little more time showed nothing extra, or nothing moves for 10 s
  while (!complete() && Date.now() - last < 10_000) await sleep(100);
  await sleep(complete() ? 500 : 0);
  await consumer.disconnect();

  for (const [t, n] of Object.entries(outputs)) if (counts[t] !== n) problems.push(`${t}: ${counts[t]} records, expected ${n}`);
  if (workload === 'aggregate') {
    for (const [o, n] of Object.entries(expected.outcomes)) if ((outcomes[o] ?? 0) !== n) problems.push(`${o} replies: ${outcomes[o] ?? 0}, expected ${n}`);
  }
  const all = createHash('sha256');
  for (const k of [...perKey.keys()].sort()) all.update(`${k}=${perKey.get(k)!.digest('hex')}\n`);
  return { ok: problems.length === 0, problems, counts, outcomes, digest: all.digest('hex').slice(0, 16), samples };
}
