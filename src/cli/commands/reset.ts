import { existsSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import { assertNever } from '../../topology/assert-never.ts';
import { groupId, inputsOf, internalTopics, stagesOf } from '../../topology/names.ts';
import type { ProcessorDecl } from '../../topology/schema.ts';
import { planTopics } from '../../topology/topic-plan.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream reset`: makes one processor start over from the beginning of its inputs, as Kafka Streams' application
 * reset tool does for a whole app. For a projection this rebuilds its read model; its other processors are untouched.
 * Per runtime stage of the processor: the consumer group is deleted (no committed offsets: read from the earliest),
 * the changelogs and the repartition topic are deleted and created again empty (the stores' contents and the offset
 * markers, which are the position, go with them), and the stage's folder in this machine's state directory is
 * deleted. Output and dead-letter topics are kept: a rebuilt projection writes its views again (readers skip what
 * they have by version), and bad input is dead-lettered again.
 */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

/** What reprocessing would do to a kind's outputs, when it is not harmless. */
function duplicatesOf(p: ProcessorDecl): string | undefined {
  switch (p.type) {
    case 'aggregate':
      return 'an aggregate would handle its commands again and append their events a second time (its events topic is its history)';
    case 'saga':
      return 'a saga would send its commands again (aggregates answer a repeated commandId only within their commandRetentionMs)';
    case 'custom':
      return 'a custom processor would forward its outputs again';
    case 'projection':
      return undefined;
    default:
      return assertNever(p, 'processor type');
  }
}

export function registerReset(program: Command): void {
  program
    .command('reset')
    .description(
      'make one processor start over from the beginning of its inputs (rebuild a projection): delete its consumer groups, ' +
        're-create its changelog and repartition topics empty and delete its folder in the local state directory. Every ' +
        'instance of the app must be stopped first, and on other machines the printed state folders deleted too. ' +
        'Exit 1 when refused (instances running, or a processor whose outputs would repeat), 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml')
    .argument('<processor>', 'the processor to reset')
    .option('--yes', 'do it (without it, only the plan is printed)')
    .option('--allow-duplicates', 'reset an aggregate, saga or custom processor although reprocessing repeats its outputs')
    .option('--state-dir <dir>', 'the state directory of this machine (default: processing.stateDir of the topology)')
    .action(async (file: string, name: string, opts: { yes?: boolean; allowDuplicates?: boolean; stateDir?: string }) => {
      const { topology: t, baseDir } = loadTopologyOrExit(file);
      const p = t.processors.find((x) => x.name === name);
      if (!p) {
        console.error(`no processor "${name}" in ${file}; its processors: ${t.processors.map((x) => x.name).join(', ')}`);
        process.exitCode = EXIT_REFUSED;
        return;
      }
      const duplicates = duplicatesOf(p);
      if (duplicates && !opts.allowDuplicates) {
        console.error(`refusing to reset ${p.type} "${name}": ${duplicates}.`);
        console.error('Pass --allow-duplicates if that is what you want.');
        process.exitCode = EXIT_REFUSED;
        return;
      }
      const stages = stagesOf(p);
      const groups = stages.map((s) => groupId(t.app, s.name));
      const topics = internalTopics(t).filter((it) => it.processor === name && (it.purpose === 'changelog' || it.purpose === 'repartition'));
      const dir = opts.stateDir ?? t.processing.stateDir;
      const stateDir = isAbsolute(dir) ? dir : resolve(baseDir, dir);
      const folders = stages.map((s) => join(stateDir, t.app, s.name));

      console.log(`reset ${p.type} ${name} of app ${t.app}:`);
      for (const g of groups) console.log(`  delete consumer group ${g}`);
      for (const it of topics) console.log(`  re-create ${it.name} empty (${it.purpose}${it.store ? ` of store ${it.store}` : ''})`);
      for (const f of folders) console.log(`  delete ${f}${existsSync(f) ? '' : ' (not on this machine)'}`);
      console.log('  keep its output and dead-letter topics');
      if (!opts.yes) {
        console.log('nothing done: run again with --yes to reset');
        return;
      }

      const { describeGroups, deleteGroups, recreateTopics } = await import('../../kafka/reset-admin.ts');
      const { createKafka } = await import('../../kafka/client.ts');
      const kafka = createKafka(t, { baseDir, clientIdSuffix: '-reset' });
      try {
        const busy = (await describeGroups(kafka, groups)).filter((g) => g.state !== 'Empty' && g.state !== 'Dead');
        if (busy.length) {
          for (const g of busy) console.error(`consumer group ${g.groupId} is ${g.state}, members: ${g.members.join(', ') || '-'}`);
          console.error(`refusing to reset: stop every instance of app ${t.app} first (the groups must have no members), then run reset again.`);
          process.exitCode = EXIT_REFUSED;
          return;
        }
        const deleted = await deleteGroups(kafka, groups);
        console.log(`deleted consumer groups: ${deleted.join(', ') || 'none existed'}`);
        const names = new Set(topics.map((x) => x.name));
        await recreateTopics(kafka, planTopics(t).filter((x) => names.has(x.name)));
        console.log(`re-created ${names.size} topics empty`);
        for (const f of folders) rmSync(f, { recursive: true, force: true });
        console.log(`deleted the local state of ${stages.map((s) => s.name).join(', ')}`);
        console.log(`done: the next \`foldstream run\` processes ${name} from the beginning of ${inputsOf(p).join(', ')}.`);
        console.log(`On other machines that ran the app, delete ${folders.map((f) => join('<stateDir>', f.slice(stateDir.length + 1))).join(' and ')} before starting it.`);
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
