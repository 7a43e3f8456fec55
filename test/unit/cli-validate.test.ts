// `foldstream validate` checks a file without touching Kafka: exit 0 or 1, every problem at file:line:col.
import test from 'ava';
import { rmSync } from 'node:fs';
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
  t.regex(r.stdout, /valid \(app demo, 1 processor, 2 topics\)/);
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
