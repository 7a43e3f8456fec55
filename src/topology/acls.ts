/**
 * The ACLs one instance of a topology needs on a cluster with an authorizer (`foldstream describe --acls`,
 * docs/security.md), derived from the same names the running app uses (names.ts), so the list and the app never
 * disagree. Each entry is one Kafka ACL: resource type, literal name, operation. Kafka lets READ, WRITE, CREATE and
 * DESCRIBE_CONFIGS imply DESCRIBE, so DESCRIBE is never listed on its own.
 *
 * What each is for (the start, the tasks, the command gateway):
 *   topic READ              an input, a changelog (restores) or a repartition topic a stage reads, a replies topic the gateway waits on
 *   topic WRITE             an output, a changelog, a dead-letter or repartition topic, a command topic of the gateway
 *   topic DESCRIBE_CONFIGS  a topic with declared configs: the start checks them (a changelog must be compacted)
 *   topic CREATE            only when foldstream creates missing topics (omit with `run --no-create-topics`)
 *   group READ              the consumer group of each processor stage (join, offsets, which instance owns a partition)
 *   transactionalId WRITE   under exactly_once, prefixed `<app>-<stage>-`: one per processor runner and instance,
 *                           `<app>-<stage>-<instanceId>` (instance ids are made at the first start, so only a prefix
 *                           can name them); a new owner of a task also fences a dead instance's id under that prefix
 */
import { outputsOf } from './describe.ts';
import { groupId, inputsOf, internalTopics, runnerTransactionalId, stagesOf } from './names.ts';
import type { Topology } from './schema.ts';

export type AclResource = 'topic' | 'group' | 'transactionalId' | 'cluster';
export type AclOperation = 'READ' | 'WRITE' | 'CREATE' | 'DESCRIBE' | 'DESCRIBE_CONFIGS';

export interface RequiredAcl {
  resource: AclResource;
  /** resource name (`kafka-cluster` for the cluster): literal, or a prefix with `prefixed` */
  name: string;
  /** the ACL's resource pattern type is PREFIXED: it covers every name that starts with `name` */
  prefixed?: boolean;
  operation: AclOperation;
  /** why foldstream needs it */
  reason: string;
  /** only needed when foldstream creates missing topics */
  createOnly?: boolean;
}

/** Every ACL an instance needs, topics first, in a stable order without duplicates. */
export function requiredAcls(t: Topology, opts: { createTopics?: boolean } = {}): RequiredAcl[] {
  const out: RequiredAcl[] = [];
  const seen = new Set<string>();
  const add = (a: RequiredAcl) => {
    const key = `${a.resource}\u0000${a.name}\u0000${a.operation}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(a);
  };
  const topicName = (alias: string) => t.topics[alias]?.name ?? alias;
  const internal = internalTopics(t);
  const internalByProcessor = (p: string) => internal.filter((i) => i.processor === p);

  for (const p of t.processors) {
    for (const alias of inputsOf(p)) add({ resource: 'topic', name: topicName(alias), operation: 'READ', reason: `input of ${p.name}` });
    for (const alias of outputsOf(p)) add({ resource: 'topic', name: topicName(alias), operation: 'WRITE', reason: `output of ${p.name}` });
    for (const i of internalByProcessor(p.name)) {
      const stage = i.stage ? `${p.name}-${i.stage}` : p.name;
      if (i.purpose === 'changelog') {
        add({ resource: 'topic', name: i.name, operation: 'READ', reason: `changelog of ${stage}, store ${i.store}: restores` });
        add({ resource: 'topic', name: i.name, operation: 'WRITE', reason: `changelog of ${stage}, store ${i.store}` });
      } else if (i.purpose === 'dlq') {
        add({ resource: 'topic', name: i.name, operation: 'WRITE', reason: `dead letters of ${stage}` });
      } else if (i.purpose === 'replay') {
        add({ resource: 'topic', name: i.name, operation: 'READ', reason: `replay topic of ${p.name}: views rebuilt by foldstream replay` });
        add({ resource: 'topic', name: i.name, operation: 'WRITE', reason: `replay topic of ${p.name}: the outcome of each rebuild` });
      } else {
        add({ resource: 'topic', name: i.name, operation: 'WRITE', reason: `repartition topic of ${p.name}` });
        add({ resource: 'topic', name: i.name, operation: 'READ', reason: `repartition topic of ${p.name}` });
      }
    }
    if (t.http.enabled && p.type === 'aggregate') {
      for (const alias of inputsOf(p)) add({ resource: 'topic', name: topicName(alias), operation: 'WRITE', reason: `command gateway: commands for ${p.name}` });
      if (p.output.replies) add({ resource: 'topic', name: topicName(p.output.replies), operation: 'READ', reason: `command gateway: replies of ${p.name}` });
    }
  }
  // configs the start checks: declared configs, compacted views, and every internal topic's
  for (const name of topicsWithConfigs(t)) add({ resource: 'topic', name, operation: 'DESCRIBE_CONFIGS', reason: 'the start checks its configs' });
  if (opts.createTopics ?? true) {
    for (const d of Object.values(t.topics)) add({ resource: 'topic', name: d.name, operation: 'CREATE', reason: 'created when missing', createOnly: true });
    for (const i of internal) add({ resource: 'topic', name: i.name, operation: 'CREATE', reason: 'created when missing', createOnly: true });
  }
  for (const p of t.processors) {
    for (const stage of stagesOf(p)) add({ resource: 'group', name: groupId(t.app, stage.name), operation: 'READ', reason: `consumer group of ${stage.name}` });
  }
  if (t.processing.guarantee === 'exactly_once') {
    for (const p of t.processors) {
      for (const stage of stagesOf(p)) {
        add({ resource: 'transactionalId', name: runnerTransactionalId(t.app, stage.name, ''), prefixed: true, operation: 'WRITE', reason: `processor runner of ${stage.name}, one per instance (<prefix><instanceId>)` });
      }
    }
  }
  return out;
}

/** Topics whose configs the start reads back (kafka/admin.ts checkTopics: those with a planned config). */
function topicsWithConfigs(t: Topology): string[] {
  const views = new Set(t.processors.flatMap((p) => (p.type === 'projection' ? [p.output] : [])));
  const declared = Object.entries(t.topics).filter(([alias, d]) => views.has(alias) || Object.keys(d.config).length > 0).map(([, d]) => d.name);
  return [...declared, ...internalTopics(t).filter((i) => Object.keys(i.config).length > 0).map((i) => i.name)];
}

/** The ACLs as text: a table, then the kafka-acls.sh commands that grant them to `principal`. */
export function formatAcls(t: Topology, acls: RequiredAcl[], principal = 'User:<principal>'): string {
  const rows = acls.map((a) => [a.resource, a.prefixed ? `${a.name}* (prefixed)` : a.name, a.operation, a.reason + (a.createOnly ? ' (not needed with run --no-create-topics)' : '')]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0));
  const lines = [
    `ACLs app ${t.app} needs (principal ${principal}; allow; literal unless marked prefixed):`,
    ...rows.map((r) => '  ' + r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ')),
    '',
    'Grant them with kafka-acls.sh (add --command-config for your admin client):',
    ...acls.map((a) => `  kafka-acls.sh --bootstrap-server <brokers> --add --allow-principal ${principal} --operation ${aclCliOperation(a.operation)} ${aclCliResource(a)}`),
    '',
  ];
  return lines.join('\n');
}

const aclCliOperation = (o: AclOperation) => ({ READ: 'Read', WRITE: 'Write', CREATE: 'Create', DESCRIBE: 'Describe', DESCRIBE_CONFIGS: 'DescribeConfigs' })[o];

function aclCliResource(a: RequiredAcl): string {
  switch (a.resource) {
    case 'topic':
      return `--topic ${a.name}`;
    case 'group':
      return `--group ${a.name}`;
    case 'transactionalId':
      return `--transactional-id ${a.name}${a.prefixed ? ' --resource-pattern-type prefixed' : ''}`;
    case 'cluster':
      return '--cluster';
  }
}
