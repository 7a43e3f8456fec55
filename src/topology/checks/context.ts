/**
 * What every cross-check shares: the topology, the locator that turns a document path into file:line:col, the list of
 * problems, and the two reference checks (topic aliases, module files) each processor kind uses.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { ConfigProblem } from '../../errors.ts';
import type { Locator, PathSegment } from '../load.ts';
import { resolveModulePath } from '../module-paths.ts';
import type { Topology } from '../schema.ts';
import { closest } from '../suggest.ts';

export interface CrossCheckOptions {
  baseDir: string;
  checkModules: boolean;
}

export class CheckContext {
  readonly problems: ConfigProblem[] = [];
  readonly aliases: string[];
  /** topic name → alias */
  readonly byName: Map<string, string>;

  constructor(
    readonly t: Topology,
    readonly loc: Locator,
    readonly opts: CrossCheckOptions,
  ) {
    this.aliases = Object.keys(t.topics);
    this.byName = new Map(Object.entries(t.topics).map(([alias, d]) => [d.name, alias]));
  }

  problem(path: readonly PathSegment[], message: string, suggestion?: string): void {
    this.problems.push(this.loc.problem(path, message, suggestion));
  }

  /** A topic alias must be declared; a topic's name used as an alias gets the alias to use. */
  topicRef(path: PathSegment[], alias: string | undefined): void {
    if (alias === undefined || this.t.topics[alias]) return;
    const asName = this.byName.get(alias);
    const guess = asName ?? closest(alias, this.aliases);
    this.problem(
      path,
      `topic "${alias}" is not declared under topics:`,
      asName
        ? `"${alias}" is the name of the topic declared as "${asName}"; refer to it by its alias "${asName}"`
        : guess
          ? `did you mean "${guess}"?`
          : `declare it under topics: or use one of: ${this.aliases.join(', ')}`,
    );
  }

  moduleRef(path: PathSegment[], mod: string | undefined): void {
    if (!mod) return;
    // confined whether or not files are checked: where a module may live is part of the topology
    const root = resolve(this.opts.baseDir, this.t.modules?.root ?? '.');
    const file = this.opts.checkModules ? resolveModulePath(this.opts.baseDir, mod) : undefined;
    if (!inside(root, resolve(this.opts.baseDir, mod)) || (file !== undefined && !inside(realpathSync(root), realpathSync(file)))) {
      this.problem(
        path,
        `module "${mod}" is outside ${root}, the folder module paths are confined to`,
        'move the module under the topology\'s folder, or widen modules.root to a folder that holds it (e.g. modules: { root: ".." })',
      );
      return;
    }
    if (this.opts.checkModules && !file) {
      this.problem(path, `module "${mod}" not found (resolved against ${this.opts.baseDir})`, 'paths are relative to the topology file');
    }
  }
}

/** Whether `path` is `root` or below it. */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Path builder for processors[i]. */
export type At = (...rest: PathSegment[]) => PathSegment[];
