/**
 * `foldstream validate` loads every module the topology names and checks it has the exports its use needs (a decider
 * without `decide`, a projection module without `project`, ...), each problem at the file:line:col of the `module:`
 * that names it. The processors' builders require the same exports when the app starts; this finds them all at once.
 */
import { errorMessage, type ConfigProblem } from '../errors.ts';
import { assertNever } from '../topology/assert-never.ts';
import type { LoadedTopology, Locator, PathSegment } from '../topology/load.ts';
import type { ProcessorDecl, Topology } from '../topology/schema.ts';
import { loadModule, type ModuleExports } from './module-loader.ts';

interface Needed {
  name: string;
  /** how to write it, for the suggestion */
  signature: string;
  /** a value or a function returning one (initialState), or a function */
  value?: boolean;
}

export interface ModuleUse {
  path: PathSegment[];
  module: string;
  /** whose module it is, for messages */
  what: string;
  needs: Needed[];
}

const fn = (name: string, args: string): Needed => ({ name, signature: `export function ${name}(${args})` });
const initialState: Needed = { name: 'initialState', signature: 'export const initialState = ... (a value, or a function returning one)', value: true };

function usesOf(p: ProcessorDecl, i: number): ModuleUse[] {
  const at = (...rest: PathSegment[]): PathSegment[] => ['processors', i, ...rest];
  const what = `${p.type} "${p.name}"`;
  const use = (module: string | undefined, path: PathSegment[], needs: Needed[]): ModuleUse[] => (module ? [{ path, module, what, needs }] : []);
  switch (p.type) {
    case 'custom':
      return use(p.module, at('module'), [fn('process', 'record, ctx'), ...(p.punctuate ? [fn('punctuate', 'timestamp, ctx')] : [])]);
    case 'aggregate':
      return [
        ...use(p.module, at('module'), [initialState, fn('decide', 'command, state'), fn('evolve', 'state, event')]),
        ...(typeof p.partitioning === 'object' ? use(p.partitioning.module, at('partitioning', 'module'), [fn('partition', 'key, event, partitions')]) : []),
      ];
    case 'projection':
      return use(p.module, at('module'), [fn('project', 'view, event')]);
    case 'saga':
      return use(p.module, at('module'), [initialState, fn('handle', 'state, event, saga')]);
    case 'window':
      return use(p.module, at('module'), [initialState, fn('add', 'aggregate, event'), ...(p.window.kind === 'session' ? [fn('merge', 'older, newer')] : [])]);
    case 'join':
      return [];
    default:
      return assertNever(p, 'processor type');
  }
}

/** Every module the topology names, with where and what it must export. */
export function moduleUses(t: Topology): ModuleUse[] {
  return [
    ...t.processors.flatMap((p, i) => usesOf(p, i)),
    ...t.upcasters.flatMap((u, i): ModuleUse[] =>
      u.module ? [{ path: ['upcasters', i, 'module'], module: u.module, what: `upcaster of ${u.eventType} v${u.fromVersion}`, needs: [fn('upcast', 'event')] }] : [],
    ),
  ];
}

function lacks(mod: ModuleExports, need: Needed): boolean {
  const v = mod[need.name];
  return need.value ? v === undefined : typeof v !== 'function';
}

/** Loads each module once and reports the ones that do not load or lack an export, at their `module:` node. */
export async function moduleProblems(loaded: LoadedTopology, loc: Locator): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  for (const use of moduleUses(loaded.topology)) {
    let mod: ModuleExports;
    try {
      mod = await loadModule(loaded.baseDir, use.module, use.what);
    } catch (e) {
      problems.push(loc.problem(use.path, errorMessage(e), 'run it alone with `npx tsx <module>` to see the error'));
      continue;
    }
    for (const need of use.needs.filter((n) => lacks(mod, n))) {
      problems.push(loc.problem(use.path, `module "${use.module}" of ${use.what} has no export ${need.name}`, `${need.signature} from the module`));
    }
  }
  return problems;
}
