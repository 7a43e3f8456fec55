// Guardrails of the event store on the real broker: a topology that would damage the events topic is refused before
// anything reaches the broker (topics --create, run), and an events topic whose broker config would lose events
// (the broker's 7-day default retention, compaction) fails `topics --check`, `topics --create` and the app's start,
// before anything is created.
import test from 'ava';
import kafkajs from 'kafkajs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { FoldstreamError } from '../../src/errors.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { runCli } from '../helpers/cli.ts';
import { BROKERS, createTopics, unique, withAdmin } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';

const { ConfigResourceTypes } = kafkajs;

const topology = (app: string, events: string, projectionOutput = 'view') => `app: ${app}
kafka: { brokers: "${BROKERS.join(',')}" }
http: { enabled: false }
topics:
  commands: { name: ${app}-commands, partitions: 1 }
  events: { name: ${app}-events, partitions: 1${events} }
  view: { name: ${app}-view, partitions: 1 }
processors:
  - name: users
    type: aggregate
    aggregateType: User
    input: commands
    output: { events: events }
    commands:
      CreateUser: { emit: [{ type: UserCreated, data: { email: command.data.email } }] }
    evolve:
      UserCreated: { email: event.data.email }
  - { name: by-id, type: projection, input: events, output: ${projectionOutput}, on: { UserCreated: { set: { email: data.email } } } }
`;

const appTopics = (app: string) => withAdmin(async (a) => (await a.listTopics()).filter((n) => n.startsWith(`${app}-`)).sort());

async function deleteAppTopics(app: string): Promise<void> {
  const mine = await appTopics(app);
  if (mine.length) await withAdmin((a) => a.deleteTopics({ topics: mine }));
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-guardrails-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a projection writing the events topic is refused at its file:line:col by topics --create and run, and nothing is created on the broker', async (t) => {
  const app = unique('guard-roles');
  t.teardown(() => deleteAppTopics(app));
  const file = join(tempDir(t), 'topology.yaml');
  writeFileSync(file, topology(app, '', 'events'));
  const [create, run] = await Promise.all([runCli(['topics', file, '--create']), runCli(['run', file])]);
  for (const r of [create, run]) {
    t.is(r.code, 1, r.stdout + r.stderr);
    t.true(
      r.stderr.includes(`${file}:18:61 (processors[1].output) projection "by-id" writes its views to topic "events", the events topic of aggregate "users"`),
      r.stderr,
    );
    t.regex(r.stderr, /declare a topic of its own for the views .*\n1 problem; nothing was sent to Kafka\./);
  }
  t.deepEqual(await appTopics(app), []);
});

test('an events topic left at the broker\'s 7-day default retention, or compacted, fails topics --check, topics --create and the start, creating nothing; acceptFiniteRetention accepts the retention', async (t) => {
  const app = unique('guard-retention');
  t.teardown(() => deleteAppTopics(app));
  const dir = tempDir(t);
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, topology(app, ''));
  // an events topic someone created by hand, with the broker's defaults
  await createTopics([{ topic: `${app}-events`, numPartitions: 1 }]);

  const check = await runCli(['topics', file, '--check']);
  t.is(check.code, 1);
  t.true(
    check.stdout.includes(
      `drift: topic "${app}-events" (topics.events) is an events topic and retention.ms is "604800000" on the broker (the broker default, 7 days): old events are deleted, ` +
        `and state-at, history and rebuilds would work on a truncated event store; keep every event with kafka-configs.sh --alter --entity-type topics --entity-name ${app}-events --add-config retention.ms=-1, ` +
        'or declare acceptFiniteRetention: true on the topic to accept losing them',
    ),
    check.stdout,
  );

  const create = await runCli(['topics', file, '--create']);
  t.is(create.code, 1, create.stdout + create.stderr);
  t.regex(create.stdout, /created nothing: 1 existing topics would damage data; fix them first/);
  t.deepEqual(await appTopics(app), [`${app}-events`], 'topics --create created nothing');

  const start = async () => {
    const running = new App(loadTopology(file), { log: memoryLogger(), stateDir: join(dir, 'state') });
    const e = await t.throwsAsync(running.start(), { instanceOf: FoldstreamError });
    t.is(e?.code, 'TOPIC_MISMATCH');
    return e?.message ?? '';
  };
  t.regex(await start(), /is an events topic and retention\.ms is "604800000" on the broker/);
  t.deepEqual(await appTopics(app), [`${app}-events`], 'the refused start created nothing');

  await withAdmin((a) =>
    a.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: `${app}-events`, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    }),
  );
  // the controller applies a config change and the broker learns of it a moment later
  const brokerPolicy = (policy: string) => async () =>
    withAdmin(async (a) => {
      const { resources } = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: `${app}-events`, configNames: ['cleanup.policy'] }] });
      return resources[0]?.configEntries.find((c) => c.configName === 'cleanup.policy')?.configValue === policy;
    });
  await waitFor(brokerPolicy('compact'), 30_000, 'the compacted policy', 200);
  writeFileSync(file, topology(app, ', acceptFiniteRetention: true'));
  t.regex(await start(), /is an events topic and is compacted on the broker \(cleanup\.policy "compact"\).*--add-config cleanup\.policy=delete/);
  t.deepEqual(await appTopics(app), [`${app}-events`]);

  await withAdmin((a) =>
    a.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: `${app}-events`, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }],
    }),
  );
  await waitFor(brokerPolicy('delete'), 30_000, 'the delete policy', 200);
  const created = await runCli(['topics', file, '--create']);
  t.is(created.code, 0, created.stdout + created.stderr);
  const accepted = await runCli(['topics', file, '--check']);
  t.is(accepted.code, 0, accepted.stdout);
  t.regex(accepted.stdout, /all \d+ topics match the topology/);
});
