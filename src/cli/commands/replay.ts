import type { Command } from 'commander';
import { callbackProgress } from '../../app/progress.ts';
import { FoldstreamError } from '../../errors.ts';
import type { Logger } from '../../processors/types.ts';
import type { ProjectionProcessorDecl } from '../../topology/schema.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream replay`: rebuilds the views of some aggregates in a running projection, from scratch, through the
 * projection's own transactions (app/replay.ts; docs/projections.md#selective-replay). This parses and prints.
 */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;
const EXIT_UNCONFIRMED = 3;

function parseTime(flag: string, s: string): number {
  const t = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`${flag} ${JSON.stringify(s)}: expected ISO-8601 (2026-01-31T12:00:00Z) or ms since the epoch`);
  return t;
}

const quiet: Logger = { debug() {}, info() {}, warn: (f, m) => console.error(m ?? '', JSON.stringify(f)), error: (f, m) => console.error(m ?? '', JSON.stringify(f)) };

interface Options {
  aggregates?: string;
  from?: string;
  to?: string;
  dryRun?: boolean;
  wait: boolean;
  waitMs: string;
  attempts: string;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description(
      "rebuild a running projection's views of some aggregates from scratch: their events are copied onto the projection's replay " +
        'topic and the projection folds them into a fresh view, swapped in within its own transaction (the live view keeps serving ' +
        'until then; every other view is untouched). Idempotent: running it again gives the same views. Exit 1 when refused, ' +
        '2 when Kafka cannot be used, 3 when some view was not confirmed rebuilt (the app not running, or the aggregate kept changing)',
    )
    .argument('<file>', 'topology.yaml')
    .argument('<projection>', 'the projection')
    .option('--aggregates <ids>', 'the views to rebuild: aggregate ids (tenantId:aggregateId with tenants), comma-separated')
    .option('--from <time>', 'or: the views of every aggregate with an event dated at or after this time (ISO-8601 or ms)')
    .option('--to <time>', '... and before this time')
    .option('--dry-run', 'print what would be rebuilt from how many events, send nothing')
    .option('--no-wait', 'send and exit, without waiting for the projection to confirm')
    .option('--wait-ms <ms>', 'how long to wait for the projection to confirm', '120000')
    .option('--attempts <n>', 'how often a view whose aggregate changed during the rebuild is tried again, in all', '5')
    .action(async (file: string, name: string, opts: Options, cmd: Command) => {
      let from: number | undefined;
      let to: number | undefined;
      const waitMs = Number(opts.waitMs);
      const attempts = Number(opts.attempts);
      const aggregates = opts.aggregates?.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        from = opts.from === undefined ? undefined : parseTime('--from', opts.from);
        to = opts.to === undefined ? undefined : parseTime('--to', opts.to);
        if (aggregates !== undefined && (from !== undefined || to !== undefined)) throw new Error('give either --aggregates or --from/--to, not both');
        if (!aggregates?.length && from === undefined && to === undefined) throw new Error('say which views to rebuild: --aggregates id,id or --from T --to T');
        if (!Number.isInteger(waitMs) || waitMs < 0) throw new Error(`--wait-ms ${opts.waitMs}: expected a whole number of ms`);
        if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`--attempts ${opts.attempts}: expected a whole number of at least 1`);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      const loaded = loadTopologyOrExit(file);
      const t = loaded.topology;
      const projections = t.processors.filter((p): p is ProjectionProcessorDecl => p.type === 'projection');
      const p = projections.find((x) => x.name === name);
      if (!p) cmd.error(`error: no projection "${name}" in ${file}; its projections: ${projections.map((x) => x.name).join(', ') || 'none'}`);

      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { Replay } = await import('../../app/replay.ts');
      const onProgress = callbackProgress('rebuilt', {}, 'views');
      let replay: InstanceType<typeof Replay> | undefined;
      try {
        replay = new Replay(loaded, { projection: p, aggregates, from, to, log: quiet, onProgress });
        const plan = await replay.plan();
        for (const k of plan.keys) console.log(`${opts.dryRun ? 'would rebuild' : 'rebuild'} ${k.key} from ${k.records.length} event${k.records.length === 1 ? '' : 's'} (up to version ${k.upTo}, partition ${k.partition})`);
        for (const k of plan.notFound) console.log(`no events of ${k} on ${p.name}'s inputs: nothing to rebuild`);
        console.log(`${plan.keys.length} view${plan.keys.length === 1 ? '' : 's'} to rebuild, ${plan.read} records read`);
        if (opts.dryRun || plan.keys.length === 0) {
          if (opts.dryRun) console.log('nothing sent: run again without --dry-run to rebuild');
          return;
        }
        const r = await replay.run(plan, { waitMs: opts.wait ? waitMs : 0, attempts });
        for (const k of r.rebuilt) console.log(`rebuilt ${k.key} (version ${k.version})`);
        for (const k of r.notRebuilt) console.log(`not rebuilt ${k.key}: ${k.outcome === 'stale' ? `its aggregate kept changing during ${attempts} attempts; run again` : 'another replay of it started meanwhile'}`);
        if (!opts.wait) {
          console.log(`sent ${r.unconfirmed.length} views to rebuild; the projection rebuilds them as it reaches them`);
          return;
        }
        if (r.unconfirmed.length) {
          console.log(`not confirmed within ${waitMs} ms: ${r.unconfirmed.join(', ')} (is ${t.app} running? the projection rebuilds them when it reaches them)`);
        }
        console.log(`rebuilt ${r.rebuilt.length} of ${plan.keys.length} views`);
        if (r.unconfirmed.length || r.notRebuilt.length) process.exitCode = EXIT_UNCONFIRMED;
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = e.code === 'REPLAY_REFUSED' ? EXIT_REFUSED : EXIT_TROUBLE;
      } finally {
        await replay?.close();
      }
    });
}
