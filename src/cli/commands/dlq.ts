import type { Command } from 'commander';
import { callbackProgress } from '../../app/progress.ts';
import { FoldstreamError } from '../../errors.ts';
import type { Logger } from '../../processors/types.ts';
import type { DeadLetter, DeadLetterFilter, DeadLetterListing } from '../../app/dead-letters.ts';
import type { LoadedTopology } from '../../topology/load.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream dlq list|show|replay`: a processor's dead letters, listed, shown in full, and sent back into their
 * source topic after a fix, each at most once (app/dead-letters.ts does the work; this parses and prints).
 */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

interface FilterOptions {
  code?: string;
  key?: string;
  from?: string;
  to?: string;
}

function parseTime(flag: string, s: string): number {
  const t = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`${flag} ${JSON.stringify(s)}: expected ISO-8601 (2026-01-31T12:00:00Z) or ms since the epoch`);
  return t;
}

const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));

function parseFilter(o: FilterOptions, ids?: string[]): DeadLetterFilter {
  return {
    codes: list(o.code),
    keys: list(o.key),
    from: o.from === undefined ? undefined : parseTime('--from', o.from),
    to: o.to === undefined ? undefined : parseTime('--to', o.to),
    ids,
  };
}

function withFilters(cmd: Command): Command {
  return cmd
    .option('--code <codes>', 'only these error codes, comma-separated (e.g. HANDLER_FAILED,KEY_MISMATCH)')
    .option('--key <keys>', 'only records with these keys, comma-separated')
    .option('--from <time>', 'only records dated at or after this time (ISO-8601 or ms since the epoch)')
    .option('--to <time>', 'only records dated before this time');
}

// stdout is the answer: problems go to stderr, chatter nowhere
const quiet: Logger = { debug() {}, info() {}, warn: (f, m) => console.error(m ?? '', JSON.stringify(f)), error: (f, m) => console.error(m ?? '', JSON.stringify(f)) };

const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
const when = (ms: number) => new Date(ms).toISOString();
const idOf = (d: DeadLetter) => `${d.dlqTopic}/${d.partition}@${d.offset}`;

function line(d: DeadLetter, redriven: boolean): string {
  const src = `${d.source.topic}/${d.source.partition}@${d.source.offset}`;
  const msg = d.message.length > 100 ? `${d.message.slice(0, 99)}…` : d.message;
  return `${d.partition}@${d.offset}  ${when(d.timestamp)}  ${d.code}  key=${text(d.key) ?? '(null)'}  from ${src}${redriven ? '  [redriven]' : ''}  ${msg}`;
}

function shown(d: DeadLetter, redriven: boolean): Record<string, unknown> {
  const value = d.value === null ? null : Buffer.from(d.value.toString('utf8'), 'utf8').equals(d.value) ? d.value.toString('utf8') : { base64: d.value.toString('base64') };
  return {
    id: idOf(d),
    code: d.code,
    message: d.message,
    processor: d.processor,
    source: d.source,
    timestamp: when(d.timestamp),
    key: text(d.key),
    value,
    headers: Object.fromEntries(Object.entries(d.headers).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('utf8') : v])),
    redriven,
  };
}

async function open(file: string, name: string, cmd: Command, onProgress?: (done: number, total: number) => void) {
  const loaded: LoadedTopology = loadTopologyOrExit(file);
  const t = loaded.topology;
  // loaded here so that the commands that never talk to Kafka do not load kafkajs either
  const app = await import('../../app/dead-letters.ts');
  const found = app.dlqStages(t, name);
  if (!found) cmd.error(`error: no processor "${name}" in ${file}; its processors: ${t.processors.map((x) => x.name).join(', ')}`);
  const dl = new app.DeadLetters(loaded, { processor: found.processor, stages: found.stages, log: quiet, ...(onProgress ? { onProgress } : {}) });
  return { app, dl, found, t };
}

async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof FoldstreamError)) throw e;
    console.error(e.describe());
    process.exitCode = e.code === 'DLQ_REDRIVE_REFUSED' ? EXIT_REFUSED : EXIT_TROUBLE;
  }
}

/** Progress of a long read or redrive on stderr: a bar on a terminal, a line every tenth otherwise (app/progress.ts). */
function progress(what: string): (done: number, total: number) => void {
  return callbackProgress(what, {}, what === 'read' ? 'offsets' : 'dead letters');
}

export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description("a processor's dead letters: list them, show one, send them back after a fix (docs/dead-letters.md)");

  withFilters(
    dlq
      .command('list')
      .description('list the dead letters of a processor (every stage; or one stage by its runtime name), with counts by code; [redriven] marks those sent back')
      .argument('<file>', 'topology.yaml')
      .argument('<processor>', 'the processor'),
  )
    .option('--json', 'one JSON object per dead letter instead of a line')
    .action(async (file: string, name: string, opts: FilterOptions & { json?: boolean }, cmd: Command) => {
      let filter: DeadLetterFilter = {};
      try {
        filter = parseFilter(opts);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      const { app, dl } = await open(file, name, cmd, progress('read'));
      await guarded(async () => {
        try {
          const { letters, redriven } = await dl.list();
          const chosen = letters.filter((d) => app.matches(d, filter));
          for (const d of chosen) console.log(opts.json ? JSON.stringify(shown(d, redriven.has(idOf(d)))) : line(d, redriven.has(idOf(d))));
          if (opts.json) return;
          const byCode = new Map<string, number>();
          for (const d of chosen) byCode.set(d.code, (byCode.get(d.code) ?? 0) + 1);
          console.log(`${chosen.length} dead letter${chosen.length === 1 ? '' : 's'}${app.isEmptyFilter(filter) ? '' : ` matching (of ${letters.length})`}, ${chosen.filter((d) => redriven.has(idOf(d))).length} already sent back`);
          for (const [code, n] of [...byCode].sort((a, b) => b[1] - a[1])) console.log(`  ${code}: ${n}`);
        } finally {
          await dl.close();
        }
      });
    });

  withFilters(
    dlq
      .command('show')
      .description('print dead letters in full as JSON: key, value, headers, reason, source topic/partition/offset. Exit 1 when none matches')
      .argument('<file>', 'topology.yaml')
      .argument('<processor>', 'the processor')
      .argument('[ids...]', 'dead letters by <partition>@<offset> in the DLQ (as `dlq list` prints them); or use the filters'),
  ).action(async (file: string, name: string, ids: string[], opts: FilterOptions, cmd: Command) => {
    let filter: DeadLetterFilter = {};
    try {
      for (const id of ids) if (!/^\d+@\d+$/.test(id)) throw new Error(`${JSON.stringify(id)}: expected <partition>@<offset>, e.g. 0@17`);
      filter = parseFilter(opts, ids.length ? ids : undefined);
    } catch (e) {
      cmd.error(`error: ${(e as Error).message}`);
    }
    const { app, dl } = await open(file, name, cmd);
    await guarded(async () => {
      try {
        const { letters, redriven } = await dl.list();
        const chosen = letters.filter((d) => app.matches(d, filter));
        for (const d of chosen) console.log(JSON.stringify(shown(d, redriven.has(idOf(d))), null, 2));
        if (!chosen.length) {
          console.error('no dead letter matches');
          process.exitCode = EXIT_REFUSED;
        }
      } finally {
        await dl.close();
      }
    });
  });

  withFilters(
    dlq
      .command('replay')
      .description(
        'send chosen dead letters back into their source topic (same key, value, headers and partition), each at most once over ' +
          'every redrive of the processor, also when one is killed and run again. Needs a filter or --all. Refused (exit 1, nothing sent) ' +
          'when a chosen one comes from an events, view, replies or saga-log topic; 2 when Kafka cannot be used',
      )
      .argument('<file>', 'topology.yaml')
      .argument('<processor>', 'the processor'),
  )
    .option('--all', 'every dead letter of the processor not sent back yet')
    .option('--dry-run', 'print what would be sent, send nothing')
    .option('--batch-size <n>', 'dead letters per transaction', '100')
    .option('--pause-ms <ms>', 'pause between transactions, to spare a busy cluster', '0')
    .action(async (file: string, name: string, opts: FilterOptions & { all?: boolean; dryRun?: boolean; batchSize: string; pauseMs: string }, cmd: Command) => {
      let filter: DeadLetterFilter = {};
      const batchSize = Number(opts.batchSize);
      const pauseMs = Number(opts.pauseMs);
      try {
        filter = parseFilter(opts);
        if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`--batch-size ${opts.batchSize}: expected a whole number of at least 1`);
        if (!Number.isInteger(pauseMs) || pauseMs < 0) throw new Error(`--pause-ms ${opts.pauseMs}: expected a whole number of ms`);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      let report: (done: number, total: number) => void = () => undefined;
      const { app, dl, found, t } = await open(file, name, cmd, (done, total) => report(done, total));
      if (app.isEmptyFilter(filter) && !opts.all) cmd.error('error: say which dead letters to send back: --code, --key, --from/--to, or --all for every one');
      await guarded(async () => {
        try {
          const { letters, redriven } = await dl.list();
          const chosen = letters.filter((d) => app.matches(d, filter));
          const fresh = chosen.filter((d) => !redriven.has(idOf(d)));
          const refusedOnes = fresh.map((d) => ({ d, target: app.redriveTarget(t, found.processor, d) })).filter((x) => !x.target.ok);
          for (const d of fresh) {
            const target = app.redriveTarget(t, found.processor, d);
            console.log(`${opts.dryRun ? 'would send' : 'to send'} ${line(d, false)}  → ${target.ok ? `${target.topic}/${d.source.partition}` : `REFUSED: ${target.why}`}`);
          }
          console.log(`${fresh.length} to send back, ${chosen.length - fresh.length} of the ${chosen.length} chosen already sent back by an earlier redrive`);
          if (refusedOnes.length) {
            const first = refusedOnes[0]!;
            throw app.refused(first.d, `${first.target.ok ? '' : first.target.why} (${refusedOnes.length} of the chosen are refused; nothing was sent)`);
          }
          if (opts.dryRun) {
            console.log('nothing sent: run again without --dry-run to send');
            return;
          }
          report = progress('sent back');
          const r = await dl.redrive(chosen, { batchSize, pauseMs });
          console.log(`sent back ${r.sent} dead letter${r.sent === 1 ? '' : 's'}${r.already ? `; ${r.already} had been sent back by an earlier redrive (not sent again)` : ''}`);
        } finally {
          await dl.close();
        }
      });
    });
}
