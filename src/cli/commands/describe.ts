import type { Command } from 'commander';
import { formatAcls, requiredAcls } from '../../topology/acls.ts';
import { describeTopology } from '../../topology/describe.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

export function registerDescribe(program: Command): void {
  program
    .command('describe')
    .description(
      'print what a topology sets up, without connecting to Kafka: per processor its inputs, outputs, stores with their ' +
        'changelog topics, dead-letter topic, consumer group and transactional ids; with --acls, the ACLs it needs',
    )
    .argument('<file>', 'topology.yaml')
    .option('--no-check-modules', 'do not check that module files exist')
    .option('--acls', 'print the ACLs an instance needs on a cluster with an authorizer (docs/security.md), and the commands that grant them')
    .option('--principal <principal>', 'the principal in the printed kafka-acls.sh commands, e.g. User:orders', 'User:<principal>')
    .option('--no-create-topics', 'with --acls: leave out CREATE, for instances run with --no-create-topics')
    .action((file: string, opts: { checkModules: boolean; acls?: boolean; principal: string; createTopics: boolean }) => {
      const { topology } = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      if (opts.acls) process.stdout.write(formatAcls(topology, requiredAcls(topology, { createTopics: opts.createTopics }), opts.principal));
      else process.stdout.write(describeTopology(topology));
    });
}
