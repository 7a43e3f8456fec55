import type { Command } from 'commander';
import { formatProblem } from '../../errors.ts';
import { moduleProblems, moduleUses } from '../../processors/module-check.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      'check a topology file without connecting to Kafka: schema, cross-checks, and (unless --no-load-modules) that every ' +
        'module loads and has the exports it needs; exit 1 listing every problem with file:line:col',
    )
    .argument('<file>', 'topology.yaml')
    .option('--no-check-modules', 'do not check that module files exist (nor load them)')
    .option('--no-load-modules', 'do not load the modules to check their exports (loading runs their top-level code)')
    .action(async (file: string, opts: { checkModules: boolean; loadModules: boolean }) => {
      const loaded = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      const { topology } = loaded;
      const modules = new Set(moduleUses(topology).map((u) => u.module)).size;
      let checked = '';
      if (modules > 0) {
        if (!opts.checkModules || !opts.loadModules) {
          checked = `; ${count(modules, 'module')} not loaded (${opts.checkModules ? '--no-load-modules' : '--no-check-modules'}): ${modules === 1 ? 'its' : 'their'} exports are not checked`;
        } else {
          const problems = await moduleProblems(loaded, loaded.loc!);
          if (problems.length) {
            for (const p of problems) console.error(formatProblem(p));
            console.error(`${count(problems.length, 'problem')}; nothing was sent to Kafka.`);
            process.exit(1);
          }
          checked = `; ${count(modules, 'module')} loaded, exports checked`;
        }
      }
      console.log(
        `${file}: valid (app ${topology.app}, ${count(topology.processors.length, 'processor')}, ${count(Object.keys(topology.topics).length, 'topic')}${checked})`,
      );
    });
}
