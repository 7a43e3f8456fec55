/** Like `kill`, but the state directory is deleted before about half of the restarts (and once after a clean stop). */
import type { Scenario } from './scenario.ts';
import { killLoop } from './kill.ts';

export const stateLossScenario: Scenario = {
  name: 'state-loss',
  description: 'kill -9 and restart; the state directory deleted before about half of the restarts, and after a clean stop',
  async chaos(ctx, o) {
    await killLoop(ctx, o, (slot) => {
      if (ctx.rng.chance(0.5)) ctx.wipeState(slot);
    });
    // one graceful stop with a wiped directory: restore from the changelog alone, with no checkpoint at all
    await ctx.waitReady(0, 90_000);
    await ctx.stop(0);
    ctx.wipeState(0);
    ctx.start(0);
  },
};
