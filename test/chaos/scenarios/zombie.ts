/**
 * A zombie: an instance paused with SIGSTOP past its session timeout, while another takes over its tasks (whose
 * InitProducerId bumps the epoch), then resumed with SIGCONT. Each pause is aimed at a moment the victim has a
 * transaction open: right after the SIGSTOP the victim's partitions are probed (a transaction open there belongs to
 * the frozen process); when none is, the victim is resumed at once and the pause tried again (up to MAX_AIMS times,
 * then it stays paused anyway). Such a zombie must be fenced: its log shows its runner's transaction aborted after the
 * resume (runner.transaction_aborted: GENERATION_FENCED, the group coordinator refused its offsets; PRODUCER_FENCED,
 * the new owner fenced its transactional id) or, before exactly-once v2, task.fenced or a failed transaction, and
 * the verifier finds no duplicate of what it was doing.
 */
import type { Instance } from '../../helpers/processes.ts';
import type { Scenario } from './scenario.ts';

function fencedAfter(inst: Instance, since: number): string | undefined {
  const line = inst.lines.find((l) => (l.event === 'task.fenced' || l.event === 'task.transaction_failed' || l.event === 'runner.transaction_aborted') && Date.parse(String(l.time)) >= since);
  if (!line) return undefined;
  const where = line.partition === undefined ? `${String(line.code)} (the runner's transaction)` : `partition ${String(line.partition)}`;
  return `${line.event} ${where}: ${String(line.error).slice(0, 160)}`;
}

/**
 * Why a zombie frozen with a transaction open showed no fencing. A task closed with a transaction open aborts it, and
 * logs task.fenced when the broker refuses (its epoch is old); so a victim that closed its tasks after the resume
 * without that had no transaction left: the one the probe saw had ended, committing as it was frozen (its markers
 * not written yet), and the resumed victim lost its tasks in the rebalance before it began another.
 */
function notFenced(inst: Instance, since: number): string {
  const closed = inst.lines.some((l) => l.event === 'task.closed' && Date.parse(String(l.time)) >= since);
  return closed
    ? 'not fenced: it closed its tasks on rejoining with no transaction open (the one seen at the pause was committing)'
    : 'NOT FENCED although it was frozen inside a transaction';
}

/** pauses that find no transaction open are undone at once and tried again, this many times in all */
const MAX_AIMS = 8;

export const zombieScenario: Scenario = {
  name: 'zombie',
  description: 'an instance paused (SIGSTOP) mid-transaction past its session timeout while another takes its tasks, then resumed (SIGCONT)',
  tune: () => ({ sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000 }),
  async chaos(ctx, o) {
    ctx.start(0);
    ctx.start(1);
    await ctx.waitReady(0, 90_000);
    await ctx.waitReady(1, 90_000);
    const gap = Math.max(2000, o.durationMs / Math.max(1, o.kills) - 2 * o.sessionTimeoutMs);
    let rounds = 0;
    while (!ctx.aborted && (rounds < o.kills || !ctx.generatorDone)) {
      if (rounds >= o.kills) {
        await ctx.sleep(500);
        continue;
      }
      // early enough that input is still flowing: transactions are open most of the time then
      await ctx.sleep(ctx.rng.between(0.1, 0.5) * gap);
      const victim = ctx.rng.pick([0, 1]);
      const other = 1 - victim;
      const inst = ctx.slots.get(victim)!;
      if (!inst.alive || !ctx.slots.get(other)?.alive) break;
      const tasks = ctx.tasksOf(inst);
      // Aim at an open transaction: wait for one, pause, probe. The probe is what counts (a transaction seen open just
      // before the SIGSTOP may have committed in between), so when it finds nothing in flight the victim is resumed
      // at once, long before its session timeout (a pause of a few hundred ms, harmless), and the round tries again.
      let pausedAt = 0;
      let openAtPause: string[] = [];
      for (let attempt = 1; ; attempt++) {
        await ctx.waitForOpenTransaction(victim, 8000);
        pausedAt = Date.now();
        inst.kill('SIGSTOP');
        openAtPause = await ctx.openOn(victim).catch(() => []);
        if (openAtPause.length || attempt >= MAX_AIMS || ctx.aborted) break;
        inst.kill('SIGCONT');
        ctx.log(`SIGSTOP slot ${victim}: no transaction open at the pause, resumed at once (try ${attempt} of ${MAX_AIMS})`);
        await ctx.sleep(ctx.rng.between(0.1, 0.6) * 1000);
      }
      ctx.log(`SIGSTOP slot ${victim} (pid ${inst.pid}, tasks ${tasks.join(',')}): ${openAtPause.length ? `frozen with transactions open on ${openAtPause.join(', ')}` : 'no transaction open'}`);
      // past the session timeout, then until the other instance has joined a new generation with the victim's tasks
      await ctx.sleep(o.sessionTimeoutMs * 1.5);
      const otherInst = ctx.slots.get(other)!;
      const took = () => tasks.every((t) => ctx.tasksOf(otherInst).includes(t));
      for (let i = 0; i < 60 && !took() && !ctx.aborted; i++) await ctx.sleep(500);
      await ctx.waitReady(other, 60_000);
      const resumedAt = Date.now();
      inst.kill('SIGCONT');
      ctx.log(`SIGCONT slot ${victim} after ${resumedAt - pausedAt} ms (the other instance ${took() ? 'took' : 'did not take'} its tasks)`);
      await ctx.sleep(Math.max(5000, o.commitIntervalMs * 3));
      const evidence = fencedAfter(inst, resumedAt - 1000);
      ctx.stats.zombies.push({
        slot: victim,
        pausedMs: resumedAt - pausedAt,
        openAtPause: openAtPause.length,
        fenced: evidence !== undefined,
        evidence: evidence ?? (openAtPause.length ? notFenced(inst, resumedAt - 1000) : 'no fencing seen (nothing in flight to fence)'),
      });
      ctx.log(`zombie slot ${victim}: ${evidence ?? 'no fencing seen'}`);
      await ctx.waitReady(victim, 60_000);
      rounds++;
    }
  },
};
