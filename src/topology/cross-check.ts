/**
 * Checks that need the whole document: references to topics, stores and modules, duplicate names,
 * co-partitioning of a processor's inputs, and derived internal topic names that collide with declared ones.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConfigProblem } from '../errors.ts';
import { eventTypeProblems } from './event-types.ts';
import { expressionsOf, syntaxError, upcasterExpressions } from './expressions.ts';
import type { Locator, PathSegment } from './load.ts';
import { inputsOf, internalTopics, isCompacted, stagesOf } from './names.ts';
import type { ProcessorDecl, SagaStepDecl, Topology } from './schema.ts';
import { closest } from './suggest.ts';

export interface CrossCheckOptions {
  baseDir: string;
  checkModules: boolean;
}

/** Resolves a module path relative to the topology's folder, trying .ts and .js when no extension is given. */
export function resolveModulePath(baseDir: string, path: string): string | undefined {
  const abs = resolve(baseDir, path);
  for (const candidate of [abs, `${abs}.ts`, `${abs}.js`, `${abs}.mjs`]) if (existsSync(candidate)) return candidate;
  return undefined;
}

export function crossCheck(t: Topology, loc: Locator, opts: CrossCheckOptions): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const aliases = Object.keys(t.topics);
  const byName = new Map(Object.entries(t.topics).map(([alias, d]) => [d.name, alias]));

  const topicRef = (path: PathSegment[], alias: string | undefined) => {
    if (alias === undefined || t.topics[alias]) return;
    const asName = byName.get(alias);
    const guess = asName ?? closest(alias, aliases);
    problems.push(
      loc.problem(
        path,
        `topic "${alias}" is not declared under topics:`,
        asName
          ? `"${alias}" is the name of the topic declared as "${asName}"; refer to it by its alias "${asName}"`
          : guess
            ? `did you mean "${guess}"?`
            : `declare it under topics: or use one of: ${aliases.join(', ')}`,
      ),
    );
  };
  const moduleRef = (path: PathSegment[], mod: string | undefined) => {
    if (!mod || !opts.checkModules) return;
    if (!resolveModulePath(opts.baseDir, mod)) {
      problems.push(loc.problem(path, `module "${mod}" not found (resolved against ${opts.baseDir})`, 'paths are relative to the topology file'));
    }
  };

  // duplicate topic names under different aliases
  const seenTopic = new Map<string, string>();
  for (const [alias, d] of Object.entries(t.topics)) {
    const other = seenTopic.get(d.name);
    if (other) problems.push(loc.problem(['topics', alias, 'name'], `topic name "${d.name}" is also declared as "${other}"`, 'declare each topic once'));
    seenTopic.set(d.name, alias);
  }

  const seenProcessor = new Map<string, number>();
  t.processors.forEach((p, i) => {
    if (!p) return; // failed the schema; already reported
    const at = (...rest: PathSegment[]): PathSegment[] => ['processors', i, ...rest];
    const first = seenProcessor.get(p.name);
    if (first !== undefined) {
      problems.push(loc.problem(at('name'), `processor name "${p.name}" is already used by processors[${first}]`, 'give each processor a unique name'));
    } else seenProcessor.set(p.name, i);

    const inputs = inputsOf(p);
    inputs.forEach((alias, j) => topicRef(Array.isArray(p.input) ? at('input', j) : at('input'), alias));
    const counts = new Map<number, string[]>();
    for (const alias of inputs) {
      const d = t.topics[alias];
      if (!d?.partitions) continue;
      counts.set(d.partitions, [...(counts.get(d.partitions) ?? []), alias]);
    }
    if (counts.size > 1) {
      const detail = [...counts].map(([n, as]) => `${as.join(', ')}: ${n}`).join('; ');
      problems.push(
        loc.problem(at('input'), `input topics are not co-partitioned (${detail})`, 'give every input of a processor the same partition count'),
      );
    }

    p.steps.forEach((step, j) => {
      if ('route' in step) {
        for (const [key, alias] of Object.entries(step.route.to)) topicRef(at('steps', j, 'route', 'to', key), alias);
        topicRef(at('steps', j, 'route', 'default'), step.route.default);
      }
    });

    switch (p.type) {
      case 'custom':
        moduleRef(at('module'), p.module);
        p.stores.forEach((s, j) => {
          if (!t.stores[s]) {
            const guess = closest(s, Object.keys(t.stores));
            problems.push(
              loc.problem(at('stores', j), `store "${s}" is not declared under stores:`, guess ? `did you mean "${guess}"?` : 'declare it under stores:'),
            );
          }
        });
        p.outputs.forEach((alias, j) => topicRef(at('outputs', j), alias));
        break;
      case 'aggregate':
        moduleRef(at('module'), p.module);
        topicRef(at('output', 'events'), p.output.events);
        topicRef(at('output', 'replies'), p.output.replies);
        if (typeof p.partitioning === 'object') moduleRef(at('partitioning', 'module'), p.partitioning.module);
        if (!p.module && !p.commands) problems.push(loc.problem(at(), 'an aggregate needs a decider `module:` or declarative `commands:`'));
        if (p.module && p.commands) problems.push(loc.problem(at('commands'), 'give either `module:` or `commands:`, not both'));
        if (p.commands && !p.evolve) problems.push(loc.problem(at('commands'), 'declarative `commands:` need `evolve:` rules to rebuild state'));
        if (p.module && p.evolve) problems.push(loc.problem(at('evolve'), '`evolve:` rules go with declarative `commands:`; a decider module has its own evolve'));
        if (p.module && p.initialState) problems.push(loc.problem(at('initialState'), '`initialState:` goes with declarative `commands:`; a decider module exports its own'));
        break;
      case 'projection': {
        moduleRef(at('module'), p.module);
        topicRef(at('output'), p.output);
        if (!p.module && !p.on) problems.push(loc.problem(at(), 'a projection needs `on:` rules or a `module:`'));
        if (p.module && p.on) problems.push(loc.problem(at('on'), 'give either `on:` or `module:`, not both'));
        // a view topic is a table: compaction keeps each key's latest view, retention alone would delete views
        const policy = t.topics[p.output]?.config?.['cleanup.policy'];
        if (policy !== undefined && !isCompacted(String(policy))) {
          problems.push(
            loc.problem(
              ['topics', p.output, 'config', 'cleanup.policy'],
              `topic "${p.output}" is the view topic of projection "${p.name}": its cleanup.policy must include compact (got ${JSON.stringify(policy)})`,
              'set cleanup.policy: compact ("compact,delete" also expires old views); left out, foldstream creates it compacted',
            ),
          );
        }
        if (p.groupBy && typeof p.groupBy === 'object' && 'key' in p.groupBy.aggregate) {
          problems.push(loc.problem(at('groupBy', 'aggregate', 'key'), '`key` is the group key in every group view; name this field differently'));
        }
        // a view topic holds views, not event envelopes: reading one needs inputFormat view
        if (p.inputFormat === 'envelope') {
          for (const alias of inputs) {
            const producer = t.processors.find((q) => q !== p && q?.type === 'projection' && q.output === alias);
            if (producer) {
              problems.push(
                loc.problem(at('input'), `topic "${alias}" is the view topic of projection "${producer.name}", which holds views, not events`, 'set inputFormat: view to chain projections'),
              );
            }
          }
        }
        break;
      }
      case 'saga': {
        moduleRef(at('module'), p.module);
        const commandTopics = Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands];
        commandTopics.forEach((alias, j) => topicRef(Array.isArray(p.output.commands) ? at('output', 'commands', j) : at('output', 'commands'), alias));
        topicRef(at('output', 'log'), p.output.log);
        if (!p.module && !p.flow) problems.push(loc.problem(at(), 'a saga needs a `module:` or a declarative `flow:`'));
        if (p.module && p.flow) problems.push(loc.problem(at('flow'), 'give either `module:` or `flow:`, not both'));
        if (p.flow && !p.startOn) problems.push(loc.problem(at('flow'), 'a declarative `flow:` needs `startOn:`, the event type(s) that start an instance'));
        if (p.module && p.startOn) problems.push(loc.problem(at('startOn'), '`startOn:` goes with a declarative `flow:`; a saga module decides itself when an instance starts'));
        const sendTo = (path: PathSegment[], c: SagaStepDecl['send']) =>
          (Array.isArray(c) ? c.map((x, k) => [[...path, k], x] as const) : [[path, c] as const]).forEach(([where, x]) => {
            if (x.to === undefined) return;
            if (!commandTopics.includes(x.to)) {
              problems.push(loc.problem([...where, 'to'], `topic "${x.to}" is not one of the saga's output.commands (${commandTopics.join(', ')})`, 'add it to output.commands'));
            }
          });
        const stepNames = new Map<string, number>();
        p.flow?.forEach((step, j) => {
          const first = stepNames.get(step.name);
          if (first !== undefined) problems.push(loc.problem(at('flow', j, 'name'), `step name "${step.name}" is already used by flow[${first}]`, 'give each step a unique name'));
          else stepNames.set(step.name, j);
          sendTo(at('flow', j, 'send'), step.send);
          if (step.compensate) sendTo(at('flow', j, 'compensate'), step.compensate);
        });
        if (p.onFailure) sendTo(at('onFailure'), p.onFailure);
        if (p.module && p.onFailure) problems.push(loc.problem(at('onFailure'), '`onFailure:` goes with a declarative `flow:`; a saga module sends its own commands'));
        break;
      }
    }
    for (const e of expressionsOf(p)) {
      const error = syntaxError(e.source);
      if (error) problems.push(loc.problem(at(...e.path), `JSONata expression ${JSON.stringify(e.source)} does not parse: ${error}`));
    }
  });

  // a processor's extra stage (a groupBy projection's group stage, a correlated saga's instances) takes a name no
  // processor may have
  const stages = new Map<string, { owner: ProcessorDecl; stage: string }>();
  for (const p of t.processors) {
    if (!p) continue;
    for (const s of stagesOf(p)) if (s.stage !== undefined) stages.set(s.name, { owner: p, stage: s.stage });
  }
  t.processors.forEach((p, i) => {
    const derived = p ? stages.get(p.name) : undefined;
    if (derived) {
      const { owner, stage } = derived;
      problems.push(
        loc.problem(['processors', i, 'name'], `processor name "${p!.name}" is the name foldstream derives for the ${stage} stage of ${owner.type} "${owner.name}"`, 'rename one of them'),
      );
    }
  });

  const upcasterFrom = new Map<string, number>();
  t.upcasters.forEach((u, i) => {
    if (u.toVersion <= u.fromVersion) {
      problems.push(loc.problem(['upcasters', i, 'toVersion'], `toVersion (${u.toVersion}) must be above fromVersion (${u.fromVersion})`));
    }
    moduleRef(['upcasters', i, 'module'], u.module);
    const rules = (['rename', 'remove', 'defaults', 'set'] as const).filter((r) => u[r] !== undefined);
    if (u.module && rules.length) {
      problems.push(loc.problem(['upcasters', i, rules[0]!], `give either \`module:\` or rules (${rules.join(', ')}), not both`));
    }
    const id = `${u.eventType}@${u.fromVersion}`;
    const first = upcasterFrom.get(id);
    if (first !== undefined) {
      problems.push(
        loc.problem(['upcasters', i, 'fromVersion'], `upcasters[${first}] already lifts ${u.eventType} from version ${u.fromVersion}`, 'give each event type and version one upcaster'),
      );
    } else upcasterFrom.set(id, i);
    for (const e of upcasterExpressions(u)) {
      const error = syntaxError(e.source);
      if (error) problems.push(loc.problem(['upcasters', i, ...e.path], `JSONata expression ${JSON.stringify(e.source)} does not parse: ${error}`));
    }
  });

  problems.push(...eventTypeProblems(t, loc));

  if (t.http.token !== undefined && t.http.token.length < 16) {
    problems.push(loc.problem(['http', 'token'], 'the bearer token is shorter than 16 characters', 'use a long random token, e.g. from ${HTTP_TOKEN}'));
  }

  for (const it of internalTopics(t)) {
    const alias = byName.get(it.name);
    if (alias) {
      problems.push(
        loc.problem(['topics', alias, 'name'], `topic "${it.name}" collides with the ${it.purpose} topic foldstream derives for processor "${it.processor}"`, 'rename the topic or the processor'),
      );
    }
  }
  return problems;
}
