/** Cross-checks of an aggregate: its outputs, and a decider module or declarative commands with evolve rules. */
import type { AggregateProcessorDecl } from '../schema.ts';
import type { At, CheckContext } from './context.ts';

export function checkAggregate(ctx: CheckContext, p: AggregateProcessorDecl, at: At): void {
  ctx.moduleRef(at('module'), p.module);
  ctx.topicRef(at('output', 'events'), p.output.events);
  ctx.topicRef(at('output', 'replies'), p.output.replies);
  if (typeof p.partitioning === 'object') ctx.moduleRef(at('partitioning', 'module'), p.partitioning.module);
  if (!p.module && !p.commands) ctx.problem(at(), 'an aggregate needs a decider `module:` or declarative `commands:`');
  if (p.module && p.commands) ctx.problem(at('commands'), 'give either `module:` or `commands:`, not both');
  if (p.commands && !p.evolve) ctx.problem(at('commands'), 'declarative `commands:` need `evolve:` rules to rebuild state');
  if (p.module && p.evolve) ctx.problem(at('evolve'), '`evolve:` rules go with declarative `commands:`; a decider module has its own evolve');
  if (p.module && p.initialState) ctx.problem(at('initialState'), '`initialState:` goes with declarative `commands:`; a decider module exports its own');
}
