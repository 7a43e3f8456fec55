import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import type { Logger } from '../../processors/types.ts';
import { decode } from '../../serde/codecs.ts';
import { aggregateKey, eventProblem, type EventEnvelope } from '../../serde/envelope.ts';
import { partitionForKey } from '../../serde/murmur2.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream state-at`: an aggregate's state as of a time (or now), rebuilt from its events topic through the
 * decider's own evolve and the topology's upcasters (processors/aggregate/state-at.ts) — for audits and for asking
 * "what did the system believe then". It reads the partition that holds the aggregate's key, read_committed, and
 * needs neither the app running nor its stores.
 */

const EXIT_NOT_FOUND = 1;
const EXIT_TROUBLE = 2;

function parseTime(s: string): number {
  const t = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`--at ${JSON.stringify(s)}: expected ISO-8601 (2026-01-31T12:00:00Z) or ms since the epoch`);
  return t;
}

export function registerStateAt(program: Command): void {
  program
    .command('state-at')
    .description(
      "print an aggregate's state as of a time (default: now) as JSON, rebuilt from its events topic through its decider's evolve " +
        'and the upcasters; the app need not run. Exit 1 when the aggregate has no events by then, 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml')
    .argument('<aggregate>', 'the aggregate processor, by name or aggregateType')
    .argument('<aggregateId>', 'the aggregate id')
    .option('--at <time>', 'ISO-8601 time or ms since the epoch: apply the events in version order up to the first dated after it')
    .option('--tenant <tenantId>', 'the tenant, for an aggregate with partitioning: tenant')
    .option('--events', 'also print the events applied')
    .action(async (file: string, which: string, aggregateId: string, opts: { at?: string; tenant?: string; events?: boolean }, cmd: Command) => {
      let at: number | undefined;
      try {
        at = opts.at === undefined ? undefined : parseTime(opts.at);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      const loaded = loadTopologyOrExit(file);
      const t = loaded.topology;
      const aggregates = t.processors.filter((p): p is AggregateProcessorDecl => p.type === 'aggregate');
      const p = aggregates.find((x) => x.name === which) ?? aggregates.find((x) => x.aggregateType === which);
      if (!p) {
        const known = aggregates.map((x) => `${x.name} (${x.aggregateType})`).join(', ') || 'none';
        cmd.error(`error: no aggregate "${which}" in ${file}; its aggregates: ${known}`);
      }
      const events = t.topics[p.output.events]!;
      const key = opts.tenant === undefined ? aggregateId : aggregateKey(aggregateId, opts.tenant);
      // a partitioner module places events by the event itself: look in every partition then
      const partitions = typeof p.partitioning === 'object' ? [...Array(events.partitions).keys()] : [partitionForKey(key, events.partitions)];

      const { buildProcessorSpecs } = await import('../../processors/build.ts');
      const { stateAt } = await import('../../processors/aggregate/state-at.ts');
      const { ChangelogReader } = await import('../../kafka/changelog-reader.ts');
      const { createOffsetsAdmin } = await import('../../kafka/offsets-admin.ts');
      const { createKafka } = await import('../../kafka/client.ts');
      // the aggregate as the runtime builds it: its decider's initialState and evolve, and the topology's upcasters
      const aggregate = (await buildProcessorSpecs(loaded)).find((s) => s.name === p.name)!.aggregate!;
      // stdout is the JSON answer: problems go to stderr, chatter nowhere
      const log: Logger = { debug() {}, info() {}, warn: (f, m) => console.error(m ?? '', JSON.stringify(f)), error: (f, m) => console.error(m ?? '', JSON.stringify(f)) };
      const kafka = createKafka(t, { baseDir: loaded.baseDir, log, clientIdSuffix: '-state-at' });
      const reader = new ChangelogReader(kafka, log);
      const admin = createOffsetsAdmin(kafka);
      try {
        const found: EventEnvelope[] = [];
        let skipped = 0;
        for (const partition of partitions) {
          const start = (await admin.startOffsets(events.name)).get(partition) ?? 0n;
          let read = 0;
          await reader.read(events.name, partition, start, async (records) => {
            read += records.length;
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
            if (process.stderr.isTTY) process.stderr.write(`\rread ${read} records of ${events.name}-${partition}`);
          });
          if (process.stderr.isTTY) process.stderr.write('\n');
        }
        const r = await stateAt(aggregate, aggregate.upcasters, found, at);
        const out: Record<string, unknown> = {
          aggregate: p.name,
          aggregateType: p.aggregateType,
          aggregateId,
          ...(opts.tenant === undefined ? {} : { tenantId: opts.tenant }),
          at: at === undefined ? null : new Date(at).toISOString(),
          version: r.version,
          state: r.version === 0 ? null : r.state,
          lastEventAt: r.events.at(-1)?.timestamp ?? null,
          laterEvents: r.later,
        };
        if (skipped) out.skippedRecords = skipped;
        if (opts.events) out.events = r.events;
        console.log(JSON.stringify(out, null, 2));
        if (r.version === 0) process.exitCode = EXIT_NOT_FOUND;
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      } finally {
        await reader.close();
        await admin.close();
      }
    });
}
