// `foldstream test` runs YAML cases through the test driver with no broker: exit 0 when all pass, 1 with a diff at
// the expectation's file:line:col when one fails, file:line:col for mistakes in test files, and --watch reruns.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, ROOT, runCli } from '../helpers/cli.ts';

const lineOf = (file: string, text: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;

test('foldstream test over examples/ runs the users and the orders cases and exits 0', async (t) => {
  const r = await runCli(['test', 'examples']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /examples\/users\/users\.test\.yaml\n/);
  t.regex(r.stdout, /✔ creating a user twice rejects the second command/);
  t.regex(r.stdout, /examples\/orders\/orders\.test\.yaml\n/);
  t.regex(r.stdout, /✔ a declined payment releases the reserved stock and cancels the order/);
  t.regex(r.stdout, /✔ orders per customer per hour, sent once when the hour closes/);
  t.regex(r.stdout, /✔ the stock as of a time is rebuilt from its events/);
  t.regex(r.stdout, /2 files: 16 passed, 0 failed/);
  t.notRegex(r.stdout, /✘/);
});

test('a wrong expectation makes foldstream test exit 1 and print a diff at the case and the expectation (file:line)', async (t) => {
  const file = 'test/fixtures/yaml-tests/wrong-expectation.yaml';
  const r = await runCli(['test', file]);
  t.is(r.code, 1, r.stdout + r.stderr);
  const caseLine = lineOf(join(ROOT, file), '- name: creating a user twice is rejected');
  const expectationLine = lineOf(join(ROOT, file), 'c2: { status: rejected, code: USER_GONE }');
  t.true(r.stdout.includes(`✘ creating a user twice is rejected (with a deliberately wrong code)  (${file}:${caseLine})`), r.stdout);
  t.true(r.stdout.includes(`${file}:${expectationLine}:13 then.replies.c2: the reply to c2 differs`), r.stdout);
  t.regex(r.stdout, /- expected\n\s+\+ actual\n\s+ {2}status: rejected\n\s+- code: USER_GONE\n\s+\+ code: USER_EXISTS/);
  t.regex(r.stdout, /✔ creating a user is accepted/);
  t.regex(r.stdout, /1 file: 1 passed, 1 failed/);
});

test('a wrong count, equal, contains, stores or deadLetters expectation each fails its case with a diff at file:line:col, and the right one passes', async (t) => {
  const file = 'test/fixtures/yaml-tests/expectations.yaml';
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const r = await runCli(['test', file]);
  t.is(r.code, 1, r.stdout + r.stderr);
  // line of the case, and file:line:col of `token` on the first line of the case containing it
  const caseLine = (name: string) => lines.findIndex((l) => l.includes(`- name: ${name}`)) + 1;
  const at = (name: string, token: string) => {
    const i = lines.findIndex((l, k) => k >= caseLine(name) && l.includes(token));
    return `${file}:${i + 1}:${lines[i]!.indexOf(token) + 1}`;
  };
  const wrong: [kind: string, failure: string, diff: RegExp][] = [
    ['count', `${at('count, wrong', '2 }')} then.outputs.events.count: expected 2 records on events, got 1`, /- key: u1\n\s+value:\n\s+eventId: /],
    ['equal', `${at('equal, wrong', '- key: u1')} then.outputs.user-view.equal: the records on user-view differ`, /- {5}fullName: Anna\n\s+\+ {5}fullName: Ann$/m],
    ['contains', `${at('contains, wrong', '{ key: u1')} then.outputs.user-view.contains[0]: the only one of the records on user-view does not match`, /- {3}status: GOLD\n\s+\+ {3}status: SILVER$/m],
    ['stores', `${at('stores, wrong', '{ version: 1')} then.stores.users.state.u1: users.state["u1"] differs`, /- {3}email: bob@x\.example\n\s+\+ {3}email: ann@x\.example$/m],
    ['deadLetters', `${at('deadLetters, wrong', '{ key: future-1')} then.deadLetters.user-view.contains[0]: the only one of the dead letters of user-view does not match`, /- code: HANDLER_FAILED\n\s+\+ code: EVENT_VERSION_UNSUPPORTED$/m],
  ];
  for (const [kind, failure, diff] of wrong) {
    t.regex(r.stdout, new RegExp(`✔ ${kind}, right\n`), `the right ${kind} expectation passes`);
    const header = `✘ ${kind}, wrong  (${file}:${caseLine(`${kind}, wrong`)})\n    ${failure}\n`;
    const start = r.stdout.indexOf(header);
    t.true(start >= 0, `${kind}: no\n${header}in\n${r.stdout}`);
    // the diff is the block below the failure, up to the next case
    const block = r.stdout.slice(start + header.length).split(/\n {2}[✔✘]|\n\n/)[0]!;
    t.regex(block, diff, kind);
  }
  // each wrong case fails on its wrong expectation only
  const located = r.stdout.split('\n').filter((l) => l.trim().startsWith(`${file}:`)).map((l) => l.trim());
  t.deepEqual(located, wrong.map(([, failure]) => failure));
  t.regex(r.stdout, /1 file: 5 passed, 5 failed/);
});

test('headers given to a record, raw or event step reach the processor', async (t) => {
  // the processor (test/fixtures/modules/header-echo.ts) copies the headers it sees into its output value
  const r = await runCli(['test', join(FIXTURES, 'yaml-tests/headers')]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /✔ the headers of a record step reach the processor\n/);
  t.regex(r.stdout, /✔ the headers of a raw step reach the processor\n/);
  t.regex(r.stdout, /✔ the headers of an event step reach the processor\n/);
  t.regex(r.stdout, /1 file: 3 passed, 0 failed/);
});

test('mistakes in a test file are reported at file:line:col, with suggestions, and nothing runs', async (t) => {
  const file = 'test/fixtures/yaml-tests/mistakes.yaml';
  const r = await runCli(['test', file]);
  t.is(r.code, 1);
  const located = r.stdout.split('\n').filter((l) => l.trim().startsWith(`${file}:`)).map((l) => l.trim().slice(file.length + 1));
  t.deepEqual(located, [
    '9:9 (tests[0].then.outputs.evnts) topic "evnts" is not in the topology; did you mean "events"?',
    '12:62 (tests[1].when[0].command.expectedVerison) unknown key "expectedVerison"; did you mean "expectedVersion"?',
    '14:7 (tests[1].then.replys) unknown key "replys"; did you mean "replies"?',
  ]);
  t.regex(r.stdout, /0 passed, 0 failed, 3 problems in the files/);
});

test('bad YAML in a test file fails with file:line:col', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-yaml-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'broken.test.yaml');
  writeFileSync(file, `topology: ${join(ROOT, 'topology.yaml')}\ntests:\n  - name: x\n    when: [ { command: { commandType: CreateUser } ]\n`);
  const r = await runCli(['test', dir]);
  t.is(r.code, 1);
  t.regex(r.stdout, new RegExp(`${file.replace(/[.]/g, '\\.')}:4:\\d+ YAML: `));
});

test("a topology's tests: section runs: advancing the wall clock or stream time fires the scheduled punctuations", async (t) => {
  const r = await runCli(['test', join(FIXTURES, 'yaml-tests/punctuation')]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /✔ advancing the wall clock by the interval runs the wall-clock punctuation once in every task/);
  t.regex(r.stdout, /✔ stream time crossing a week boundary runs the stream-time punctuation/);
  t.regex(r.stdout, /1 file: 3 passed, 0 failed/);
});

test('a path with no test cases exits 1 and says what to write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-empty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // a topology without tests: is not a test file
  writeFileSync(join(dir, 'topology.yaml'), readFileSync(join(FIXTURES, 'valid.yaml')));
  const r = await runCli(['test', dir]);
  t.is(r.code, 1);
  t.regex(r.stdout, /no test files under .*: write a <name>\.test\.yaml with `topology: \.\/topology\.yaml` and `tests:` cases, or add `tests:` to the topology \(docs\/testing\.md\)/);
  t.regex(r.stdout, /0 files: 0 passed, 0 failed/);
});

test('--watch runs the cases again when the test file changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-watch-'));
  const file = join(dir, 'users.test.yaml');
  const passing = readFileSync(join(FIXTURES, 'yaml-tests/wrong-expectation.yaml'), 'utf8')
    .replace('topology: ../../../topology.yaml', `topology: ${join(ROOT, 'topology.yaml')}`)
    .replace('code: USER_GONE', 'code: USER_EXISTS');
  writeFileSync(file, passing);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'test', '--watch', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    child.kill('SIGINT');
    rmSync(dir, { recursive: true, force: true });
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  // waits are guards against a hang, not timing assertions
  const waitFor = async (re: RegExp) => {
    for (const deadline = Date.now() + 60_000; !re.test(out); ) {
      if (Date.now() > deadline) throw new Error(`no ${re} in:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitFor(/1 file: 2 passed, 0 failed[^]*watching/);
  writeFileSync(file, passing.replace('code: USER_EXISTS', 'code: USER_GONE'));
  await waitFor(/users\.test\.yaml changed: running again[^]*1 file: 1 passed, 1 failed/);
  t.regex(out, /then\.replies\.c2: the reply to c2 differs/);
});
