/** Cross-checks of a custom processor: its module, declared stores and outputs. */
import type { CustomProcessorDecl } from '../schema.ts';
import { closest } from '../suggest.ts';
import type { At, CheckContext } from './context.ts';

export function checkCustom(ctx: CheckContext, p: CustomProcessorDecl, at: At): void {
  ctx.moduleRef(at('module'), p.module);
  p.stores.forEach((s, j) => {
    if (!ctx.t.stores[s]) {
      const guess = closest(s, Object.keys(ctx.t.stores));
      ctx.problem(at('stores', j), `store "${s}" is not declared under stores:`, guess ? `did you mean "${guess}"?` : 'declare it under stores:');
    }
  });
  p.outputs.forEach((alias, j) => ctx.topicRef(at('outputs', j), alias));
}
