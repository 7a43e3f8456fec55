// The error catalogue is documented: every code users can meet has a section in docs/errors.md, and the page names
// no code that does not exist.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/errors.ts';
import { ROOT } from '../helpers/cli.ts';

const page = readFileSync(`${ROOT}/docs/errors.md`, 'utf8');
const documented = [...page.matchAll(/^### ([A-Z_]+)$/gm)].map((m) => m[1]!);

test('every error code has a section in docs/errors.md', (t) => {
  const missing = Object.keys(ERROR_CODES).filter((code) => !documented.includes(code));
  t.deepEqual(missing, []);
});

test('docs/errors.md documents no code that is not in the catalogue', (t) => {
  const unknown = documented.filter((code) => !(code in ERROR_CODES));
  t.deepEqual(unknown, []);
});

test('every code in the catalogue is raised, logged or replied somewhere in src/, not only declared', (t) => {
  const sources = readdirSync(`${ROOT}/src`, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && f !== 'errors.ts')
    .map((f) => readFileSync(join(ROOT, 'src', f), 'utf8'))
    .join('\n');
  const unused = Object.keys(ERROR_CODES).filter((code) => !sources.includes(`'${code}'`));
  t.deepEqual(unused, []);
});
