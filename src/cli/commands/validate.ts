import type { Command } from 'commander';
import { loadTopologyOrExit } from '../load-or-exit.ts';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a topology file without connecting to Kafka; exit 1 listing every problem with file:line:col')
    .argument('<file>', 'topology.yaml')
    .option('--no-check-modules', 'do not check that module files exist')
    .action((file: string, opts: { checkModules: boolean }) => {
      const { topology } = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
      console.log(`${file}: valid (app ${topology.app}, ${count(topology.processors.length, 'processor')}, ${count(Object.keys(topology.topics).length, 'topic')})`);
    });
}
