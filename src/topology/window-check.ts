/**
 * Cross-checks of a window processor (docs/windows.md), kept apart from cross-check.ts, which calls them: a reducer
 * module or aggregations (not both), result field names, hopping windows that hop at most their size, and a retention
 * that keeps a window at least as long as it takes late records.
 */
import type { ConfigProblem } from '../errors.ts';
import type { Locator, PathSegment } from './load.ts';
import { inputsOf } from './names.ts';
import type { Topology, WindowProcessorDecl } from './schema.ts';

/** Fields every window result has (a session merged away says `removed`); aggregations must be named otherwise. */
const RESULT_FIELDS = ['key', 'start', 'end', 'removed', 'value'];

export function checkWindow(t: Topology, p: WindowProcessorDecl, at: (...rest: PathSegment[]) => PathSegment[], loc: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  // a view topic holds views, not event envelopes: windowing one needs inputFormat view
  if (p.inputFormat === 'envelope') {
    for (const alias of inputsOf(p)) {
      const producer = t.processors.find((q) => q?.type === 'projection' && q.output === alias);
      if (producer) problems.push(loc.problem(at('input'), `topic "${alias}" is the view topic of projection "${producer.name}", which holds views, not events`, 'set inputFormat: view to window its changes'));
    }
  }
  if (!p.module && !p.aggregate) problems.push(loc.problem(at(), 'a window processor needs `aggregate:` fields or a reducer `module:`'));
  if (p.module && p.aggregate) problems.push(loc.problem(at('aggregate'), 'give either `aggregate:` or `module:`, not both'));
  if (p.aggregate && Object.keys(p.aggregate).length === 0) problems.push(loc.problem(at('aggregate'), 'name at least one field, e.g. `count: count`'));
  for (const field of Object.keys(p.aggregate ?? {})) {
    if (RESULT_FIELDS.includes(field)) {
      problems.push(loc.problem(at('aggregate', field), `\`${field}\` is a field of every window result (${RESULT_FIELDS.join(', ')})`, 'name this field differently'));
    }
  }
  const w = p.window;
  if (w.kind === 'hopping' && w.advanceMs > w.sizeMs) {
    problems.push(loc.problem(at('window', 'advanceMs'), `advanceMs (${w.advanceMs}) is above sizeMs (${w.sizeMs}): records between windows would count nowhere`, 'make advanceMs at most sizeMs (equal: tumbling windows)'));
  }
  if (w.kind === 'hopping' && w.sizeMs / w.advanceMs > 1000) {
    problems.push(loc.problem(at('window', 'advanceMs'), `every record would be in ${Math.ceil(w.sizeMs / w.advanceMs)} windows (sizeMs / advanceMs), more than 1000`, 'hop by a larger advanceMs, or use sliding windows'));
  }
  if (w.retentionMs !== undefined && w.retentionMs < w.graceMs) {
    problems.push(
      loc.problem(at('window', 'retentionMs'), `retentionMs (${w.retentionMs}) is below graceMs (${w.graceMs}): a window would be deleted while it still takes late records`, 'make retentionMs at least graceMs, or leave it out (default graceMs)'),
    );
  }
  return problems;
}
