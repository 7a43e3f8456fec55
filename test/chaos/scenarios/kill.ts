/**
 * kill -9 of the processor, then a restart, many times per run, each kill at one of three kinds of moment:
 *   - aimed (share `targetOpenTransactions`): as soon as the restarted instance is ready it works off the backlog that
 *     built up while it was down, in large batches whose transactions stay open up to commitIntervalMs; the kill
 *     waits for a transaction to be open on one of its partitions (up to a gap), then lands. When the workload names
 *     later stages to aim at (Workload.aimAt: bank's groupBy stages, whose short transactions are seldom the first
 *     open), the aimed kills take turns: any open transaction, then one open on the topics of each stage it names, in
 *     turn, and again;
 *   - random: after a random time once ready;
 *   - early (one in five): without waiting for readiness, so it lands during initialisation or restore.
 * Whether each kill left a transaction open is measured after the victim died (ChaosContext.kill).
 */
import type { ChaosContext } from '../chaos-context.ts';
import type { RunOptions } from '../profiles.ts';
import { meanGapMs, type Scenario } from './scenario.ts';

export async function killLoop(ctx: ChaosContext, o: RunOptions, beforeRestart?: (slot: number) => Promise<void> | void): Promise<void> {
  const gap = meanGapMs(o, o.kills);
  ctx.start(0);
  let kills = 0;
  let aimed = 0;
  while (!ctx.aborted && (kills < o.kills || !ctx.generatorDone)) {
    if (kills >= o.kills) {
      await ctx.sleep(500);
      continue;
    }
    const roll = ctx.rng.next();
    let targeted = false;
    if (roll < 0.2) {
      await ctx.sleep(ctx.rng.between(0.5, 4) * 1000);
    } else {
      await ctx.waitReady(0, 90_000);
      if (roll < 0.2 + 0.8 * o.targetOpenTransactions) {
        const stages = ctx.o.aimTopics ?? [];
        const turn = aimed++ % (stages.length + 1);
        const at = turn === 0 ? undefined : stages[turn - 1];
        targeted = await ctx.waitForOpenTransaction(0, gap, at);
        if (at) ctx.log(`aimed at ${at.join(', ')}: ${targeted ? 'a transaction is open there' : 'none seen open in time'}`);
      } else await ctx.sleep(ctx.rng.between(0, 2) * gap);
    }
    if (ctx.aborted) break;
    await ctx.kill(0, targeted);
    kills++;
    await beforeRestart?.(0);
    // down for a while, so input piles up and the restarted instance works it off in large batches
    await ctx.sleep(ctx.rng.between(0.2, 1) * Math.min(gap, 5000));
    ctx.start(0);
  }
}

export const killScenario: Scenario = {
  name: 'kill',
  description: 'kill -9 of the processor at random moments (most aimed inside open transactions), restarted after each',
  chaos: (ctx, o) => killLoop(ctx, o),
};
