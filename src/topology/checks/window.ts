/**
 * Cross-checks of a window processor (docs/windows.md): its module and output references, a reducer
 * module or aggregations (not both), result field names, hopping windows that hop at most their size, and a retention
 * that keeps a window at least as long as it takes late records.
 */
import { inputsOf } from '../names.ts';
import type { WindowProcessorDecl } from '../schema.ts';
import type { At, CheckContext } from './context.ts';

/** Fields every window result has (a session merged away says `removed`); aggregations must be named otherwise. */
const RESULT_FIELDS = ['key', 'start', 'end', 'removed', 'value'];

export function checkWindow(ctx: CheckContext, p: WindowProcessorDecl, at: At): void {
  const t = ctx.t;
  ctx.moduleRef(at('module'), p.module);
  ctx.topicRef(at('output'), p.output);
  // a view topic holds views, not event envelopes: windowing one needs inputFormat view
  if (p.inputFormat === 'envelope') {
    for (const alias of inputsOf(p)) {
      const producer = t.processors.find((q) => q?.type === 'projection' && q.output === alias);
      if (producer) ctx.problem(at('input'), `topic "${alias}" is the view topic of projection "${producer.name}", which holds views, not events`, 'set inputFormat: view to window its changes');
    }
  }
  if (!p.module && !p.aggregate) ctx.problem(at(), 'a window processor needs `aggregate:` fields or a reducer `module:`');
  if (p.module && p.aggregate) ctx.problem(at('aggregate'), 'give either `aggregate:` or `module:`, not both');
  if (p.aggregate && Object.keys(p.aggregate).length === 0) ctx.problem(at('aggregate'), 'name at least one field, e.g. `count: count`');
  for (const field of Object.keys(p.aggregate ?? {})) {
    if (RESULT_FIELDS.includes(field)) {
      ctx.problem(at('aggregate', field), `\`${field}\` is a field of every window result (${RESULT_FIELDS.join(', ')})`, 'name this field differently');
    }
  }
  const w = p.window;
  if (w.kind === 'hopping' && w.advanceMs > w.sizeMs) {
    ctx.problem(at('window', 'advanceMs'), `advanceMs (${w.advanceMs}) is above sizeMs (${w.sizeMs}): records between windows would count nowhere`, 'make advanceMs at most sizeMs (equal: tumbling windows)');
  }
  if (w.kind === 'hopping' && w.sizeMs / w.advanceMs > 1000) {
    ctx.problem(at('window', 'advanceMs'), `every record would be in ${Math.ceil(w.sizeMs / w.advanceMs)} windows (sizeMs / advanceMs), more than 1000`, 'hop by a larger advanceMs, or use sliding windows');
  }
  if (w.retentionMs !== undefined && w.retentionMs < w.graceMs) {
    ctx.problem(
      at('window', 'retentionMs'), `retentionMs (${w.retentionMs}) is below graceMs (${w.graceMs}): a window would be deleted while it still takes late records`, 'make retentionMs at least graceMs, or leave it out (default graceMs)',
    );
  }
}
