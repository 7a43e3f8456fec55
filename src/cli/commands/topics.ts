import { Option, type Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import { formatDrift, type DriftReport, type TopicDrift } from '../../topology/topic-plan.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/** Exit codes, as diff has them: 0 everything matches, 1 the broker differs from the topology (or it is invalid), 2 trouble. */
const EXIT_DRIFT = 1;
const EXIT_TROUBLE = 2;

function report(r: DriftReport): void {
  for (const d of r.drifts) console.log(`drift: ${formatDrift(d)}`);
  const topics = new Set(r.drifts.map((d) => d.topic)).size;
  console.log(
    r.drifts.length === 0
      ? `all ${r.checked.length} topics match the topology`
      : `${topics} of ${r.checked.length} topics differ from the topology`,
  );
  if (r.drifts.length) process.exitCode = EXIT_DRIFT;
}

function refused(damaging: TopicDrift[]): void {
  for (const d of damaging) console.log(`drift: ${formatDrift(d)}`);
  console.log(`created nothing: ${new Set(damaging.map((d) => d.topic)).size} existing topics would damage data; fix them first`);
  process.exitCode = EXIT_DRIFT;
}

export function registerTopics(program: Command): void {
  program
    .command('topics')
    .description(
      'create or check the topics a topology needs: the declared ones plus changelog, dead-letter and repartition topics. ' +
        '--check prints each difference (missing topic, partition count, replication factor, config) and exits 1 when there is any; ' +
        '--create creates the missing topics, then checks; it creates nothing while an existing topic would damage data. Exit 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml')
    .addOption(new Option('--create', 'create missing topics with their partitions, replication factor and configs, then check').conflicts('check'))
    .addOption(new Option('--check', 'compare the broker with the topology; change nothing').conflicts('create'))
    .option('--no-check-modules', 'do not check that module files exist')
    .action(async (file: string, opts: { create?: boolean; check?: boolean; checkModules: boolean }, cmd: Command) => {
      if (!opts.create && !opts.check) cmd.error('error: give --create or --check');
      // an invalid file exits here, before anything connects to Kafka
      const loaded = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { TopologyTopics } = await import('../../app/topics.ts');
      const topics = new TopologyTopics(loaded);
      const { plan, brokers } = topics.target;
      console.log(`app ${loaded.topology.app}: ${plan.length} topics on ${brokers.join(',')}`);
      try {
        if (!opts.create) return report(await topics.check());
        const outcome = await topics.create();
        if (outcome.kind === 'refused') return refused(outcome.damaging);
        for (const p of outcome.created) {
          const config = Object.entries(p.config).map(([k, v]) => ` ${k}=${v}`).join('');
          console.log(`created ${p.name} (${p.about}): ${p.partitions} partitions, replication factor ${p.replicationFactor}${config}`);
        }
        console.log(`created ${outcome.created.length}, ${outcome.existing} existed already`);
        report(outcome.report);
      } catch (e) {
        if (!(e instanceof FoldstreamError)) throw e;
        console.error(e.describe());
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
