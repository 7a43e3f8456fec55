/**
 * `foldstream state-at`: an aggregate's state as of a time (or now), rebuilt from its events topic through the
 * decider's own evolve and the topology's upcasters (processors/aggregate/state-at.ts). It reads the partition that
 * holds the aggregate's key (every partition under a partitioner module), read_committed, and needs neither the app
 * running nor its stores. The wiring of Kafka for this offline command lives here; cli/ parses and prints.
 */
import { buildProcessorSpecs } from '../processors/build.ts';
import { stateAt } from '../processors/aggregate/state-at.ts';
import type { Logger } from '../processors/types.ts';
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import { createKafka } from '../kafka/client.ts';
import { createOffsetsAdmin } from '../kafka/offsets-admin.ts';
import { decode } from '../serde/codecs.ts';
import { aggregateKey, eventProblem, type EventEnvelope } from '../serde/envelope.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { offsetProgress, type ProgressFactory } from './progress.ts';
import type { AggregateProcessorDecl } from '../topology/schema.ts';

export interface StateAtQuery {
  aggregate: AggregateProcessorDecl;
  aggregateId: string;
  tenant?: string | undefined;
  /** ms since the epoch; undefined: now */
  at?: number | undefined;
  log: Logger;
  /** how progress is shown (app/progress.ts); none by default */
  progress?: ProgressFactory | undefined;
}

export interface StateAtAnswer {
  version: number;
  state: unknown;
  /** the events applied, in order */
  events: EventEnvelope[];
  /** events of the aggregate after `at` */
  later: number;
  /** records with the aggregate's key that are not its events (undecodable, another aggregate type) */
  skipped: number;
}

export async function aggregateStateAt(loaded: LoadedTopology, q: StateAtQuery): Promise<StateAtAnswer> {
  const t = loaded.topology;
  const p = q.aggregate;
  const events = t.topics[p.output.events]!;
  const key = q.tenant === undefined ? q.aggregateId : aggregateKey(q.aggregateId, q.tenant);
  // a partitioner module places events by the event itself: look in every partition then
  const partitions = typeof p.partitioning === 'object' ? [...Array(events.partitions).keys()] : [partitionForKey(key, events.partitions)];
  // the aggregate as the runtime builds it: its decider's initialState and evolve, and the topology's upcasters
  const aggregate = (await buildProcessorSpecs(loaded)).find((s) => s.name === p.name)!.aggregate!;
  const kafka = createKafka(t, { baseDir: loaded.baseDir, log: q.log, clientIdSuffix: '-state-at' });
  const reader = new ChangelogReader(kafka, q.log);
  const admin = createOffsetsAdmin(kafka);
  try {
    const found: EventEnvelope[] = [];
    let skipped = 0;
    const starts = await admin.startOffsets(events.name);
    const bar = q.progress ? offsetProgress(q.progress, `read ${events.name}`, starts, await admin.endOffsets(events.name), partitions) : undefined;
    for (const partition of partitions) {
      const read = (from: bigint, tick: (records: { offset: string }[]) => void) => reader.read(events.name, partition, from, async (records) => {
        for (const r of records) {
          if (r.key === null || r.key.toString('utf8') !== key) continue;
          let value: unknown;
          try {
            value = decode(events.codec, r.value);
          } catch {
            skipped++;
            continue;
          }
          // another aggregate type may share the topic and the id: only this one's events
          if (eventProblem(value) || (value as EventEnvelope).aggregateType !== p.aggregateType) {
            skipped++;
            continue;
          }
          found.push(value as EventEnvelope);
        }
        tick(records);
      });
      if (bar) await bar.partition(partition, read);
      else await read(starts.get(partition) ?? 0n, () => undefined);
    }
    bar?.stop();
    const r = await stateAt(aggregate, aggregate.upcasters, found, q.at);
    return { version: r.version, state: r.state, events: r.events, later: r.later, skipped };
  } finally {
    await reader.close();
    await admin.close();
  }
}
