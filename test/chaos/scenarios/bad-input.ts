/**
 * The bad-input corpus mixed into the stream with no process faults but two graceful restarts, so any dead-letter
 * difference here is about classification and dead-lettering itself, not about crashes.
 */
import { meanGapMs, type Scenario } from './scenario.ts';

export const badInputScenario: Scenario = {
  name: 'bad-input',
  description: 'the bad-input corpus (15 kinds) mixed in; two graceful restarts, no crashes',
  async chaos(ctx, o) {
    ctx.start(0);
    const gap = meanGapMs(o, 3);
    for (let i = 0; i < 2 && !ctx.aborted; i++) {
      await ctx.sleep(gap);
      await ctx.waitReady(0, 90_000);
      await ctx.stop(0);
      ctx.start(0);
    }
    while (!ctx.aborted && !ctx.generatorDone) await ctx.sleep(500);
  },
};
