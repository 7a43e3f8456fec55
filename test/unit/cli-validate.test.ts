// `foldstream validate` checks a file without touching Kafka: exit 0 or 1, every problem at file:line:col.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { brokerTraps, copyFixture, runCli } from '../helpers/cli.ts';

const KAFKA_TEXT = /ECONNREFUSED|KafkaJS|Connection error|KAFKA_UNAVAILABLE/i;

test('a valid topology exits 0 and reports what it holds, without connecting to Kafka', async (t) => {
  const traps = await brokerTraps();
  const file = copyFixture('valid.yaml', traps.brokers);
  t.teardown(() => rmSync(dirname(file), { recursive: true, force: true }));
  t.teardown(traps.close);
  const r = await runCli(['validate', file]);
  t.is(r.signal, null, 'validate finished on its own');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /valid \(app demo, 1 processor, 2 topics; 1 module loaded, exports checked\)/);
  t.is(r.stderr, '');
  t.is(traps.connections(), 0);
});

test('a broken topology exits 1 listing file:line:col for every problem, before anything connects to Kafka', async (t) => {
  const traps = await brokerTraps();
  const file = copyFixture('mistakes.yaml', traps.brokers);
  t.teardown(() => rmSync(dirname(file), { recursive: true, force: true }));
  t.teardown(traps.close);
  const r = await runCli(['validate', file]);
  t.is(r.signal, null, 'validate finished on its own');
  t.is(r.code, 1);
  const located = r.stderr.split('\n').filter((line) => line.startsWith(`${file}:`));
  t.deepEqual(
    located.map((line) => line.slice(file.length + 1).split(' ')[0]),
    ['4:3', '6:14', '16:12', '18:14', '20:11', '22:12', '23:13', '24:15'],
  );
  t.regex(r.stderr, /8 problems; nothing was sent to Kafka\./);
  t.notRegex(r.stdout + r.stderr, KAFKA_TEXT);
  t.is(traps.connections(), 0);
});

test('a file that does not exist exits 1 with a message that says so', async (t) => {
  const r = await runCli(['validate', join(tmpdir(), 'no-such-topology.yaml')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /no-such-topology\.yaml:1:1 file not found; pass the path of your topology\.yaml/);
});

test('validate loads the modules and reports a missing export or a module that does not load at its module: line, or says it did not load them', async (t) => {
  const traps = await brokerTraps();
  t.teardown(traps.close);
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-modules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'modules'));
  // a decider without decide, and a projection module that throws when it loads
  writeFileSync(join(dir, 'modules', 'no-decide.ts'), 'export const initialState = {};\nexport function evolve(s: unknown) { return s; }\n');
  writeFileSync(join(dir, 'modules', 'broken.ts'), "throw new Error('broken at load');\n");
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    `app: a
kafka: { brokers: "${traps.brokers}" }
topics:
  commands: { name: a-commands, partitions: 1 }
  events: { name: a-events, partitions: 1 }
  view: { name: a-view, partitions: 1 }
processors:
  - { name: users, type: aggregate, aggregateType: User, input: commands, output: { events: events }, module: ./modules/no-decide.ts }
  - { name: v, type: projection, input: events, output: view, module: ./modules/broken.ts }
`,
  );
  const [loaded, notLoaded] = await Promise.all([runCli(['validate', file]), runCli(['validate', '--no-load-modules', file])]);
  t.is(loaded.code, 1, loaded.stdout + loaded.stderr);
  t.true(
    loaded.stderr.includes(`${file}:8:111 (processors[0].module) module "./modules/no-decide.ts" of aggregate "users" has no export decide; export function decide(command, state) from the module`),
    loaded.stderr,
  );
  t.true(loaded.stderr.includes(`${file}:9:71 (processors[1].module) projection "v": module "./modules/broken.ts" failed to load: broken at load`), loaded.stderr);
  t.regex(loaded.stderr, /2 problems; nothing was sent to Kafka\./);
  t.is(notLoaded.code, 0, notLoaded.stderr);
  t.regex(notLoaded.stdout, /valid \(app a, 2 processors, 3 topics; 2 modules not loaded \(--no-load-modules\): their exports are not checked\)/);
  t.is(traps.connections(), 0);
});
