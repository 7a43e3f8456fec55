import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import { inputsOf } from '../../topology/names.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/** `foldstream reset`: the plan and the work are in app/reset.ts; this parses and prints. */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

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
    .option('--allow-duplicates', 'reset an aggregate, saga, custom or window processor although reprocessing repeats its outputs')
    .option('--state-dir <dir>', 'the state directory of this machine (default: processing.stateDir of the topology)')
    .option('--quiet', 'no progress on stderr')
    .action(async (file: string, name: string, opts: { yes?: boolean; allowDuplicates?: boolean; stateDir?: string; quiet?: boolean }) => {
      const loaded = loadTopologyOrExit(file);
      const t = loaded.topology;
      const p = t.processors.find((x) => x.name === name);
      if (!p) {
        console.error(`no processor "${name}" in ${file}; its processors: ${t.processors.map((x) => x.name).join(', ')}`);
        process.exitCode = EXIT_REFUSED;
        return;
      }
      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { duplicatesOf, planReset, resetProcessor } = await import('../../app/reset.ts');
      const { progressReporter } = await import('../../app/progress.ts');
      const duplicates = duplicatesOf(p);
      if (duplicates && !opts.allowDuplicates) {
        console.error(`refusing to reset ${p.type} "${name}": ${duplicates}.`);
        console.error('Pass --allow-duplicates if that is what you want.');
        process.exitCode = EXIT_REFUSED;
        return;
      }
      const plan = planReset(loaded, p, opts.stateDir);

      console.log(`reset ${p.type} ${name} of app ${t.app}:`);
      for (const g of plan.groups) console.log(`  delete consumer group ${g}`);
      for (const it of plan.topics) console.log(`  re-create ${it.name} empty (${it.purpose}${it.store ? ` of store ${it.store}` : ''})`);
      for (const f of plan.folders) console.log(`  delete ${f}${existsSync(f) ? '' : ' (not on this machine)'}`);
      console.log('  keep its output and dead-letter topics');
      if (!opts.yes) {
        console.log('nothing done: run again with --yes to reset');
        return;
      }

      try {
        const outcome = await resetProcessor(loaded, plan, progressReporter({ quiet: opts.quiet === true }));
        if (outcome.kind === 'busy') {
          for (const g of outcome.groups) console.error(`consumer group ${g.groupId} is ${g.state}, members: ${g.members.join(', ') || '-'}`);
          console.error(`refusing to reset: stop every instance of app ${t.app} first (the groups must have no members), then run reset again.`);
          process.exitCode = EXIT_REFUSED;
          return;
        }
        console.log(`deleted consumer groups: ${outcome.deletedGroups.join(', ') || 'none existed'}`);
        console.log(`re-created ${outcome.recreated} topics empty`);
        console.log(`deleted the local state of ${plan.stages.join(', ')}`);
        console.log(`done: the next \`foldstream run\` processes ${name} from the beginning of ${inputsOf(p).join(', ')}.`);
        console.log(`On other machines that ran the app, delete ${plan.folders.map((f) => join('<stateDir>', f.slice(plan.stateDir.length + 1))).join(' and ')} before starting it.`);
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
