/**
 * "Did you mean" for event types a processor waits for that its inputs never carry: a misspelt `completeOn` makes a
 * saga time out and compensate every instance, a misspelt `on:` key leaves a view unchanged, a misspelt
 * `maxEventVersion` key checks nothing. An input topic's event types are known only when every processor writing it is
 * a declarative aggregate (its `emit` types); a module, a custom processor, a route step or a topic nothing declared
 * writes (an outside producer) may write anything, and then nothing is said. A type is reported only when it is close
 * to a known one, so an outside producer's own types on a topic are never taken for a typo.
 */
import type { ConfigProblem } from '../errors.ts';
import { sagaEventMatches } from './expressions.ts';
import type { Locator, PathSegment } from './load.ts';
import { inputsOf } from './names.ts';
import type { ProcessorDecl, Topology } from './schema.ts';
import { closest } from './suggest.ts';

/** The event types written to a topic (alias) with the aggregates writing them, or undefined when not known. */
function typesWritten(t: Topology, alias: string): { types: Set<string>; writers: string[] } | undefined {
  const types = new Set<string>();
  const writers: string[] = [];
  for (const p of t.processors) {
    if (!p) return undefined; // failed the schema: nothing is known for sure
    const routed = p.steps.some((s) => 'route' in s && (Object.values(s.route.to).includes(alias) || s.route.default === alias));
    if (routed) return undefined;
    switch (p.type) {
      case 'aggregate':
        if (p.output.replies === alias) return undefined;
        if (p.output.events !== alias) break;
        if (!p.commands) return undefined; // a decider module's types are its own
        for (const rule of Object.values(p.commands)) for (const e of rule.emit) types.add(e.type);
        writers.push(`aggregate "${p.name}"`);
        break;
      case 'projection':
        if (p.output === alias) return undefined;
        break;
      case 'saga': {
        const commands = Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands];
        if (commands.includes(alias) || p.output.log === alias) return undefined;
        break;
      }
      case 'custom':
        if (p.outputs.includes(alias)) return undefined;
        break;
    }
  }
  return writers.length ? { types, writers } : undefined;
}

/** What the processor's inputs carry, when every input's types are known and no `map` step may rename a type. */
function typesRead(t: Topology, p: ProcessorDecl): { types: Set<string>; writers: string[]; topics: string[] } | undefined {
  if (p.steps.some((s) => 'map' in s && Object.keys(s.map).some((f) => f === 'eventType'))) return undefined;
  const types = new Set<string>();
  const writers = new Set<string>();
  const topics = inputsOf(p);
  for (const alias of topics) {
    const w = typesWritten(t, alias);
    if (!w) return undefined;
    for (const x of w.types) types.add(x);
    for (const x of w.writers) writers.add(x);
  }
  return { types, writers: [...writers], topics };
}

export function eventTypeProblems(t: Topology, loc: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  t.processors.forEach((p, i) => {
    if (!p || p.type === 'aggregate') return; // an aggregate reads commands
    if (p.type === 'projection' && p.inputFormat === 'view') return; // views arrive as ViewUpdated / ViewDeleted
    const read = typesRead(t, p);
    if (!read) return;
    const check = (type: string, path: PathSegment[], at?: 'key') => {
      if (read.types.has(type)) return;
      const guess = closest(type, read.types);
      if (!guess) return;
      const where = read.topics.length === 1 ? `topic "${read.topics[0]}"` : `topics ${read.topics.map((x) => `"${x}"`).join(', ')}`;
      problems.push(
        loc.problem(
          ['processors', i, ...path],
          `event type "${type}" is never written to ${where}: ${read.writers.join(', ')} ${read.writers.length > 1 ? 'emit' : 'emits'} ${[...read.types].sort().join(', ')}`,
          `did you mean "${guess}"?`,
          at === 'key' ? loc.keyNode(['processors', i, ...path.slice(0, -1)], type) : undefined,
        ),
      );
    };
    for (const type of Object.keys(p.maxEventVersion)) check(type, ['maxEventVersion', type], 'key');
    if (p.type === 'projection') for (const type of Object.keys(p.on ?? {})) check(type, ['on', type], 'key');
    if (p.type === 'saga') {
      const startOn = p.startOn === undefined ? [] : Array.isArray(p.startOn) ? p.startOn.map((x, j) => [x, ['startOn', j]] as const) : [[p.startOn, ['startOn']] as const];
      for (const [type, path] of startOn) check(type, [...path]);
      p.flow?.forEach((step, j) => {
        for (const which of ['completeOn', 'failOn'] as const) {
          for (const m of sagaEventMatches(step[which])) check(m.type, ['flow', j, which, ...m.typePath]);
        }
      });
    }
  });
  return problems;
}
