/**
 * What each declared topic is for, derived from the processors that read and write it: an aggregate's input holds
 * commands and its output events (the event store), a projection writes views, a saga sends commands and keeps a log.
 * The topic plan creates a topic by its role (views compacted, events kept forever), `describe` shows it, and
 * validation refuses a topology that gives one topic two roles (checks/topic-roles.ts). Custom processors claim no
 * role: their records are whatever their module makes of them.
 */
import { assertNever } from './assert-never.ts';
import type { PathSegment } from './load.ts';
import { inputsOf } from './names.ts';
import type { ProcessorDecl, Topology } from './schema.ts';

export type TopicRole = 'events' | 'views' | 'saga-log' | 'replies' | 'commands';

/** When two processors give a topic different roles, the first of these is what the topic is (and the other is wrong). */
export const ROLE_ORDER: readonly TopicRole[] = ['events', 'views', 'saga-log', 'replies', 'commands'];

export const ROLE_TEXT: Record<TopicRole, string> = {
  events: 'events topic',
  views: 'view topic',
  'saga-log': 'saga log',
  replies: 'replies topic',
  commands: 'commands topic',
};

/** What the records on a topic of each role are. */
export const ROLE_RECORDS: Record<TopicRole, string> = {
  events: 'events',
  views: 'views',
  'saga-log': 'saga log entries',
  replies: 'replies',
  commands: 'commands',
};

export interface RoleClaim {
  alias: string;
  role: TopicRole;
  processor: ProcessorDecl;
  /** index of the processor in processors: */
  index: number;
  /** where in the document the claim is made */
  path: PathSegment[];
  how: 'reads' | 'writes';
}

/** The roles a processor's declaration gives topics. */
export function roleClaimsOf(p: ProcessorDecl, index: number): RoleClaim[] {
  const at = (...rest: PathSegment[]): PathSegment[] => ['processors', index, ...rest];
  const claim = (alias: string | undefined, role: TopicRole, how: RoleClaim['how'], path: PathSegment[]): RoleClaim[] =>
    alias === undefined ? [] : [{ alias, role, processor: p, index, path, how }];
  switch (p.type) {
    case 'aggregate':
      return [
        ...inputsOf(p).flatMap((alias, j) => claim(alias, 'commands', 'reads', Array.isArray(p.input) ? at('input', j) : at('input'))),
        ...claim(p.output.events, 'events', 'writes', at('output', 'events')),
        ...claim(p.output.replies, 'replies', 'writes', at('output', 'replies')),
      ];
    case 'projection':
      return claim(p.output, 'views', 'writes', at('output'));
    case 'saga': {
      const commands = Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands];
      return [
        ...commands.flatMap((alias, j) => claim(alias, 'commands', 'writes', Array.isArray(p.output.commands) ? at('output', 'commands', j) : at('output', 'commands'))),
        ...claim(p.output.log, 'saga-log', 'writes', at('output', 'log')),
      ];
    }
    case 'join':
      // a table-table or foreign-key join keeps one row per key: a view; the other kinds send a stream of results
      return p.kind === 'table-table' || p.kind === 'foreign-key' ? claim(p.output, 'views', 'writes', at('output')) : [];
    case 'window': // a stream of window results (several per key): not a view, so its topic is not created compacted
    case 'custom':
      return [];
    default:
      return assertNever(p, 'processor type');
  }
}

export function roleClaims(t: Topology): RoleClaim[] {
  // processors that failed the schema are undefined in a salvaged topology
  return t.processors.flatMap((p, i) => (p ? roleClaimsOf(p, i) : []));
}

/** Each claimed topic's role (the first in ROLE_ORDER when claims disagree) and the claim that gives it. */
export function topicRoles(t: Topology): Map<string, RoleClaim> {
  const roles = new Map<string, RoleClaim>();
  for (const c of roleClaims(t)) {
    const known = roles.get(c.alias);
    if (!known || ROLE_ORDER.indexOf(c.role) < ROLE_ORDER.indexOf(known.role)) roles.set(c.alias, c);
  }
  return roles;
}

/** "aggregate "users"", for messages. */
export const processorText = (p: ProcessorDecl) => `${p.type} "${p.name}"`;
