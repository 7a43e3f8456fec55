// `foldstream topics --create / --check` and the admin functions behind them, against the real broker.
import test from 'ava';
import kafkajs, { type Admin } from 'kafkajs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoldstreamError } from '../../src/errors.ts';
import { checkTopics, createTopics } from '../../src/kafka/admin.ts';
import { planTopics, type PlannedTopic } from '../../src/topology/topic-plan.ts';
import { createKafka } from '../../src/kafka/client.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { runCli } from '../helpers/cli.ts';
import { unique, withAdmin } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/processes.ts';

const { ConfigResourceTypes } = kafkajs;
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

function topologyYaml(app: string, viewPartitions: number): string {
  return `app: ${app}
kafka: { brokers: "${BROKERS}" }
topics:
  events: { name: ${app}-events, partitions: 3, config: { retention.ms: "-1" } }
  view:
    name: ${app}-view
    partitions: ${viewPartitions}
    config: { cleanup.policy: compact, retention.ms: 86400000, min.cleanable.dirty.ratio: 0.2 }
processors:
  - name: by-email
    type: projection
    input: events
    output: view
    groupBy: data.email
    on:
      UserCreated: { set: { email: data.email } }
`;
}

/** Deletes every topic of the app (declared topics and internal ones all start with `<app>-`). */
async function deleteAppTopics(app: string): Promise<void> {
  await withAdmin(async (a) => {
    const mine = (await a.listTopics()).filter((n) => n.startsWith(`${app}-`));
    if (mine.length) await a.deleteTopics({ topics: mine });
  });
}

async function brokerState(admin: Admin, names: string[]) {
  const { topics } = await admin.fetchTopicMetadata({ topics: names });
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  return new Map(
    names.map((name) => {
      const configs = resources.find((r) => r.resourceName === name)?.configEntries ?? [];
      return [
        name,
        {
          partitions: topics.find((x) => x.name === name)?.partitions.length,
          config: (key: string) => configs.find((c) => c.configName === key)?.configValue,
        },
      ];
    }),
  );
}

test('topics --create makes every declared and internal topic with its partitions and configs; --check then finds no drift until the YAML changes', async (t) => {
  const app = unique('topics-cmd');
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-topics-'));
  t.teardown(async () => {
    rmSync(dir, { recursive: true, force: true });
    await deleteAppTopics(app);
  });
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, topologyYaml(app, 2));

  const before = await runCli(['topics', file, '--check']);
  t.is(before.code, 1, 'nothing exists yet');
  // 2 declared; changelog, DLQ, replay and repartition of by-email; changelog and DLQ of its group stage by-email-group
  t.is(before.stdout.match(/^drift: .* does not exist/gm)?.length, 8);

  const created = await runCli(['topics', file, '--create']);
  t.is(created.code, 0, created.stdout + created.stderr);
  t.regex(created.stdout, /created 8, 0 existed already/);
  t.regex(created.stdout, /all 8 topics match the topology/);

  const checked = await runCli(['topics', file, '--check']);
  t.is(checked.code, 0, checked.stdout + checked.stderr);
  t.notRegex(checked.stdout, /drift:/);

  const again = await runCli(['topics', file, '--create']);
  t.is(again.code, 0, again.stdout + again.stderr);
  t.regex(again.stdout, /created 0, 8 existed already/);

  const state = await withAdmin((a) =>
    brokerState(a, [`${app}-events`, `${app}-view`, `${app}-by-email-view-changelog`, `${app}-by-email-dlq`, `${app}-by-email-repartition`, `${app}-by-email-group-groups-changelog`]),
  );
  const events = state.get(`${app}-events`)!;
  t.is(events.partitions, 3);
  t.is(events.config('retention.ms'), '-1');
  const view = state.get(`${app}-view`)!;
  t.is(view.partitions, 2);
  t.is(view.config('cleanup.policy'), 'compact');
  t.is(view.config('retention.ms'), '86400000');
  t.is(view.config('min.cleanable.dirty.ratio'), '0.2');
  const changelog = state.get(`${app}-by-email-view-changelog`)!;
  t.is(changelog.partitions, 3, 'a changelog has as many partitions as its processor input');
  t.is(changelog.config('cleanup.policy'), 'compact');
  t.is(state.get(`${app}-by-email-dlq`)?.config('retention.ms'), '-1');
  t.is(state.get(`${app}-by-email-repartition`)?.partitions, 3);
  t.is(state.get(`${app}-by-email-group-groups-changelog`)?.config('cleanup.policy'), 'compact');

  writeFileSync(file, topologyYaml(app, 4));
  const drifted = await runCli(['topics', file, '--check']);
  t.is(drifted.code, 1);
  t.deepEqual(
    drifted.stdout.split('\n').filter((l) => l.startsWith('drift: ')),
    [
      `drift: topic "${app}-view" (topics.view) has 2 partitions, declared 4; adding partitions moves keys to other partitions and breaks ` +
        `state and co-partitioning, so prefer a new topic (or declare 2); to add them anyway: kafka-topics.sh --alter --topic ${app}-view --partitions 4`,
    ],
  );
  t.regex(drifted.stdout, /1 of 8 topics differ from the topology/);
});

test('checkTopics reports a changed config, a different replication factor and a missing topic, and createTopics is idempotent', async (t) => {
  const app = unique('topics-api');
  t.teardown(() => deleteAppTopics(app));
  const { topology } = parseTopology(topologyYaml(app, 3), join(tmpdir(), 'topology.yaml'), { checkModules: false });
  const kafka = createKafka(topology);
  const plan = planTopics(topology);

  t.deepEqual((await createTopics(kafka, plan)).created, plan.map((p) => p.name));
  t.deepEqual(await createTopics(kafka, plan), { created: [], existing: plan.map((p) => p.name) });

  await withAdmin((a) =>
    a.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: `${app}-events`, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    }),
  );
  const extra: PlannedTopic = { ...plan[0]!, name: `${app}-never-created`, about: 'topics.extra' };
  const edited = plan.map((p) => (p.name === `${app}-view` ? { ...p, replicationFactor: 2 } : p));
  // the controller applies a config change and the broker learns of it a moment later
  let report = await checkTopics(kafka, [...edited, extra]);
  await waitFor(async () => (report = await checkTopics(kafka, [...edited, extra])).drifts.some((d) => d.kind === 'config'), 5_000, 'the changed config', 100).catch(() => undefined);
  t.deepEqual(report.drifts, [
    { kind: 'config', topic: `${app}-events`, about: 'topics.events', config: 'retention.ms', expected: '-1', actual: '3600000' },
    { kind: 'replication-factor', topic: `${app}-view`, about: 'topics.view', role: 'views', expected: 2, actual: 1 },
    { kind: 'missing', topic: `${app}-never-created`, about: 'topics.extra' },
  ]);
});

test('createTopics names the topic and what to change when the broker rejects a declaration', async (t) => {
  const app = unique('topics-bad');
  t.teardown(() => deleteAppTopics(app));
  const yaml = `app: ${app}
kafka: { brokers: "${BROKERS}" }
topics:
  wide: { name: ${app}-wide, partitions: 1, replicationFactor: 100 }
  typo: { name: ${app}-typo, partitions: 1, config: { retention.ms: "-1", cleanup.polcy: compact } }
processors:
  - { name: p, type: projection, input: typo, output: typo, on: { X: { delete: true } } }
`;
  const { topology } = parseTopology(yaml, join(tmpdir(), 'topology.yaml'), { checkModules: false });
  const plan = planTopics(topology).filter((p) => p.purpose === 'declared');
  const e = await t.throwsAsync(createTopics(createKafka(topology), plan), { instanceOf: FoldstreamError });
  t.is(e?.code, 'TOPIC_MISMATCH');
  t.regex(e?.message ?? '', new RegExp(`topic "${app}-wide" \\(topics\\.wide\\): replication factor 100 is invalid on a cluster of \\d+ broker`));
  t.regex(e?.message ?? '', new RegExp(`topic "${app}-typo" \\(topics\\.typo\\): the broker rejects cleanup\\.polcy: "compact";`));
  t.notRegex(e?.message ?? '', /retention\.ms/, 'only the config the broker rejects is named');
});
