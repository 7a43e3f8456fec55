/** Cross-checks of a projection: its view topic (compacted), rules or module, groupBy, and chained inputs. */
import { inputsOf, isCompacted } from '../names.ts';
import type { ProjectionProcessorDecl } from '../schema.ts';
import type { At, CheckContext } from './context.ts';

export function checkProjection(ctx: CheckContext, p: ProjectionProcessorDecl, at: At): void {
  const { t } = ctx;
  ctx.moduleRef(at('module'), p.module);
  ctx.topicRef(at('output'), p.output);
  if (!p.module && !p.on) ctx.problem(at(), 'a projection needs `on:` rules or a `module:`');
  if (p.module && p.on) ctx.problem(at('on'), 'give either `on:` or `module:`, not both');
  // a view topic is a table: compaction keeps each key's latest view, retention alone would delete views
  const policy = t.topics[p.output]?.config?.['cleanup.policy'];
  if (policy !== undefined && !isCompacted(String(policy))) {
    ctx.problem(
      ['topics', p.output, 'config', 'cleanup.policy'],
      `topic "${p.output}" is the view topic of projection "${p.name}": its cleanup.policy must include compact (got ${JSON.stringify(policy)})`,
      'set cleanup.policy: compact ("compact,delete" also expires old views); left out, foldstream creates it compacted',
    );
  }
  if (p.replaces !== undefined) checkReplaces(ctx, p, at);
  if (p.groupBy && typeof p.groupBy === 'object' && 'key' in p.groupBy.aggregate) {
    ctx.problem(at('groupBy', 'aggregate', 'key'), '`key` is the group key in every group view; name this field differently');
  }
  // a view topic holds views, not event envelopes: reading one needs inputFormat view
  if (p.inputFormat === 'envelope') {
    for (const alias of inputsOf(p)) {
      const producer = t.processors.find((q) => q !== p && q?.type === 'projection' && q.output === alias);
      if (producer) {
        ctx.problem(at('input'), `topic "${alias}" is the view topic of projection "${producer.name}", which holds views, not events`, 'set inputFormat: view to chain projections');
      }
    }
  }
}

/** A new version of a projection (blue/green): a projection of its own, with its own view topic, replacing one other. */
function checkReplaces(ctx: CheckContext, p: ProjectionProcessorDecl, at: At): void {
  const old = ctx.t.processors.find((q) => q?.name === p.replaces);
  if (p.replaces === p.name) {
    ctx.problem(at('replaces'), `projection "${p.name}" cannot replace itself`, 'give the new version a name of its own (for example user-view-v2) and `replaces:` the old name');
    return;
  }
  if (old && old.type !== 'projection') {
    ctx.problem(at('replaces'), `"${p.replaces}" is not a projection (it is the ${old.type} processor of that name): only a projection is replaced side by side`, 'name the projection this one is a new version of');
    return;
  }
  if (old && old.output === p.output) {
    ctx.problem(at('output'), `projection "${p.name}" replaces "${old.name}" but writes the same view topic "${p.output}"`, 'a new version builds a view topic of its own while the old one serves: declare a new topic (for example user-view-v2) as its output');
  }
  const rival = ctx.t.processors.find((q) => q !== p && q?.type === 'projection' && q.replaces === p.replaces);
  if (rival) ctx.problem(at('replaces'), `projections "${rival.name}" and "${p.name}" both replace "${p.replaces}"`, 'one new version at a time: remove the other, or make one replace the other');
}
