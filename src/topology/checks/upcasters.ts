/** Cross-checks of the upcasters: versions that go up, a module or rules, one upcaster per type and version. */
import { syntaxError, upcasterExpressions } from '../expressions.ts';
import type { CheckContext } from './context.ts';

export function checkUpcasters(ctx: CheckContext): void {
  const upcasterFrom = new Map<string, number>();
  ctx.t.upcasters.forEach((u, i) => {
    if (u.toVersion <= u.fromVersion) {
      ctx.problem(['upcasters', i, 'toVersion'], `toVersion (${u.toVersion}) must be above fromVersion (${u.fromVersion})`);
    }
    ctx.moduleRef(['upcasters', i, 'module'], u.module);
    const rules = (['rename', 'remove', 'defaults', 'set'] as const).filter((r) => u[r] !== undefined);
    if (u.module && rules.length) {
      ctx.problem(['upcasters', i, rules[0]!], `give either \`module:\` or rules (${rules.join(', ')}), not both`);
    }
    const id = `${u.eventType}@${u.fromVersion}`;
    const first = upcasterFrom.get(id);
    if (first !== undefined) {
      ctx.problem(['upcasters', i, 'fromVersion'], `upcasters[${first}] already lifts ${u.eventType} from version ${u.fromVersion}`, 'give each event type and version one upcaster');
    } else upcasterFrom.set(id, i);
    for (const e of upcasterExpressions(u)) {
      const error = syntaxError(e.source);
      if (error) ctx.problem(['upcasters', i, ...e.path], `JSONata expression ${JSON.stringify(e.source)} does not parse: ${error}`);
    }
  });
}
