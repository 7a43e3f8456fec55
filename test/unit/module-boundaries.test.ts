// The folders' contract (DESIGN §2): only src/kafka/ talks kafkajs, only src/state/ opens LevelDB, only src/http/
// serves HTTP, and processor code sees neither — so the EOS protocol's Kafka side is all in one folder, and a
// processor can run in the TopologyTestDriver with no broker, no LevelDB and no server.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/cli.ts';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** every module specifier a file imports: static (also `import type`), dynamic, re-exports and require */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

const SRC = join(ROOT, 'src');
const files = sources(SRC).map((f) => ({ path: relative(ROOT, f), imports: imports(f) }));
const importers = (pred: (spec: string) => boolean) => files.filter((f) => f.imports.some(pred)).map((f) => f.path).sort();

test('the import scanner sees static, type-only, dynamic and re-exported imports', (t) => {
  t.true(files.length > 50);
  t.true(importers((s) => s === 'kafkajs').includes('src/kafka/client.ts'));
  t.true(importers((s) => s === 'level').includes('src/state/leveldb-store.ts'));
  // a type-only import is found too (the form that once slipped into src/runtime/ and src/app/)
  t.true(readFileSync(join(SRC, 'runtime/processor-runner.ts'), 'utf8').includes("import type { KafkaClient } from '../kafka/client.ts'"));
  t.true(imports(join(SRC, 'runtime/processor-runner.ts')).includes('../kafka/client.ts'));
});

test('only src/kafka/ imports kafkajs', (t) => {
  t.deepEqual(importers((s) => s === 'kafkajs' || s.startsWith('kafkajs/')).filter((p) => !p.startsWith('src/kafka/')), []);
});

test('only src/state/ imports LevelDB', (t) => {
  t.deepEqual(importers((s) => s === 'level' || s === 'classic-level').filter((p) => !p.startsWith('src/state/')), []);
});

test('only src/http/ imports node:http', (t) => {
  t.deepEqual(importers((s) => s === 'node:http' || s === 'http').filter((p) => !p.startsWith('src/http/')), []);
});

// src/kafka/types.ts is the client-neutral record and interface shapes (no kafkajs): the driver builds the same records
const forbidden = (s: string) => /(^|\/)kafka\/(?!types\.ts$)|leveldb-store|(^|\/)http\/|^kafkajs$|^level$/.test(s);

test('processors and the test driver import neither Kafka clients, nor LevelDB, nor the HTTP server', (t) => {
  const offenders = files
    .filter((f) => f.path.startsWith('src/processors/') || f.path.startsWith('src/testing/'))
    .filter((f) => f.imports.some(forbidden))
    .map((f) => `${f.path}: ${f.imports.filter(forbidden).join(', ')}`);
  t.deepEqual(offenders, []);
});

test('cli/ parses and prints: it imports no kafka/ module, app/ wires Kafka for the offline commands too', (t) => {
  const kafka = (s: string) => /(^|\/)kafka\//.test(s);
  const offenders = files.filter((f) => f.path.startsWith('src/cli/') && f.imports.some(kafka)).map((f) => `${f.path}: ${f.imports.filter(kafka).join(', ')}`);
  t.deepEqual(offenders, []);
});
