import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import type { Logger } from '../../processors/types.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream state-at`: an aggregate's state as of a time (or now), rebuilt from its events topic (app/state-at.ts)
 * — for audits and for asking "what did the system believe then". This file parses and prints.
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
    .option('--quiet', 'no progress on stderr')
    .action(async (file: string, which: string, aggregateId: string, opts: { at?: string; tenant?: string; events?: boolean; quiet?: boolean }, cmd: Command) => {
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
      // stdout is the JSON answer: problems go to stderr, chatter nowhere
      const log: Logger = { debug() {}, info() {}, warn: (f, m) => console.error(m ?? '', JSON.stringify(f)), error: (f, m) => console.error(m ?? '', JSON.stringify(f)) };
      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { aggregateStateAt } = await import('../../app/state-at.ts');
      const { progressReporter } = await import('../../app/progress.ts');
      try {
        const r = await aggregateStateAt(loaded, {
          aggregate: p,
          aggregateId,
          tenant: opts.tenant,
          at,
          log,
          progress: opts.quiet ? undefined : progressReporter(),
        });
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
        if (r.skipped) out.skippedRecords = r.skipped;
        if (opts.events) out.events = r.events;
        console.log(JSON.stringify(out, null, 2));
        if (r.version === 0) process.exitCode = EXIT_NOT_FOUND;
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
