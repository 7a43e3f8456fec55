/**
 * Which files `foldstream test` runs: files named on the command line, and in folders (searched recursively, skipping
 * node_modules, dist and hidden folders) every `*.test.yaml` / `*.test.yml`, and every topology.yaml with a `tests:`
 * section.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConfigProblem } from '../../errors.ts';

const TEST_FILE = /\.test\.ya?ml$/;
const TOPOLOGY_FILE = /^topology\.ya?ml$/;
const SKIP_DIR = (name: string) => name === 'node_modules' || name === 'dist' || name.startsWith('.');

function walk(dir: string, out: string[], dirs: string[]): void {
  dirs.push(dir);
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIR(entry.name)) walk(path, out, dirs);
    } else if (TEST_FILE.test(entry.name) || (TOPOLOGY_FILE.test(entry.name) && /^tests\s*:/m.test(readFileSync(path, 'utf8')))) {
      out.push(path);
    }
  }
}

/** The test files under `paths`, and the folders searched (where a new test file would appear). */
export function discover(paths: string[]): { files: string[]; dirs: string[]; problems: ConfigProblem[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const problems: ConfigProblem[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    if (!existsSync(abs)) problems.push({ file: abs, line: 1, col: 1, path: '', message: 'no such file or folder' });
    else if (statSync(abs).isDirectory()) walk(abs, files, dirs);
    else files.push(abs);
  }
  return { files: [...new Set(files)], dirs, problems };
}
