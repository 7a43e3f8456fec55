// What a user who installs foldstream gets: the package's `exports` and `bin` point at files `npm pack` includes, and
// `foldstream/testing` imported by the package's name (not by a path into src/) runs a spec against the users
// example. dist/ is built by `npm test`'s pretest (and by `prepare` on install / `npm pack`).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.ts';

interface PackageJson {
  exports: Record<string, string>;
  bin: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const strip = (p: string) => p.replace(/^\.\//, '');

test('npm pack ships every exported entry point and the bin, and neither tests nor sources', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  const entries = [...Object.values(pkg.exports), ...Object.values(pkg.bin), './dist/cli/main.js'].map(strip);
  for (const e of entries) {
    t.true(existsSync(join(ROOT, e)), `${e} exists (run npm run build)`);
    t.true(files.has(e), `${e} is in the package`);
  }
  t.deepEqual([...files].filter((f) => f.startsWith('test/') || f.startsWith('src/')), []);
});

test('foldstream/testing resolves by package name and runs an aggregate spec', async (t) => {
  // by a variable: typecheck runs before the build, when dist/ (the export's target) may not exist yet
  const name = 'foldstream/testing';
  const testing = (await import(name)) as typeof import('../../src/testing/index.ts');
  const users = testing.aggregateSpec({ topology: join(ROOT, 'topology.yaml'), processor: 'users', aggregateId: 'u1' });
  const o = await users.when({ commandType: 'CreateUser', data: { email: 'ann@x.example', fullName: 'Ann' } }).thenEvents([
    { type: 'UserCreated', eventVersion: 2, data: { email: 'ann@x.example', fullName: 'Ann', status: 'ACTIVE' } },
  ]);
  t.like(o.reply, { status: 'accepted', aggregateVersion: 1 });
  t.is(typeof testing.TopologyTestDriver, 'function');
});
