import type { Command } from 'commander';
import { FoldstreamError } from '../../errors.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

/**
 * `foldstream leave-group`: a scale-down with static membership (docs/exactly-once.md#static-membership). A stopped
 * static member keeps its place, and its tasks wait, until its session times out; this removes it from every
 * processor group of the app now, so the remaining instances take its tasks at once.
 */

const EXIT_REFUSED = 1;
const EXIT_TROUBLE = 2;

export function registerLeaveGroup(program: Command): void {
  program
    .command('leave-group')
    .description(
      'remove a stopped instance (its group.instance.id) from every consumer group of the app, so the others take its tasks now ' +
        'instead of after processing.staticMembership.sessionTimeoutMs: a scale-down with static membership. Stop the instance first. ' +
        'Exit 1 without an instance id, 2 when Kafka cannot be used',
    )
    .argument('<file>', 'topology.yaml')
    .option('--instance-id <id>', 'the instance to remove (default: FOLDSTREAM_INSTANCE_ID, then processing.staticMembership.instanceId)')
    .action(async (file: string, opts: { instanceId?: string }) => {
      const loaded = loadTopologyOrExit(file);
      const t = loaded.topology;
      const id = opts.instanceId ?? (process.env.FOLDSTREAM_INSTANCE_ID || undefined) ?? t.processing.staticMembership.instanceId;
      if (id === undefined) {
        console.error('which instance? give --instance-id <id> (the pod name, or the id in <stateDir>/<app>/instance.id)');
        process.exitCode = EXIT_REFUSED;
        return;
      }
      // loaded here so that the commands that never talk to Kafka do not load kafkajs either
      const { leaveGroups } = await import('../../app/leave-group.ts');
      try {
        await leaveGroups(loaded, id, ({ group, result }) =>
          console.log(result === 'removed' ? `removed ${id} from consumer group ${group}: it rebalances now` : `${id} is not a member of consumer group ${group} (it left already, or its session expired)`),
        );
      } catch (e) {
        console.error(e instanceof FoldstreamError ? e.describe() : `could not remove ${id}: ${(e as Error).message}`);
        process.exitCode = EXIT_TROUBLE;
      }
    });
}
