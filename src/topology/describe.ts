/**
 * `foldstream describe`: the topology as a newcomer (or an operator reading ACLs and dashboards) needs to see it, with
 * every name foldstream derives (consumer groups, transactional ids, changelog, dead-letter and repartition topics)
 * taken from names.ts, so this text and the running app never disagree.
 */
import { changelogTopic, dlqTopic, groupId, inputsOf, replays, replayTopic, repartitionTopic, responseTopic, runnerTransactionalId, stageName, stagePartitions, stagesOf, storesOf, SUBSCRIPTIONS_STAGE } from './names.ts';
import type { ProcessorDecl, Topology } from './schema.ts';
import { planTopics } from './topic-plan.ts';
import { topicRoles } from './topic-roles.ts';
import { assertNever } from './assert-never.ts';

/** Topic aliases a processor writes to: its declared outputs and the targets of its route steps, in file order. */
export function outputsOf(p: ProcessorDecl): string[] {
  const out: string[] = [];
  const add = (alias: string | undefined) => {
    if (alias !== undefined && !out.includes(alias)) out.push(alias);
  };
  for (const step of p.steps) {
    if ('route' in step) {
      Object.values(step.route.to).forEach(add);
      add(step.route.default);
    }
  }
  switch (p.type) {
    case 'custom':
      p.outputs.forEach(add);
      break;
    case 'aggregate':
      add(p.output.events);
      add(p.output.replies);
      break;
    case 'projection':
      add(p.output);
      break;
    case 'saga':
      (Array.isArray(p.output.commands) ? p.output.commands : [p.output.commands]).forEach(add);
      add(p.output.log);
      break;
    case 'window':
    case 'join':
      add(p.output);
      break;
    default:
      assertNever(p, 'processor type');
  }
  return out;
}

function topicText(t: Topology, alias: string): string {
  const d = t.topics[alias];
  return d ? `${alias} → ${d.name} (${d.partitions} partition${d.partitions === 1 ? '' : 's'})` : `${alias} (not declared)`;
}

function configText(config: Record<string, string | number | boolean>): string {
  const entries = Object.entries(config);
  return entries.length ? entries.map(([k, v]) => `${k}=${String(v)}`).join(', ') : '-';
}

function table(rows: string[][], indent: string): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => indent + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

function stepText(step: ProcessorDecl['steps'][number]): string {
  if ('filter' in step) return `filter ${step.filter}`;
  if ('map' in step) return `map ${Object.keys(step.map).join(', ')}`;
  const to = Object.entries(step.route.to).map(([k, alias]) => `${k} → ${alias}`);
  if (step.route.default) to.push(`otherwise → ${step.route.default}`);
  return `route by ${step.route.by}: ${to.join(', ')}${step.route.continue ? ' (and continue)' : ''}`;
}

function transactionalText(t: Topology, _p: ProcessorDecl, name = _p.name): string {
  if (t.processing.guarantee !== 'exactly_once') return `none (${t.processing.guarantee})`;
  // exactly-once v2: one transactional producer per processor runner, i.e. per processor and instance
  return `${runnerTransactionalId(t.app, name, '<instanceId>')} (one per instance)`;
}

const groupByKey = (g: NonNullable<Extract<ProcessorDecl, { type: 'projection' }>['groupBy']>) => (typeof g === 'string' ? g : g.key);

/** What a processor's first stage re-keys by, when it has a second stage reading a repartition topic. */
function repartitionKey(p: ProcessorDecl): string | undefined {
  if (p.type === 'projection' && p.groupBy) return groupByKey(p.groupBy);
  if (p.type === 'saga') return p.correlate;
  if (p.type === 'window') return p.key;
  if (p.type === 'join') return p.kind === 'foreign-key' ? p.foreignKey : p.key;
  return undefined;
}

/**
 * The second stage of a groupBy projection or a correlated saga: a runtime processor of its own, reading the
 * repartition topic; it writes the processor's outputs.
 */
function secondStageLines(t: Topology, p: ProcessorDecl): string[] {
  const stage = stagesOf(p)[1];
  const by = repartitionKey(p);
  if (!stage || by === undefined) return [];
  const rows: string[][] = [];
  const partitions = stagePartitions(t, p, stage);
  rows.push(['inputs', `${repartitionTopic(t.app, p.name)} (${partitions} partition${partitions === 1 ? '' : 's'})`]);
  if (p.type === 'join') rows.push(['', topicText(t, p.right)]);
  if (p.type === 'join' && p.kind === 'foreign-key') rows.push(['outputs', `${responseTopic(t.app, p.name)} (${t.topics[inputsOf(p)[0]!]?.partitions ?? 1} partitions)`]);
  else outputsOf(p).forEach((alias, i) => rows.push([i === 0 ? 'outputs' : '', topicText(t, alias)]));
  storesOf(t, p, stage).forEach((s, i) => rows.push([i === 0 ? 'stores' : '', `${s.name} → changelog ${changelogTopic(t.app, stage.name, s.name)}`]));
  rows.push(['dead-letter', dlqTopic(t.app, stage.name)]);
  rows.push(['consumer group', groupId(t.app, stage.name)]);
  rows.push(['transactional id', transactionalText(t, p, stage.name)]);
  return ['', `processor ${stage.name} (${stage.stage} stage of ${p.name}, by ${by})`, ...table(rows, '  ')];
}

/** Plain text, one block for the app and its topics and one per processor. */
export function describeTopology(t: Topology): string {
  const lines: string[] = [];
  const brokers = Array.isArray(t.kafka.brokers) ? t.kafka.brokers.join(',') : t.kafka.brokers;
  lines.push(`app ${t.app}`);
  lines.push(
    ...table(
      [
        ['brokers', brokers],
        ['guarantee', `${t.processing.guarantee}, commit every ${t.processing.commitIntervalMs} ms`],
        ['state', t.processing.stateDir],
        ['http', t.http.enabled ? `${t.http.host}:${t.http.port}` : 'disabled'],
      ],
      '  ',
    ),
  );
  lines.push('', 'topics');
  // the configs a topic is created with: its declaration over what its role calls for (a view topic compacted)
  const planned = new Map(planTopics(t).map((p) => [p.name, p]));
  const roles = topicRoles(t);
  lines.push(
    ...table(
      Object.entries(t.topics).map(([alias, d]) => {
        const role = roles.get(alias);
        return [
          alias,
          d.name,
          `${d.partitions} partition${d.partitions === 1 ? '' : 's'}`,
          `rf ${d.replicationFactor}`,
          d.codec,
          role ? `${role.role} (${role.processor.name})` : '-',
          configText(planned.get(d.name)?.config ?? d.config),
        ];
      }),
      '  ',
    ),
  );
  if (t.upcasters.length) {
    lines.push('', 'upcasters');
    lines.push(...table(t.upcasters.map((u) => [u.eventType, `v${u.fromVersion} → v${u.toVersion}`, u.module ?? 'rules']), '  '));
  }

  for (const p of t.processors) {
    const rows: string[][] = [];
    if (p.type === 'aggregate') rows.push(['aggregate type', p.aggregateType]);
    if ('module' in p && p.module) rows.push(['module', p.module]);
    // a join with a second stage reads its right side there
    const inputs = p.type === 'join' && stagesOf(p).length > 1 ? inputsOf(p).slice(0, -1) : inputsOf(p);
    inputs.forEach((alias, i) => rows.push([i === 0 ? 'inputs' : '', topicText(t, alias)]));
    if (p.type === 'join' && p.kind === 'foreign-key') rows.push(['', `${responseTopic(t.app, p.name)} (responses of ${stageName(p.name, SUBSCRIPTIONS_STAGE)})`]);
    const outputs = p.type === 'join' && p.kind === 'stream-table' && p.key !== undefined ? [] : outputsOf(p);
    if (outputs.length === 0) rows.push(['outputs', '-']);
    outputs.forEach((alias, i) => rows.push([i === 0 ? 'outputs' : '', topicText(t, alias)]));
    const stores = storesOf(t, p);
    if (stores.length === 0) rows.push(['stores', '-']);
    stores.forEach((s, i) =>
      rows.push([i === 0 ? 'stores' : '', `${s.name} → ${s.changelog ? `changelog ${changelogTopic(t.app, p.name, s.name)}` : 'no changelog (local cache)'}`]),
    );
    const by = repartitionKey(p);
    if (by !== undefined) rows.push(['repartition', `${repartitionTopic(t.app, p.name)} (by ${by})`]);
    if (replays(p)) rows.push(['replay', `${replayTopic(t.app, p.name)} (foldstream replay)`]);
    rows.push(['dead-letter', dlqTopic(t.app, p.name)]);
    rows.push(['consumer group', groupId(t.app, p.name)]);
    rows.push(['transactional id', transactionalText(t, p)]);
    p.steps.forEach((s, i) => rows.push([i === 0 ? 'steps' : '', stepText(s)]));
    rows.push(['on error', `${p.onError.policy} after ${(p.onError.retry ?? t.processing.retry).attempts} retries`]);
    lines.push('', `processor ${p.name} (${p.type})`, ...table(rows, '  '));
    lines.push(...secondStageLines(t, p));
  }
  return lines.join('\n') + '\n';
}
