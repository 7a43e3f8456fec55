/**
 * The folders --watch watches: those of the files a run reads (test files, topologies, the modules they name), and
 * the folders searched for test files, where a new one would appear.
 */
import { dirname } from 'node:path';
import { resolveModulePath } from '../../topology/module-paths.ts';
import { discover } from './discover.ts';
import { loadSuite } from './suite.ts';

export function watchedFolders(paths: string[]): string[] {
  const { files, dirs } = discover(paths);
  const out = new Set(files);
  for (const file of files) {
    const suite = loadSuite(file);
    // a file with problems is watched too, so that fixing it runs the tests again
    for (const p of suite.problems) out.add(p.file);
    if (!suite.topology) continue;
    const { topology: t, file: topologyFile, baseDir } = suite.topology;
    out.add(topologyFile);
    const modules = [
      ...t.processors.flatMap((p) => ['module' in p ? p.module : undefined, p.type === 'aggregate' && typeof p.partitioning === 'object' ? p.partitioning.module : undefined]),
      ...t.upcasters.map((u) => u.module),
    ];
    for (const m of modules) {
      const resolved = m === undefined ? undefined : resolveModulePath(baseDir, m);
      if (resolved) out.add(resolved);
    }
  }
  return [...new Set([...dirs, ...[...out].map((f) => dirname(f))])];
}
