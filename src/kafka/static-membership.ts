/**
 * Static membership (KIP-345) for a processor's consumer group. kafkajs 2.2.4 has the request encoders that carry a
 * `group.instance.id` (JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3) but its Broker never passes one, so a
 * restarted instance always joins as a new member and every restart costs a rebalance (and a wait for the old
 * member's session to expire). This wraps the consumer's partition assigner: kafkajs creates the assigner with the
 * consumer's own cluster, and from it every group coordinator the consumer finds gets its four group requests sent
 * with the instance id. The consumer's cluster is its own (kafka.consumer() creates one per consumer), so no other
 * client's requests change.
 *
 * With an instance id, the coordinator keeps the member's assignment for the session timeout after it stops
 * heartbeating; an instance that comes back with the same id within it takes its member's place with no rebalance:
 * the generation does not change, the other members never stop, and the restarted instance gets its tasks back.
 * Consequences, which docs/exactly-once.md#static-membership states:
 * - stopping must not send a LeaveGroup (it would remove the member and rebalance at once): a leave is sent only
 *   when asked (`leaveOnStop`: processing.staticMembership.leaveGroupOnShutdown or App.stop({ leaveGroup: true }),
 *   for a scale-down), or from outside once the instance is gone (removeStaticMember: `foldstream leave-group`);
 * - a second live instance with the same id takes the member's place and the first one's next request is refused
 *   with FENCED_INSTANCE_ID: that consumer must stop (rejoining would fence the other one back, forever), and the
 *   error says which id is doubled.
 */
import type { Kafka, PartitionAssigner } from 'kafkajs';
import { createRequire } from 'node:module';
import { FoldstreamError } from '../errors.ts';
import type { Logger } from '../processors/types.ts';
import { createCluster, GROUP_COORDINATOR, READ_COMMITTED } from './kafkajs-cluster.ts';

const require = createRequire(import.meta.url);
const apiKeys = require('kafkajs/src/protocol/requests/apiKeys.js') as Record<string, number>;
const { requests } = require('kafkajs/src/protocol/requests/index.js') as { requests: Record<string, unknown> };

/** Kafka's rule for group.instance.id (JoinGroupRequest.validateGroupInstanceId). */
export const GROUP_INSTANCE_ID = /^[A-Za-z0-9._-]{1,249}$/;

export interface StaticMembershipOptions {
  groupInstanceId: string;
  /** whether stopping the consumer sends a LeaveGroup (a scale-down); read when it stops */
  leaveOnStop: () => boolean;
  /** every JoinGroup answer: the generation this member joined (unchanged when it took its old place back) */
  onJoined?: (joined: { generationId: number; memberId: string; leaderId: string }) => void;
  log: Logger;
}

/** The first versions that carry a group instance id. */
const MIN_VERSION: Record<string, number> = { JoinGroup: 5, SyncGroup: 3, Heartbeat: 3, LeaveGroup: 3 };

interface ProtocolDefinition {
  request: { apiVersion: number };
}

interface KafkaJsGroupBroker {
  lookupRequest(apiKey: number, definition: unknown): (args: Record<string, unknown>) => ProtocolDefinition;
  joinGroup(r: Record<string, unknown>): Promise<{ generationId: number; memberId: string; leaderId: string }>;
  syncGroup(r: Record<string, unknown>): Promise<unknown>;
  heartbeat(r: Record<string, unknown>): Promise<unknown>;
  leaveGroup(r: Record<string, unknown>): Promise<unknown>;
}

const PATCHED = Symbol('foldstream:staticMembership');

function sendRequestOf(broker: object): (p: ProtocolDefinition) => Promise<unknown> {
  let proto: object | null = broker;
  while (proto) {
    const symbol = Object.getOwnPropertySymbols(proto).find((s) => s.description === 'private:Broker:sendRequest');
    if (symbol) return (p) => (broker as Record<symbol, (p: ProtocolDefinition) => Promise<unknown>>)[symbol]!.call(broker, p);
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  throw new Error('kafkajs internals changed: no Broker sendRequest (pin kafkajs 2.2.4)');
}

/** The request of `api` with the instance id, refused before sending when the broker cannot carry it. */
function staticRequest(broker: KafkaJsGroupBroker, api: string, args: Record<string, unknown>): ProtocolDefinition {
  const protocol = broker.lookupRequest(apiKeys[api]!, requests[api])(args);
  if (protocol.request.apiVersion < MIN_VERSION[api]!) {
    throw new FoldstreamError('CONFIG_INVALID', `the broker speaks ${api} v${protocol.request.apiVersion}, which cannot carry a group instance id (static membership needs v${MIN_VERSION[api]}, Kafka 2.3 or later)`, {
      hint: 'turn processing.staticMembership.enabled off, or upgrade the brokers',
    });
  }
  return protocol;
}

function patchBroker(broker: KafkaJsGroupBroker, o: StaticMembershipOptions): void {
  const marked = broker as unknown as Record<symbol, string>;
  if (marked[PATCHED] === o.groupInstanceId) return;
  marked[PATCHED] = o.groupInstanceId;
  const send = sendRequestOf(broker);
  const groupInstanceId = o.groupInstanceId;
  broker.joinGroup = async ({ groupId, sessionTimeout, rebalanceTimeout, memberId = '', protocolType = 'consumer', groupProtocols }) => {
    // a static member is never asked for a member id first (MEMBER_ID_REQUIRED is for dynamic members only)
    const joined = (await send(
      staticRequest(broker, 'JoinGroup', { groupId, sessionTimeout, rebalanceTimeout, memberId, groupInstanceId, protocolType, groupProtocols }),
    )) as { generationId: number; memberId: string; leaderId: string };
    o.log.info({ event: 'group.static_joined', group: groupId, groupInstanceId, member: joined.memberId, generation: joined.generationId });
    o.onJoined?.({ generationId: joined.generationId, memberId: joined.memberId, leaderId: joined.leaderId });
    return joined;
  };
  broker.syncGroup = async ({ groupId, generationId, memberId, groupAssignment }) =>
    send(staticRequest(broker, 'SyncGroup', { groupId, generationId, memberId, groupInstanceId, groupAssignment }));
  broker.heartbeat = async ({ groupId, groupGenerationId, memberId }) =>
    send(staticRequest(broker, 'Heartbeat', { groupId, groupGenerationId, memberId, groupInstanceId }));
  broker.leaveGroup = async ({ groupId, memberId }) => {
    if (!o.leaveOnStop()) {
      // a restart: the member keeps its place (and its tasks) for the session timeout
      o.log.info({ event: 'group.leave_skipped', group: groupId, groupInstanceId, member: memberId });
      return undefined;
    }
    o.log.info({ event: 'group.leaving', group: groupId, groupInstanceId, member: memberId });
    return send(staticRequest(broker, 'LeaveGroup', { groupId, memberId, groupInstanceId }));
  };
}

/**
 * `assigner` with static membership: the consumer created with it joins, syncs, heartbeats and leaves as
 * `groupInstanceId`.
 */
export function withStaticMembership(assigner: PartitionAssigner, o: StaticMembershipOptions): PartitionAssigner {
  if (!GROUP_INSTANCE_ID.test(o.groupInstanceId)) throw invalidInstanceId(o.groupInstanceId, 'the group instance id');
  return (config) => {
    const cluster = config.cluster as unknown as { findGroupCoordinator(q: { groupId: string }): Promise<KafkaJsGroupBroker> };
    const marked = cluster as unknown as Record<symbol, boolean>;
    if (!marked[PATCHED]) {
      marked[PATCHED] = true;
      const find = cluster.findGroupCoordinator.bind(cluster);
      cluster.findGroupCoordinator = async (q) => {
        const broker = await find(q);
        patchBroker(broker, o);
        return broker;
      };
    }
    return assigner(config);
  };
}

export function invalidInstanceId(id: string, where: string): FoldstreamError {
  return new FoldstreamError('CONFIG_INVALID', `${where} ${JSON.stringify(id)} is not a valid group.instance.id`, {
    hint: 'use 1 to 249 of the characters A-Z a-z 0-9 . _ - (a pod name qualifies)',
  });
}

/** The typed error when `error` says another live instance took this member's group instance id. */
export function fencedInstance(error: unknown, groupId: string, groupInstanceId: string | undefined): FoldstreamError | undefined {
  if (groupInstanceId === undefined) return undefined;
  let e = error as { type?: string; cause?: unknown; originalError?: unknown } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e.type === 'FENCED_INSTANCE_ID') {
      return new FoldstreamError(
        'GROUP_INSTANCE_FENCED',
        `another instance joined group ${groupId} with the same group.instance.id ${JSON.stringify(groupInstanceId)} and took this member's place; this instance stopped consuming for that group`,
        {
          hint: 'give every instance its own id (FOLDSTREAM_INSTANCE_ID, processing.staticMembership.instanceId, or its own state directory), then restart this instance',
          cause: error,
        },
      );
    }
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return undefined;
}

/**
 * Removes the static member `groupInstanceId` from `groupId` (what Kafka's AdminClient.removeMembersFromConsumerGroup
 * does: LeaveGroup v3 with the instance id and no member id), so the group rebalances now instead of when the
 * member's session expires: a scale-down of instances that stopped without leaving. `not_a_member`: the group has no
 * such member (it already left, or its session expired).
 */
export async function removeStaticMember(kafka: Kafka, groupId: string, groupInstanceId: string): Promise<'removed' | 'not_a_member'> {
  if (!GROUP_INSTANCE_ID.test(groupInstanceId)) throw invalidInstanceId(groupInstanceId, 'the instance id');
  const cluster = createCluster(kafka, READ_COMMITTED);
  await cluster.connect();
  try {
    const broker = (await cluster.findGroupCoordinator({ groupId, coordinatorType: GROUP_COORDINATOR })) as unknown as KafkaJsGroupBroker;
    await sendRequestOf(broker)(staticRequest(broker, 'LeaveGroup', { groupId, memberId: '', groupInstanceId }));
    return 'removed';
  } catch (e) {
    const type = (e as { type?: string }).type;
    if (type === 'UNKNOWN_MEMBER_ID' || type === 'GROUP_ID_NOT_FOUND') return 'not_a_member';
    throw e;
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}
