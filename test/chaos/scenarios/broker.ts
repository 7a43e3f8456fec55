/**
 * A three-broker cluster (replication factor 3, min.insync.replicas 2): kill -9 one broker mid-run, restart it some
 * seconds later, wait until it is back in every partition's ISR, and again. A processor kill now and then too.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { ChaosContext } from '../chaos-context.ts';
import { meanGapMs, type Scenario } from './scenario.ts';

async function waitFullIsr(ctx: ChaosContext, topics: string[], timeoutMs: number): Promise<boolean> {
  const admin = new Kafka({ brokers: ctx.o.brokers, logLevel: logLevel.NOTHING, retry: { retries: 3 } }).admin();
  const deadline = Date.now() + timeoutMs;
  try {
    await admin.connect();
    while (Date.now() < deadline && !ctx.aborted) {
      try {
        const md = await admin.fetchTopicMetadata({ topics });
        if (md.topics.every((t) => t.partitions.every((p) => p.isr.length >= 3))) return true;
      } catch {
        // metadata while a broker starts can fail; ask again
      }
      await ctx.sleep(1000);
    }
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export const brokerScenario: Scenario = {
  name: 'broker',
  description: 'three-broker cluster, RF 3, min.insync.replicas 2: kill -9 one broker mid-run and restart it, repeatedly',
  cluster: true,
  tune: (o) => ({ kills: Math.max(1, Math.round(o.kills / 4)) }),
  async chaos(ctx, o) {
    ctx.start(0);
    await ctx.waitReady(0, 120_000);
    const brokerKills = o.brokerKills;
    const actions = brokerKills + o.kills;
    const gap = meanGapMs(o, actions);
    let doneBroker = 0;
    let doneKills = 0;
    while (!ctx.aborted && (doneBroker + doneKills < actions || !ctx.generatorDone)) {
      if (doneBroker + doneKills >= actions) {
        await ctx.sleep(500);
        continue;
      }
      await ctx.sleep(ctx.rng.between(0.5, 1.5) * gap);
      const brokerTurn = doneKills >= o.kills || (doneBroker < brokerKills && ctx.rng.chance(brokerKills / actions + 0.2));
      if (brokerTurn) {
        const node = 1 + ctx.rng.int(3);
        const restart = ctx.killBroker(node);
        await ctx.sleep(ctx.rng.between(5000, 15000));
        restart();
        const full = await waitFullIsr(ctx, ctx.o.transactionalTopics, 180_000);
        ctx.log(full ? `node ${node} is back in every ISR` : `node ${node} did not rejoin every ISR within 180 s`);
        doneBroker++;
      } else {
        const targeted = ctx.rng.chance(o.targetOpenTransactions) && (await ctx.waitForOpenTransaction(0, 8000));
        await ctx.kill(0, targeted);
        ctx.start(0);
        await ctx.waitReady(0, 120_000);
        doneKills++;
      }
    }
  },
};
