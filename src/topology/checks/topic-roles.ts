/**
 * One topic, one role (topic-roles.ts). The events topic is the event store: only aggregates write it, and nothing
 * reads it as commands. A topology that gives a topic two roles, or reads a topic as what it is not, is refused at
 * the reference that is wrong, before anything reaches a broker.
 */
import { assertNever } from '../assert-never.ts';
import type { PathSegment } from '../load.ts';
import { inputsOf } from '../names.ts';
import type { ProcessorDecl } from '../schema.ts';
import { processorText, ROLE_RECORDS, ROLE_TEXT, roleClaims, topicRoles, type RoleClaim, type TopicRole } from '../topic-roles.ts';
import type { CheckContext } from './context.ts';

export function checkTopicRoles(ctx: CheckContext): void {
  const roles = topicRoles(ctx.t);
  const owner = (c: RoleClaim) => `the ${ROLE_TEXT[c.role]} of ${processorText(c.processor)}`;

  // two roles for one topic: the claim that is not the topic's role is the mistake
  for (const c of roleClaims(ctx.t)) {
    const role = roles.get(c.alias);
    if (!role || role.role === c.role) continue;
    const [message, hint] = conflict(c, role, owner(role));
    ctx.problem(c.path, message, hint);
  }

  ctx.t.processors.forEach((p, i) => {
    if (!p) return;
    const at = (...rest: PathSegment[]): PathSegment[] => ['processors', i, ...rest];
    const inputs = inputsOf(p);
    const inputRoles = new Set(inputs.flatMap((alias) => roles.get(alias)?.role ?? []));

    // a route step forwards the records the processor reads: to the event store never, to another role never
    p.steps.forEach((step, j) => {
      if (!('route' in step)) return;
      const targets: [PathSegment[], string | undefined][] = [
        ...Object.entries(step.route.to).map(([key, alias]): [PathSegment[], string] => [at('steps', j, 'route', 'to', key), alias]),
        [at('steps', j, 'route', 'default'), step.route.default],
      ];
      for (const [path, alias] of targets) {
        const target = alias === undefined ? undefined : roles.get(alias);
        if (!target) continue;
        if (target.role === 'events') {
          ctx.problem(
            path,
            `a route step of ${processorText(p)} forwards its input records to topic "${alias}", ${owner(target)}: only that aggregate may append to it`,
            'route to a topic of its own, or send commands to the aggregate\'s input',
          );
        } else {
          const wrong = [...inputRoles].find((r) => r !== target.role);
          if (wrong) {
            ctx.problem(
              path,
              `a route step of ${processorText(p)} forwards the ${ROLE_RECORDS[wrong]} it reads to topic "${alias}", ${owner(target)}`,
              `route ${ROLE_RECORDS[wrong]} to a topic that holds ${ROLE_RECORDS[wrong]}`,
            );
          }
        }
      }
    });

    // a table join's output claims the views role, so a clash is reported as a role conflict
    if (p.type === 'join' && (p.kind === 'stream-table' || p.kind === 'stream-stream')) {
      const target = roles.get(p.output);
      if (target?.role === 'events') {
        ctx.problem(
          at('output'),
          `join "${p.name}" writes its results to topic "${p.output}", ${owner(target)}: only that aggregate may append to it (with versions and idempotence)`,
          'give the join a topic of its own for its results',
        );
      }
    }
    if (p.type === 'window' && p.output !== undefined) {
      const target = roles.get(p.output);
      if (target?.role === 'events') {
        ctx.problem(
          at('output'),
          `window processor "${p.name}" writes its results to topic "${p.output}", ${owner(target)}: only that aggregate may append to it (with versions and idempotence)`,
          'give the window processor a topic of its own for its results',
        );
      }
    }
    if (p.type === 'custom') {
      p.outputs.forEach((alias, j) => {
        const target = roles.get(alias);
        if (target?.role === 'events') {
          ctx.problem(
            at('outputs', j),
            `custom processor "${p.name}" may forward to topic "${alias}", ${owner(target)}: only that aggregate may append to it (with versions and idempotence)`,
            `send commands to the aggregate's input instead, and remove "${alias}" from outputs`,
          );
        }
      });
    }

    // what a processor reads must be what it expects
    inputs.forEach((alias, j) => {
      const source = roles.get(alias);
      if (!source || source.processor === p) return;
      const problem = expectation(p, source.role, alias);
      const path = p.type === 'join' && alias === p.right && j === inputs.length - 1 ? at('right') : Array.isArray(p.input) ? at('input', j) : at('input');
      if (problem) ctx.problem(path, `${processorText(p)} reads topic "${alias}", ${owner(source)}: ${problem[0]}`, problem[1]);
    });
  });
}

/** What is wrong when a processor reads a topic with this role, or undefined when it is fine. */
function expectation(p: ProcessorDecl, role: TopicRole, alias: string): [string, string] | undefined {
  switch (p.type) {
    case 'projection':
      if (p.inputFormat === 'view') {
        return role === 'views' ? undefined : [`inputFormat view reads another projection's views, and this topic holds ${ROLE_RECORDS[role]}`, 'set inputFormat: envelope, or read a view topic'];
      }
      // a view topic read as envelopes is reported by the projection's own check
      if (role === 'commands' || role === 'replies') return [`a projection folds events, and this topic holds ${ROLE_RECORDS[role]}; every record would be dead-lettered`, 'read the events topic of the aggregate instead'];
      return undefined;
    case 'saga':
      if (role === 'commands' || role === 'replies' || role === 'views') return [`a saga reacts to events, and this topic holds ${ROLE_RECORDS[role]}; every record would be dead-lettered`, 'read the events topic of the aggregate instead'];
      return undefined;
    case 'window':
      if (p.inputFormat === 'view') {
        return role === 'views' ? undefined : [`inputFormat view windows a projection's views, and this topic holds ${ROLE_RECORDS[role]}`, 'set inputFormat: envelope, or read a view topic'];
      }
      // a view topic read as envelopes is reported by the window's own check
      if (role === 'commands' || role === 'replies') return [`a window processor aggregates events, and this topic holds ${ROLE_RECORDS[role]}; every record would be dead-lettered`, 'read the events topic of the aggregate instead'];
      return undefined;
    case 'join': {
      const table = alias === p.right ? p.kind !== 'stream-stream' : p.kind === 'table-table' || p.kind === 'foreign-key';
      if (table) {
        return role === 'views' ? undefined : [`the ${alias === p.right ? 'right' : 'left'} side of a ${p.kind} join is a table (one row per key), and this topic holds ${ROLE_RECORDS[role]}`, 'read a projection\'s view topic (or another compacted topic of rows)'];
      }
      if (role !== 'events') return [`the ${alias === p.right ? 'right' : 'left'} side of a ${p.kind} join is a stream of events, and this topic holds ${ROLE_RECORDS[role]}; every record would be dead-lettered`, 'read the events topic of an aggregate'];
      return undefined;
    }
    case 'aggregate': // its inputs are claims: a conflict is reported as one
    case 'custom':
      return undefined;
    default:
      return assertNever(p, 'processor type');
  }
}

function conflict(c: RoleClaim, role: RoleClaim, owner: string): [string, string] {
  const p = c.processor;
  const topic = `topic "${c.alias}"`;
  if (role.role === 'events') {
    if (c.how === 'reads') {
      return role.processor === p
        ? [`aggregate "${p.name}" reads its own events topic "${c.alias}": every event it appends would come back to it as a command, and be dead-lettered`, 'set input to the topic its commands arrive on']
        : [
            `aggregate "${p.name}" reads ${topic}, ${owner}: an aggregate handles commands, not another aggregate's events`,
            `to act on those events, add a saga (type: saga) that reads "${c.alias}" and sends commands to the input of "${p.name}"`,
          ];
    }
    switch (c.role) {
      case 'views':
        return [
          `${processorText(p)} writes its views to ${topic}, ${owner}: views would be appended to the event store (and \`topics --create\` would create it compacted, keeping one event per aggregate)`,
          'declare a topic of its own for the views (cleanup.policy: compact) and set output to it',
        ];
      case 'commands':
        return [`saga "${p.name}" sends commands to ${topic}, ${owner}: they would be appended to the event store`, 'send them to the input topic of the aggregate that handles them'];
      case 'saga-log':
        return [`saga "${p.name}" keeps its log on ${topic}, ${owner}: it would be appended to the event store`, 'declare a topic of its own for the saga log'];
      case 'replies':
        return [`aggregate "${p.name}" writes command replies to ${topic}, ${owner}: they would be appended to the event store`, 'declare a topic of its own for replies'];
    }
  }
  if (c.how === 'reads') {
    return [`aggregate "${p.name}" reads ${topic} as commands, but it is ${owner}`, 'set input to the topic its commands arrive on'];
  }
  return [`${processorText(p)} writes ${topic} as its ${ROLE_TEXT[c.role]}, but it is ${owner}`, `give the ${ROLE_TEXT[c.role]} a topic of its own`];
}
