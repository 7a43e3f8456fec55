import type { Command } from 'commander';
import { describeTopology } from '../../topology/describe.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

export function registerDescribe(program: Command): void {
  program
    .command('describe')
    .description(
      'print what a topology sets up, without connecting to Kafka: per processor its inputs, outputs, stores with their ' +
        'changelog topics, dead-letter topic, consumer group and transactional ids',
    )
    .argument('<file>', 'topology.yaml')
    .option('--no-check-modules', 'do not check that module files exist')
    .action((file: string, opts: { checkModules: boolean }) => {
      const { topology } = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      process.stdout.write(describeTopology(topology));
    });
}
