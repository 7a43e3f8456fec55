/**
 * Who this instance is in its consumer groups: the instance id (the assigner's stickiness key and, with static
 * membership, the group.instance.id of every processor group). FOLDSTREAM_INSTANCE_ID (set it to the pod name in a
 * StatefulSet) wins over processing.staticMembership.instanceId, which wins over the id kept in the state directory
 * (stable across restarts of an instance that keeps its disk). docs/exactly-once.md#static-membership.
 */
import { invalidInstanceId, GROUP_INSTANCE_ID } from '../kafka/static-membership.ts';
import { instanceId as stateDirInstanceId } from '../state/state-dir.ts';
import type { Topology } from '../topology/schema.ts';

export const INSTANCE_ID_ENV = 'FOLDSTREAM_INSTANCE_ID';

export interface InstanceIdentity {
  instanceId: string;
  /** where the id came from, for the start log */
  source: 'env' | 'topology' | 'stateDir';
  /** set when processing.staticMembership.enabled */
  groupInstanceId: string | undefined;
}

export function instanceIdentity(t: Topology, stateDir: string, env: NodeJS.ProcessEnv = process.env): InstanceIdentity {
  const fromEnv = env[INSTANCE_ID_ENV];
  const sm = t.processing.staticMembership;
  let instanceId: string;
  let source: InstanceIdentity['source'];
  if (fromEnv !== undefined && fromEnv !== '') {
    instanceId = fromEnv;
    source = 'env';
  } else if (sm.instanceId !== undefined) {
    instanceId = sm.instanceId;
    source = 'topology';
  } else {
    instanceId = stateDirInstanceId(stateDir, t.app);
    source = 'stateDir';
  }
  if (sm.enabled && !GROUP_INSTANCE_ID.test(instanceId)) {
    throw invalidInstanceId(instanceId, source === 'env' ? INSTANCE_ID_ENV : `the instance id in ${stateDir}/${t.app}/instance.id`);
  }
  return { instanceId, source, groupInstanceId: sm.enabled ? instanceId : undefined };
}
