/**
 * The consumer group generation of a kafkajs consumer (KIP-447), and a "before rejoin" hook.
 *
 * Exactly-once v2 fences a zombie by the group generation: every transaction's TxnOffsetCommit v3 carries the
 * generation id and member id that were current when the transaction began, and the group coordinator refuses it
 * (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) once the group moved on. kafkajs 2.2.4 keeps both on its ConsumerGroup but
 * tells neither (its GROUP_JOIN event has no generation), and it has no revoke callback: a runner's transaction must
 * be committed or aborted before the member joins again, so that one transaction never mixes two generations.
 *
 * Both come from wrapping ConsumerGroup.prototype.joinAndSync, which every (re)join of kafkajs goes through (first
 * join, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, stale metadata): before it, the consumer's `beforeRejoin` hook runs
 * and is awaited (kafkajs's fetch loop is stopped meanwhile, its session kept by the heartbeat of the rebalance
 * timeout); after it, `joined` receives the new generation. Which consumer a ConsumerGroup belongs to is found through
 * its partition assigner: `withGenerationHooks` tags the assigner the consumer was created with. Installed once,
 * idempotent, whatever loaded kafkajs first (kafkajs builds the ConsumerGroup from the module's class at run()).
 */
import { createRequire } from 'node:module';
import type { PartitionAssigner } from 'kafkajs';

export interface GroupGeneration {
  generationId: number;
  memberId: string;
}

export interface GenerationHooks {
  /** before every join except the first: end the open transaction (commit it, or abort and seek back). Never throws. */
  beforeRejoin(): Promise<void>;
  /** after every successful join and sync */
  joined(g: GroupGeneration): void;
}

const HOOKS = Symbol.for('foldstream.generationHooks');
const INSTALLED = Symbol.for('foldstream.generationHooksInstalled');

interface ConsumerGroupLike {
  generationId: number | null;
  memberId: string | null;
  assigners?: { [HOOKS]?: GenerationHooks }[];
  joinAndSync(): Promise<void>;
}

/** The assigner factory whose assigners carry `hooks`, found by the wrapped joinAndSync. */
export function withGenerationHooks(assigner: PartitionAssigner, hooks: GenerationHooks): PartitionAssigner {
  return (config) => Object.assign(assigner(config), { [HOOKS]: hooks });
}

export function installGenerationHooks(): void {
  const require = createRequire(import.meta.url);
  const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as { prototype: ConsumerGroupLike & { [INSTALLED]?: true } };
  const proto = ConsumerGroup.prototype;
  if (proto[INSTALLED]) return;
  const joinAndSync = proto.joinAndSync;
  proto.joinAndSync = async function (this: ConsumerGroupLike) {
    const hooks = this.assigners?.find((a) => a[HOOKS])?.[HOOKS];
    // a generation already held: this is a rejoin, and the open transaction belongs to that generation
    if (hooks && this.generationId !== null && this.generationId !== undefined) await hooks.beforeRejoin();
    await joinAndSync.call(this);
    if (hooks && this.generationId !== null && this.memberId) hooks.joined({ generationId: this.generationId, memberId: this.memberId });
  };
  proto[INSTALLED] = true;
}
