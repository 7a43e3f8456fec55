import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/** `foldstream retire`: the plan and the work are in app/retire.ts; this parses and prints. */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

export function registerRetire(program: Command): void {
  program
    .command('retire')
    .description(
      'the last step of a blue/green rebuild of a projection: delete what the old version left behind — its consumer groups, ' +
        'changelogs, repartition topic, its view topic (--view-topic) and its folders in the local state directory — once a ' +
        'projection of the topology `replaces:` it, it is no longer in the topology, and no instance runs it. Its dead-letter ' +
        'topics are kept. Exit 1 when refused, 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml (the new one, without the old version)')
    .argument('<processor>', 'the old version\'s processor name')
    .option('--view-topic <topic>', 'also delete the old version\'s view topic (its full name; it must no longer be declared)')
    .option('--yes', 'do it (without it, only the plan is printed)')
    .option('--state-dir <dir>', 'the state directory of this machine (default: processing.stateDir of the topology)')
    .action(async (file: string, name: string, opts: { viewTopic?: string; yes?: boolean; stateDir?: string }) => {
      const loaded = loadTopologyOrExit(file);
      const { planRetire, retireProcessor } = await import('../../app/retire.ts');
      const planning = planRetire(loaded, name, { viewTopic: opts.viewTopic, stateDir: opts.stateDir });
      if (planning.kind === 'refused') {
        for (const r of planning.reasons) console.error(`refusing to retire "${name}": ${r}`);
        process.exitCode = EXIT_REFUSED;
        return;
      }
      const { plan } = planning;
      console.log(`retire ${name}, replaced by ${plan.replacedBy}, of app ${loaded.topology.app}:`);
      for (const g of plan.groups) console.log(`  delete consumer group ${g} (if it exists)`);
      for (const x of plan.topics) console.log(`  delete topic ${x} (if it exists)`);
      for (const f of plan.folders) console.log(`  delete ${f}${existsSync(f) ? '' : ' (not on this machine)'}`);
      for (const x of plan.kept) console.log(`  keep ${x} (dead letters: delete it by hand once they are handled)`);
      if (!opts.yes) {
        console.log('nothing done: run again with --yes to retire');
        return;
      }
      try {
        const outcome = await retireProcessor(loaded, plan);
        if (outcome.kind === 'busy') {
          for (const g of outcome.groups) console.error(`consumer group ${g.groupId} is ${g.state}, members: ${g.members.join(', ') || '-'}`);
          console.error(`refusing to retire "${name}": an instance still runs it; deploy the topology without it to every instance, then run retire again.`);
          process.exitCode = EXIT_REFUSED;
          return;
        }
        console.log(`deleted consumer groups: ${outcome.deletedGroups.join(', ') || 'none existed'}`);
        console.log(`deleted topics: ${outcome.deletedTopics.join(', ') || 'none existed'}`);
        if (outcome.keptTopics.length) console.log(`kept: ${outcome.keptTopics.join(', ')}`);
        console.log(`done. On other machines that ran the app, delete the folders of ${name} in their state directories.`);
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
