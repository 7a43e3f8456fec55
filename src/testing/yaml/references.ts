/**
 * What a case names must exist in its topology — topics, processors (runtime names, e.g. `users-by-status-group`),
 * their stores, an aggregate for commands and replies — checked before anything runs, each at its file:line:col.
 */
import type { ConfigProblem } from '../../errors.ts';
import { TopicRegistry } from '../../runtime/topic-registry.ts';
import type { LoadedTopology, Locator, PathSegment } from '../../topology/load.ts';
import { stagesOf, storesOf } from '../../topology/names.ts';
import { closest } from '../../topology/suggest.ts';
import type { TestCase, TestStep } from '../../topology/tests-schema.ts';
import { TopologyFacts } from '../topology-facts.ts';

export function checkReferences(c: TestCase, at: PathSegment[], loaded: LoadedTopology, loc: Locator): ConfigProblem[] {
  const t = loaded.topology;
  const topics = new TopicRegistry(t);
  const facts = new TopologyFacts(t, topics);
  const stores = new Map<string, string[]>();
  for (const p of t.processors) for (const stage of stagesOf(p)) stores.set(stage.name, storesOf(t, p, stage).map((s) => s.name));
  const problems: ConfigProblem[] = [];
  const report = (path: PathSegment[], message: string, suggestion?: string) => {
    // a name that is a mapping key (then.outputs.<topic>) is reported at the key, not at its value
    const last = path[path.length - 1];
    const key = typeof last === 'string' ? loc.keyNode([...at, ...path.slice(0, -1)], last) : undefined;
    problems.push(loc.problem([...at, ...path], message, suggestion, key));
  };
  const guess = (word: string, candidates: string[]) => {
    const g = closest(word, candidates);
    return g ? `did you mean "${g}"?` : `expected one of: ${candidates.join(', ')}`;
  };

  const topic = (path: PathSegment[], name: string) => {
    if (topics.find(name)) return true;
    report(path, `topic "${name}" is not in the topology`, guess(name, Object.keys(t.topics)));
    return false;
  };
  const processor = (path: PathSegment[], name: string) => {
    if (stores.has(name)) return true;
    report(path, `processor "${name}" is not in the topology`, guess(name, [...stores.keys()]));
    return false;
  };
  const resolves = (path: PathSegment[], f: () => unknown) => {
    try {
      f();
    } catch (e) {
      report(path, (e as Error).message);
    }
  };

  const step = (s: TestStep, path: PathSegment[]) => {
    if (s.topic !== undefined && !topic([...path, 'topic'], s.topic)) return;
    if (s.command) resolves(path, () => facts.commandTopic(s.topic));
    if (s.event) resolves(path, () => facts.eventTopic(s.topic));
    if (s.processor !== undefined) processor([...path, 'processor'], s.processor);
  };
  c.given.forEach((s, i) => step(s, ['given', i]));
  c.when.forEach((s, i) => step(s, ['when', i]));

  for (const name of Object.keys(c.then.outputs ?? {})) topic(['then', 'outputs', name], name);
  if (c.then.replies && facts.replyTopics().length === 0) report(['then', 'replies'], 'no aggregate in the topology writes replies (output.replies)');
  for (const [p, byStore] of Object.entries(c.then.stores ?? {})) {
    if (!processor(['then', 'stores', p], p)) continue;
    const have = stores.get(p)!;
    for (const s of Object.keys(byStore)) if (!have.includes(s)) report(['then', 'stores', p, s], `processor "${p}" has no store "${s}"`, guess(s, have));
  }
  for (const p of Object.keys(c.then.deadLetters ?? {})) processor(['then', 'deadLetters', p], p);
  const aggregates = t.processors.filter((p) => p.type === 'aggregate').map((p) => p.name);
  (c.then.stateAt ?? []).forEach((s, i) => {
    if (aggregates.includes(s.aggregate)) return;
    const path = ['then', 'stateAt', i, 'aggregate'];
    problems.push(loc.problem([...at, ...path], `"${s.aggregate}" is not an aggregate of the topology`, aggregates.length ? guess(s.aggregate, aggregates) : 'the topology has no aggregate'));
  });
  return problems;
}
