/**
 * `foldstream rebuild <file> <aggregate>`: an aggregate's stores folded again from its events topic through the
 * current evolve and upcasters (processors/aggregate/rebuild.ts), with every instance of the app stopped. It reads
 * the events topic and the aggregate's changelogs (read_committed), plans the new contents of every task's stores,
 * and appends the difference to the changelogs in one transaction per task under the task's own transactional id:
 * new states, deletes of what the events no longer give, and the commandIds whose reply the store had lost. No
 * command is run, no event, reply or offset is written, the consumer group is kept: the next run restores the stores
 * from the changelogs (a machine's local store continues from its checkpoint and so reads the new values too) and
 * continues from the same input position, so each command is handled exactly once across the rebuild.
 *
 * Why stopped, not side by side: the stores must equal the events at one input position. A running task appends
 * events and moves its position while the rebuild reads; a second generation of stores would need the runtime to
 * switch generations at a transaction boundary. So the rebuild refuses while the aggregate's consumer group has
 * members, as reset does, and its transactions fence an instance that is still running the task anyway.
 */
import { buildProcessorSpecs } from '../processors/build.ts';
import { planRebuild, emptyTaskStores, type ReadEvent, type RebuildPlan, type TaskStores } from '../processors/aggregate/rebuild.ts';
import type { Logger } from '../processors/types.ts';
import { ChangelogReader } from '../kafka/changelog-reader.ts';
import { FencingChangelogWriter } from '../kafka/changelog-writer.ts';
import { KafkaJsGroupOffsets } from '../kafka/group-offsets.ts';
import { createKafka } from '../kafka/client.ts';
import { createOffsetsAdmin } from '../kafka/offsets-admin.ts';
import { describeGroups, existingTopics, type GroupState } from '../kafka/reset-admin.ts';
import { FoldstreamError } from '../errors.ts';
import type { OutgoingRecord } from '../kafka/types.ts';
import { decode } from '../serde/codecs.ts';
import { eventProblem, type EventEnvelope } from '../serde/envelope.ts';
import { dataRecord, decodeChangelogRecord, laterPosition } from '../state/changelog.ts';
import { decodeValue, encodeValue } from '../state/value-codec.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { changelogTopic, groupId, inputsOf, transactionalId } from '../topology/names.ts';
import type { AggregateProcessorDecl } from '../topology/schema.ts';
import { offsetProgress, type Progress, type ProgressFactory } from './progress.ts';

export interface RebuildOptions {
  /** write the rebuilt stores; false: read, fold and report only */
  write: boolean;
  log: Logger;
  /** one progress display per phase */
  progress?: ProgressFactory;
  now?: number;
}

export type RebuildOutcome =
  | { kind: 'busy'; groups: GroupState[] }
  | { kind: 'planned' | 'done'; plan: RebuildPlan; eventRecords: number; skipped: number; tasksWritten: number; recordsWritten: number };

const noProgress: Progress = { tick: () => undefined, update: () => undefined, stop: () => undefined };

export async function rebuildAggregate(loaded: LoadedTopology, p: AggregateProcessorDecl, o: RebuildOptions): Promise<RebuildOutcome> {
  const t = loaded.topology;
  const progress = o.progress ?? (() => noProgress);
  const kafka = createKafka(t, { baseDir: loaded.baseDir, clientIdSuffix: '-rebuild' });
  const group = groupId(t.app, p.name);
  const busy = (await describeGroups(kafka, [group])).filter((g) => g.state !== 'Empty' && g.state !== 'Dead');
  if (busy.length) return { kind: 'busy', groups: busy };

  // the aggregate as the runtime builds it: its decider's initialState and evolve, and the topology's upcasters
  const aggregate = (await buildProcessorSpecs(loaded)).find((s) => s.name === p.name)!.aggregate!;
  const inputs = inputsOf(p).map((alias) => t.topics[alias]!.name);
  const tasks = t.topics[inputsOf(p)[0]!]!.partitions;
  const events = t.topics[p.output.events]!;
  const reader = new ChangelogReader(kafka, o.log);
  const admin = createOffsetsAdmin(kafka);
  const writers = new Map<number, FencingChangelogWriter>();
  try {
    // the aggregate has run here: its changelogs exist
    const storeNames = ['state', 'commands', ...(p.commandRetentionMs > 0 ? ['command-expiry'] : []), ...(p.history ? ['history'] : [])] as const;
    const needed = [events.name, ...storeNames.map((store) => changelogTopic(t.app, p.name, store))];
    const present = new Set(await existingTopics(kafka, needed));
    const missing = needed.filter((x) => !present.has(x));
    if (missing.length) {
      throw new FoldstreamError('REBUILD_UNSAFE', `topics of aggregate ${p.name} do not exist: ${missing.join(', ')}`, {
        hint: 'the aggregate has not run on this cluster with this topology (its changelogs are created at its first start, or by `foldstream topics --create`): there is nothing to rebuild, or the topology names another app. Nothing was changed',
      });
    }
    // 0. before anything is read, every task is fenced under its transactional id: a transaction the app left open is
    // completed or aborted now, so the changelogs and the events read next are final (not in a dry run: it fences nothing)
    if (o.write) {
      const fencing = progress('fence tasks', tasks, 'tasks');
      for (let partition = 0; partition < tasks; partition++) {
        writers.set(partition, await FencingChangelogWriter.open(kafka, transactionalId(t.app, p.name, partition)));
        fencing.tick(1);
      }
      fencing.stop();
      // Under exactly-once v2 the app's transactions belong to its processor runners (<app>-<aggregate>-<instanceId>),
      // named in the metadata of every offset they commit: fence those writers too, then wait until no transaction
      // holds newer offsets of the inputs (OffsetFetch require_stable), so what is read next is final.
      const groupOffsets = new KafkaJsGroupOffsets(kafka);
      try {
        const own = new Set([...Array(tasks).keys()].map((n) => transactionalId(t.app, p.name, n)));
        const writers = new Set<string>();
        for (let partition = 0; partition < tasks; partition++) {
          const last = await groupOffsets.stableOffsets(group, inputs, partition, false);
          for (const c of Object.values(last.offsets)) if (c.metadata && !own.has(c.metadata)) writers.add(c.metadata);
        }
        for (const writer of writers) await groupOffsets.abortTransactionOf(writer, t.processing.transactionTimeoutMs);
        for (let partition = 0; partition < tasks; partition++) {
          while ((await groupOffsets.stableOffsets(group, inputs, partition, true)).unstable) await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await groupOffsets.close();
      }
    }
    // 1. what the stores hold now, and each task's input position (markers, then the group's offsets, as a task does)
    const stores = new Map<number, TaskStores>();
    for (const store of storeNames) {
      const topic = changelogTopic(t.app, p.name, store);
      const starts = await admin.startOffsets(topic);
      const ends = await admin.endOffsets(topic);
      const bar = offsetProgress(progress, `read ${topic}`, starts, ends);
      for (let partition = 0; partition < tasks; partition++) {
        const s = stores.get(partition) ?? (stores.set(partition, emptyTaskStores()).get(partition) as TaskStores);
        const target = (store === 'state' ? s.state : store === 'commands' ? s.commands : store === 'command-expiry' ? s.expiry : s.history) as Map<string, unknown>;
        await bar.partition(partition, (from, tick) => reader.read(topic, partition, from, async (records) => {
          for (const r of records) {
            const d = decodeChangelogRecord(r.key, r.value);
            if (!d) continue;
            if (d.kind === 'position') s.position = laterPosition(s.position, d.position);
            else if (d.value === null) target.delete(d.key);
            else target.set(d.key, decodeValue(d.value));
          }
          tick(records);
        }));
      }
      bar.stop();
    }
    const committed = new Map<string, Map<number, bigint>>();
    for (const topic of inputs) committed.set(topic, await admin.committedOffsets(group, topic));
    for (const [partition, s] of stores) {
      const offsets: Record<string, string> = {};
      for (const topic of inputs) {
        const c = committed.get(topic)!.get(partition);
        if (c !== undefined) offsets[topic] = c.toString();
      }
      if (Object.keys(offsets).length) s.position = laterPosition(s.position, { offsets, streamTime: -1 });
    }

    // 2. the events, read_committed, every partition
    const read: ReadEvent[] = [];
    let eventRecords = 0;
    let skipped = 0;
    const starts = await admin.startOffsets(events.name);
    const ends = await admin.endOffsets(events.name);
    const bar = offsetProgress(progress, `read ${events.name}`, starts, ends);
    for (let partition = 0; partition < events.partitions; partition++) {
      await bar.partition(partition, (from, tick) => reader.read(events.name, partition, from, async (records) => {
        for (const r of records) {
          eventRecords++;
          if (r.key === null) continue;
          let value: unknown;
          try {
            value = decode(events.codec, r.value);
          } catch {
            skipped++;
            continue;
          }
          if (eventProblem(value)) {
            skipped++;
            continue;
          }
          read.push({ key: r.key.toString('utf8'), event: value as EventEnvelope, timestamp: r.timestamp });
        }
        tick(records);
      }));
    }
    bar.stop();

    // 3. the fold
    const foldBar = progress('fold', undefined, 'aggregates');
    const plan = await planRebuild({
      aggregateType: p.aggregateType,
      decider: aggregate,
      upcasters: aggregate.upcasters,
      tasks,
      stores,
      events: read,
      history: p.history,
      commandRetentionMs: p.commandRetentionMs,
      now: o.now ?? Date.now(),
      onFolded: (n) => foldBar.update(n),
    });
    foldBar.stop();
    if (!o.write) return { kind: 'planned', plan, eventRecords, skipped, tasksWritten: 0, recordsWritten: 0 };

    // 4. per task, its changelogs' new records in one transaction of the task's own transactional id
    const total = [...plan.writes.values()].reduce((n, w) => n + w.length, 0);
    const writeBar = progress('write changelogs', total);
    let written = 0;
    let tasksWritten = 0;
    for (const [partition, writes] of [...plan.writes].sort(([a], [b]) => a - b)) {
      if (!writes.length) continue;
      const records: OutgoingRecord[] = writes.map((w) => {
        const r = dataRecord(w.key, w.value === null ? null : encodeValue(w.value));
        return { topic: changelogTopic(t.app, p.name, w.store), partition, key: r.key, value: r.value };
      });
      await writers.get(partition)!.write(records, (n) => writeBar.update(written + n));
      written += records.length;
      tasksWritten++;
    }
    writeBar.stop();
    return { kind: 'done', plan, eventRecords, skipped, tasksWritten, recordsWritten: written };
  } finally {
    for (const w of writers.values()) await w.close();
    await reader.close();
    await admin.close();
  }
}


