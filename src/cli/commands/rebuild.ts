import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import type { Logger } from '../../processors/types.ts';
import type { AggregateProcessorDecl } from '../../topology/schema.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/** `foldstream rebuild`: the work is in app/rebuild.ts; this parses and prints. */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

export function registerRebuild(program: Command): void {
  program
    .command('rebuild')
    .description(
      "fold an aggregate's events topic again through its current evolve and upcasters into its stores (after a change of evolve " +
        'or of the state shape): no command is run and no event written, the processed commandIds are kept, and the next run ' +
        'continues from the same input position. Every instance of the app must be stopped. Without --yes it reads and folds ' +
        'and prints what it would write. Exit 1 when refused (instances running, events missing, evolve throws), 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml')
    .argument('<aggregate>', 'the aggregate processor, by name or aggregateType')
    .option('--yes', 'write the rebuilt stores (without it, nothing is written)')
    .option('--quiet', 'no progress display')
    .option('--metrics-port <port>', 'serve its progress as Prometheus metrics at /metrics on this port while it runs')
    .action(async (file: string, which: string, opts: { yes?: boolean; quiet?: boolean; metricsPort?: string }, cmd: Command) => {
      const metricsPort = opts.metricsPort === undefined ? undefined : Number(opts.metricsPort);
      if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort <= 65535)) cmd.error(`error: --metrics-port ${JSON.stringify(opts.metricsPort)}: expected a port number`);
      const loaded = loadTopologyOrExit(file);
      const t = loaded.topology;
      const aggregates = t.processors.filter((p): p is AggregateProcessorDecl => p.type === 'aggregate');
      const p = aggregates.find((x) => x.name === which) ?? aggregates.find((x) => x.aggregateType === which);
      if (!p) {
        const sagas = t.processors.filter((x) => x.type === 'saga' && x.name === which);
        const why = sagas.length ? ` ("${which}" is a saga: sagas are not rebuilt, docs/sagas.md#rebuilding)` : '';
        cmd.error(`error: no aggregate "${which}" in ${file}${why}; its aggregates: ${aggregates.map((x) => `${x.name} (${x.aggregateType})`).join(', ') || 'none'}`);
      }
      const log: Logger = { debug() {}, info() {}, warn: (f, m) => console.error(m ?? '', JSON.stringify(f)), error: (f, m) => console.error(m ?? '', JSON.stringify(f)) };
      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { rebuildAggregate } = await import('../../app/rebuild.ts');
      const { progressReporter } = await import('../../app/progress.ts');
      const { ProgressMetrics } = await import('../../app/progress-metrics.ts');
      let progress = progressReporter({ quiet: opts.quiet === true });
      let served: { port: number; close: () => Promise<void> } | undefined;
      if (metricsPort !== undefined) {
        const metrics = new ProgressMetrics();
        progress = metrics.reporter('rebuild', progress);
        served = await metrics.serve(metricsPort);
        console.log(`progress metrics at http://localhost:${served.port}/metrics`);
      }
      console.log(`rebuild aggregate ${p.name} (${p.aggregateType}) of app ${t.app} from ${t.topics[p.output.events]!.name}${opts.yes ? '' : ' (a dry run: nothing is written)'}`);
      try {
        const r = await rebuildAggregate(loaded, p, { write: opts.yes === true, log, progress });
        if (r.kind === 'busy') {
          for (const g of r.groups) console.error(`consumer group ${g.groupId} is ${g.state}, members: ${g.members.join(', ') || '-'}`);
          console.error(`refusing to rebuild: stop every instance of app ${t.app} first (the group must have no members), then run rebuild again.`);
          process.exitCode = EXIT_REFUSED;
          return;
        }
        const { plan } = r;
        console.log(`read ${r.eventRecords} records of the events topic${r.skipped ? ` (${r.skipped} not events, skipped)` : ''}${plan.others ? `, ${plan.others} events of other aggregate types` : ''}`);
        console.log(`folded ${plan.events} events of ${plan.aggregates} aggregates: ${plan.changed} states change`);
        console.log(`${plan.rememberedAgain} processed commandIds remembered again from their events (their reply was missing from the commands store)`);
        if (r.kind === 'planned') {
          console.log('nothing written: run again with --yes to write the rebuilt stores');
          return;
        }
        console.log(`wrote ${r.recordsWritten} changelog records in ${r.tasksWritten} task transactions`);
        console.log(`done: the next \`foldstream run\` restores the rebuilt stores and continues ${p.name} from where it stopped.`);
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = e.code === 'REBUILD_UNSAFE' || e.code === 'HISTORY_INCOMPLETE' || e.code === 'HANDLER_FAILED' ? EXIT_REFUSED : EXIT_TROUBLE;
      } finally {
        await served?.close();
      }
    });
}
