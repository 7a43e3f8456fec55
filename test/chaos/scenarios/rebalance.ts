/**
 * Three instances joining and leaving at random under load: a stopped slot starts (join), a running one stops with
 * SIGTERM (graceful leave) or dies with kill -9 (its tasks move after the session timeout). At least one stays up.
 */
import { meanGapMs, type Scenario } from './scenario.ts';

export const rebalanceScenario: Scenario = {
  name: 'rebalance',
  description: 'three instances joining (start) and leaving (SIGTERM or kill -9) at random, rebalancing under load',
  async chaos(ctx, o) {
    const slots = [0, 1, 2];
    ctx.start(0);
    ctx.start(1);
    const gap = meanGapMs(o, o.kills);
    let actions = 0;
    while (!ctx.aborted && (actions < o.kills || !ctx.generatorDone)) {
      if (actions >= o.kills) {
        await ctx.sleep(500);
        continue;
      }
      await ctx.sleep(ctx.rng.between(0.3, 1.7) * gap);
      if (ctx.aborted) break;
      const running = ctx.running();
      const stopped = slots.filter((s) => !running.includes(s));
      const join = stopped.length > 0 && (running.length <= 1 || ctx.rng.chance(0.5));
      if (join) {
        const s = ctx.rng.pick(stopped);
        ctx.log(`slot ${s} joins`);
        ctx.start(s);
      } else {
        const s = ctx.rng.pick(running);
        if (ctx.rng.chance(0.5)) {
          const targeted = ctx.rng.chance(o.targetOpenTransactions) && (await ctx.waitForOpenTransaction(s, 5000));
          await ctx.kill(s, targeted);
        }
        else await ctx.stop(s);
      }
      actions++;
    }
    if (ctx.running().length === 0) ctx.start(0);
  },
};
