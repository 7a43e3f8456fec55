import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { watchedFolders } from '../../testing/yaml/watched-folders.ts';
import { runTestFiles, shown } from '../../testing/yaml/run.ts';

export function registerTest(program: Command): void {
  program
    .command('test')
    .description(
      'run YAML test cases through the test driver, with no broker: *.test.yaml files (and topology files with a tests: ' +
        'section) under the paths; exit 1 when a case fails or a file has a problem',
    )
    .argument('[paths...]', 'test files, topology files or folders to search', ['.'])
    .option('--watch', 'run again whenever a test file, a topology or a module it names changes')
    .action(async (paths: string[], opts: { watch?: boolean }) => {
      if (opts.watch) return watchTests(paths);
      const summary = await runTestFiles(paths, { out: (line) => console.log(line) });
      process.exitCode = summary.ok ? 0 : 1;
    });
}

const WATCHED = /\.(ya?ml|[cm]?[jt]s|json)$/;

/**
 * Each run is a child process: modules are ES modules, which a process cannot load a second time, so a changed
 * decider would otherwise keep its old code.
 */
function watchTests(paths: string[]): void {
  let child: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  let watchers: FSWatcher[] = [];

  const rewatch = () => {
    for (const w of watchers) w.close();
    const dirs = watchedFolders(paths).filter((d) => existsSync(d));
    watchers = dirs.map((d) => watch(d, (_, name) => changed(name ? resolve(d, name) : d)));
    return dirs.length;
  };

  const run = () => {
    child?.kill();
    const watching = rewatch();
    const args = [...process.execArgv, process.argv[1]!, 'test', ...paths];
    const current = spawn(process.execPath, args, { stdio: 'inherit' });
    child = current;
    current.on('exit', (code, signal) => {
      if (child !== current || signal) return;
      child = undefined;
      console.log(`${code === 0 ? 'all passed' : 'failures'}; watching ${watching} folder${watching === 1 ? '' : 's'} for changes (Ctrl-C to stop)`);
    });
  };

  const changed = (file: string) => {
    if (!WATCHED.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      console.log(`\n${shown(file)} changed: running again\n`);
      run();
    }, 150);
  };

  process.on('SIGINT', () => {
    child?.kill();
    process.exit(0);
  });
  run();
}
