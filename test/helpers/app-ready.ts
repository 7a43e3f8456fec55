import type { App } from '../../src/app/app.ts';

/**
 * Waits until every processor of an in-process App runs all `partitions` of its tasks: /readyz is true while no
 * task is assigned yet, so tests that ask about every partition (or have short deadlines) wait for this instead.
 */
export async function untilRunning(app: App, partitions = 12, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { processors } = app.readiness().detail as { processors: Record<string, { ready: boolean; tasks: Record<number, string> }> };
    if (app.ready && Object.values(processors).every((p) => Object.values(p.tasks).filter((s) => s === 'running').length === partitions)) return;
    if (Date.now() > until) throw new Error(`the app did not start all its tasks: ${JSON.stringify(processors)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
