/**
 * Checks that need the whole document: references to topics, stores and modules, duplicate names,
 * co-partitioning of a processor's inputs, and derived internal topic names that collide with declared ones.
 * What every processor has is checked here; what a kind has is checked in checks/<kind>.ts, dispatched by an
 * exhaustive switch so that a new processor kind cannot be left unchecked.
 */
import type { ConfigProblem } from '../errors.ts';
import { assertNever } from './assert-never.ts';
import { checkAggregate } from './checks/aggregate.ts';
import { CheckContext, type At, type CrossCheckOptions } from './checks/context.ts';
import { checkCustom } from './checks/custom.ts';
import { checkEventsTopics } from './checks/events-topics.ts';
import { checkProjection } from './checks/projection.ts';
import { checkSaga } from './checks/saga.ts';
import { checkTopicRoles } from './checks/topic-roles.ts';
import { checkUpcasters } from './checks/upcasters.ts';
import { checkJoin } from './checks/join.ts';
import { checkWindow } from './checks/window.ts';
import { expressionsOf, syntaxError } from './expressions.ts';
import type { Locator } from './load.ts';
import { inputsOf, internalTopics, stagesOf } from './names.ts';
import type { ProcessorDecl, Topology } from './schema.ts';
import { eventTypeProblems } from './event-types.ts';

export type { CrossCheckOptions } from './checks/context.ts';

export function crossCheck(t: Topology, loc: Locator, opts: CrossCheckOptions): ConfigProblem[] {
  const ctx = new CheckContext(t, loc, opts);

  // duplicate topic names under different aliases
  const seenTopic = new Map<string, string>();
  for (const [alias, d] of Object.entries(t.topics)) {
    const other = seenTopic.get(d.name);
    if (other) ctx.problem(['topics', alias, 'name'], `topic name "${d.name}" is also declared as "${other}"`, 'declare each topic once');
    seenTopic.set(d.name, alias);
  }

  const seenProcessor = new Map<string, number>();
  t.processors.forEach((p, i) => {
    if (!p) return; // failed the schema; already reported
    const at: At = (...rest) => ['processors', i, ...rest];
    const first = seenProcessor.get(p.name);
    if (first !== undefined) ctx.problem(at('name'), `processor name "${p.name}" is already used by processors[${first}]`, 'give each processor a unique name');
    else seenProcessor.set(p.name, i);
    checkCommon(ctx, p, at);
    checkKind(ctx, p, at);
  });

  checkTopicRoles(ctx);
  checkEventsTopics(ctx);
  checkStageNames(ctx);
  checkUpcasters(ctx);
  ctx.problems.push(...eventTypeProblems(t, loc));

  // kafkajs refuses a consumer whose heartbeat interval is not below its session timeout
  const sessionTimeout = t.processing.staticMembership.enabled
    ? { ms: t.processing.staticMembership.sessionTimeoutMs, path: ['processing', 'staticMembership', 'sessionTimeoutMs'] }
    : { ms: t.processing.sessionTimeoutMs, path: ['processing', 'sessionTimeoutMs'] };
  if (t.processing.heartbeatIntervalMs >= sessionTimeout.ms) {
    ctx.problem(
      sessionTimeout.path,
      `the session timeout (${sessionTimeout.ms} ms) is not above processing.heartbeatIntervalMs (${t.processing.heartbeatIntervalMs} ms)`,
      'make the session timeout several heartbeat intervals long (Kafka recommends a heartbeat of a third of it at most)',
    );
  }

  if (t.http.token !== undefined && t.http.token.length < 16) {
    ctx.problem(['http', 'token'], 'the bearer token is shorter than 16 characters', 'use a long random token, e.g. from ${HTTP_TOKEN}');
  }
  (t.http.tokens ?? []).forEach((x, i) => {
    if (x.token.length < 16) ctx.problem(['http', 'tokens', i, 'token'], 'the bearer token is shorter than 16 characters', 'use a long random token, e.g. from ${HTTP_READ_TOKEN}');
  });

  for (const it of internalTopics(t)) {
    const alias = ctx.byName.get(it.name);
    if (alias) {
      ctx.problem(['topics', alias, 'name'], `topic "${it.name}" collides with the ${it.purpose} topic foldstream derives for processor "${it.processor}"`, 'rename the topic or the processor');
    }
  }
  return ctx.problems;
}

function checkKind(ctx: CheckContext, p: ProcessorDecl, at: At): void {
  switch (p.type) {
    case 'custom':
      return checkCustom(ctx, p, at);
    case 'aggregate':
      return checkAggregate(ctx, p, at);
    case 'projection':
      return checkProjection(ctx, p, at);
    case 'saga':
      return checkSaga(ctx, p, at);
    case 'window':
      return checkWindow(ctx, p, at);
    case 'join':
      return checkJoin(ctx, p, at);
    default:
      return assertNever(p, 'processor type');
  }
}

/** What every processor has: declared, co-partitioned inputs, route targets and expressions that parse. */
function checkCommon(ctx: CheckContext, p: ProcessorDecl, at: At): void {
  const inputs = inputsOf(p);
  inputs.forEach((alias, j) => ctx.topicRef(Array.isArray(p.input) ? at('input', j) : at('input'), alias));
  const counts = new Map<number, string[]>();
  for (const alias of inputs) {
    const d = ctx.t.topics[alias];
    if (!d?.partitions) continue;
    counts.set(d.partitions, [...(counts.get(d.partitions) ?? []), alias]);
  }
  // a join checks its two sides itself: they are co-partitioned only when the key is the same (checks/join.ts)
  if (counts.size > 1 && p.type !== 'join') {
    const detail = [...counts].map(([n, as]) => `${as.join(', ')}: ${n}`).join('; ');
    ctx.problem(at('input'), `input topics are not co-partitioned (${detail})`, 'give every input of a processor the same partition count');
  }

  p.steps.forEach((step, j) => {
    if ('route' in step) {
      for (const [key, alias] of Object.entries(step.route.to)) ctx.topicRef(at('steps', j, 'route', 'to', key), alias);
      ctx.topicRef(at('steps', j, 'route', 'default'), step.route.default);
    }
  });

  for (const e of expressionsOf(p)) {
    const error = syntaxError(e.source);
    if (error) ctx.problem(at(...e.path), `JSONata expression ${JSON.stringify(e.source)} does not parse: ${error}`);
  }
}

/**
 * A processor's extra stage (a groupBy projection's group stage, a correlated saga's instances) takes a name no
 * processor may have.
 */
function checkStageNames(ctx: CheckContext): void {
  const stages = new Map<string, { owner: ProcessorDecl; stage: string }>();
  for (const p of ctx.t.processors) {
    if (!p) continue;
    for (const s of stagesOf(p)) if (s.stage !== undefined) stages.set(s.name, { owner: p, stage: s.stage });
  }
  ctx.t.processors.forEach((p, i) => {
    const derived = p ? stages.get(p.name) : undefined;
    if (derived) {
      const { owner, stage } = derived;
      ctx.problem(['processors', i, 'name'], `processor name "${p!.name}" is the name foldstream derives for the ${stage} stage of ${owner.type} "${owner.name}"`, 'rename one of them');
    }
  });
}
