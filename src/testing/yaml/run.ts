/**
 * Runs YAML test files through the TopologyTestDriver and reports each case, with file:line:col and a diff for each
 * failing expectation, then a summary line. No broker: a file's cases run in well under a second.
 */
import { isAbsolute, relative } from 'node:path';
import { errorMessage, formatProblem, type ConfigProblem } from '../../errors.ts';
import { formatPath, type Locator, type PathSegment } from '../../topology/load.ts';
import { TopologyTestDriver } from '../topology-test-driver.ts';
import { discover } from './discover.ts';
import { checkThen, type Failure } from './expectations.ts';
import { runStep } from './steps.ts';
import { loadSuite, type LocatedCase, type Suite } from './suite.ts';

export interface RunOptions {
  /** where report lines go */
  out: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface RunSummary {
  files: number;
  passed: number;
  failed: number;
  skipped: number;
  /** problems in test files or topologies (nothing of those files ran) */
  problems: number;
  /** every case passed and nothing was wrong with the files (and there was at least one case) */
  ok: boolean;
}

/** Paths as the user typed them: relative to the working directory when inside it. */
export function shown(file: string): string {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : file;
}

const showProblem = (p: ConfigProblem) => formatProblem({ ...p, file: shown(p.file) });
const indent = (text: string, by: string) => text.split('\n').map((l) => by + l).join('\n');

async function runCase(suite: Suite, c: LocatedCase): Promise<Failure[]> {
  const d = await TopologyTestDriver.fromLoaded(suite.topology!);
  const steps = async (which: 'given' | 'when') => {
    for (const [i, step] of c.case[which].entries()) {
      try {
        await runStep(d, step);
      } catch (e) {
        return [{ path: [which, i], message: `the step failed: ${errorMessage(e)}` }];
      }
    }
    return [];
  };
  try {
    const given = await steps('given');
    if (given.length) return given;
    const mark = d.mark();
    const when = await steps('when');
    if (when.length) return when;
    return await checkThen(d, c.case.then, mark);
  } finally {
    await d.close();
  }
}

function where(loc: Locator, path: PathSegment[]): string {
  const { node } = loc.node(path);
  const { line, col } = loc.position(node?.range?.[0] ?? 0);
  return `${shown(loc.file)}:${line}:${col}`;
}

export async function runTestFiles(paths: string[], o: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const found = discover(paths);
  const summary: RunSummary = { files: found.files.length, passed: 0, failed: 0, skipped: 0, problems: found.problems.length, ok: false };
  for (const p of found.problems) o.out(showProblem(p));
  for (const file of found.files) {
    const suite = loadSuite(file, o.env);
    o.out(shown(file));
    if (suite.problems.length) {
      for (const p of suite.problems) o.out(`  ${showProblem(p)}`);
      summary.problems += suite.problems.length;
      continue;
    }
    try {
      // build once up front, so a module that does not load is one problem, not one per case
      await TopologyTestDriver.fromLoaded(suite.topology!);
    } catch (e) {
      o.out(`  ${shown(suite.topology!.file)}: ${errorMessage(e)}`);
      summary.problems++;
      continue;
    }
    for (const c of suite.cases) {
      if (c.case.skip) {
        o.out(`  - ${c.case.name} (skipped)`);
        summary.skipped++;
        continue;
      }
      const failures = await runCase(suite, c).catch((e: unknown): Failure[] => [{ path: [], message: `the case failed: ${errorMessage(e)}` }]);
      if (failures.length === 0) {
        o.out(`  ✔ ${c.case.name}`);
        summary.passed++;
        continue;
      }
      summary.failed++;
      const at = where(suite.loc!, c.path);
      o.out(`  ✘ ${c.case.name}  (${at.slice(0, at.lastIndexOf(':'))})`);
      for (const f of failures) {
        const path = [...c.path, ...f.path];
        o.out(`    ${where(suite.loc!, path)} ${formatPath(f.path)}: ${f.message}`);
        if (f.detail) o.out(indent(f.detail, '      '));
      }
    }
  }
  const ran = summary.passed + summary.failed;
  summary.ok = summary.failed === 0 && summary.problems === 0 && ran + summary.skipped > 0;
  const parts = [`${summary.passed} passed`, `${summary.failed} failed`];
  if (summary.skipped) parts.push(`${summary.skipped} skipped`);
  if (summary.problems) parts.push(`${summary.problems} problem${summary.problems === 1 ? '' : 's'} in the files`);
  const files = `${summary.files} file${summary.files === 1 ? '' : 's'}`;
  if (summary.files === 0 && summary.problems === 0) {
    o.out(
      `no test files under ${paths.join(', ')} (*.test.yaml, or a topology.yaml with tests:): write a <name>.test.yaml ` +
        'with `topology: ./topology.yaml` and `tests:` cases, or add `tests:` to the topology (docs/testing.md)',
    );
  }
  o.out(`\n${files}: ${parts.join(', ')} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
  return summary;
}
