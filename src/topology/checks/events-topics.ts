/**
 * An events topic is the event store: it is never compacted (compaction keeps one event per key), and it keeps every
 * event unless the topology accepts losing old ones (`acceptFiniteRetention: true` on the topic). The declared config
 * is checked here; the broker's config by `topics --check` and at start (topic-plan.ts isDamagingDrift).
 */
import { isCompacted } from '../names.ts';
import { EVENT_RETENTION_CONFIGS, roleText } from '../topic-plan.ts';
import { topicRoles } from '../topic-roles.ts';
import type { CheckContext } from './context.ts';

export function checkEventsTopics(ctx: CheckContext): void {
  const roles = topicRoles(ctx.t);
  for (const [alias, d] of Object.entries(ctx.t.topics)) {
    const config = d.config ?? {};
    if (roles.get(alias)?.role !== 'events') {
      if (d.acceptFiniteRetention) {
        ctx.problem(['topics', alias, 'acceptFiniteRetention'], `acceptFiniteRetention applies to an events topic (an aggregate's output.events), and topic "${alias}" is not one`, 'remove it');
      }
      continue;
    }
    const what = `topic "${alias}" is ${roleText(ctx.t, alias)}`;
    const policy = config['cleanup.policy'];
    if (policy !== undefined && isCompacted(String(policy))) {
      ctx.problem(
        ['topics', alias, 'config', 'cleanup.policy'],
        `${what}: cleanup.policy ${JSON.stringify(policy)} would compact the event store, keeping one event per aggregate and deleting the rest`,
        'remove cleanup.policy (foldstream creates events topics with delete and retention -1) or set it to delete',
      );
    }
    if (d.acceptFiniteRetention) continue;
    for (const key of EVENT_RETENTION_CONFIGS) {
      const value = config[key];
      if (value === undefined || String(value).trim() === '-1') continue;
      ctx.problem(
        ['topics', alias, 'config', key],
        `${what}: ${key} ${JSON.stringify(value)} deletes old events, and state-at, history and rebuilds would work on a truncated event store`,
        `set ${key}: "-1" (or leave it out: foldstream creates events topics with ${key}=-1), or set acceptFiniteRetention: true on the topic to accept losing old events`,
      );
    }
  }
}
