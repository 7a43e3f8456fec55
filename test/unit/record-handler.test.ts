// The record handler's retries (DESIGN §8), which the runtime and the driver share: a throwing handler is retried
// with a pause that doubles from retry.initialBackoffMs up to retry.maxBackoffMs, in place (the partition's next
// record waits), and then handled by the error policy. The driver does not sleep, so the pauses are checked here.
import test from 'ava';
import { join } from 'node:path';
import { buildProcessorSpecs } from '../../src/processors/build.ts';
import { RecordHandler, TaskFailedError, type Outcome } from '../../src/runtime/record-handler.ts';
import { PunctuationSchedule } from '../../src/runtime/punctuation.ts';
import { TaskContext } from '../../src/runtime/task-context.ts';
import { TopicRegistry } from '../../src/runtime/topic-registry.ts';
import { BufferedStore } from '../../src/state/buffered-store.ts';
import { MemoryCommittedStore } from '../../src/state/committed-store.ts';
import { parseTopology } from '../../src/topology/load.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { memoryLogger } from '../helpers/log.ts';

const topology = (retry: string, policy = 'dlq') => `app: retries
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: retries-events, partitions: 1 }
  view: { name: retries-view, partitions: 1, config: { cleanup.policy: compact } }
processors:
  - name: names
    type: projection
    input: events
    output: view
    module: ./modules/flaky-projection.ts
    onError: { policy: ${policy}, retry: ${retry} }
`;

async function handler(retry: string, policy?: string) {
  const loaded = parseTopology(topology(retry, policy), join(FIXTURES, 'topology.yaml'));
  const spec = (await buildProcessorSpecs(loaded))[0]!;
  const ctx = new TaskContext({
    app: 'retries',
    processor: spec.name,
    partition: 0,
    stores: new Map(spec.stores.map((s) => [s.name, new BufferedStore(s.name, new MemoryCommittedStore(s.name), s.cacheSize)])),
    topics: new TopicRegistry(loaded.topology),
    allowedOutputs: spec.outputs,
    schedule: new PunctuationSchedule(),
    log: memoryLogger(),
    now: () => 0,
    maxRecordBytes: spec.maxRecordBytes,
    maxClockSkewMs: spec.maxClockSkewMs,
  });
  const pauses: number[] = [];
  const outcomes: string[] = [];
  const h = new RecordHandler({
    spec,
    processor: spec.create(0),
    ctx,
    observer: { outcome: (o: Outcome, code?: string) => void outcomes.push(code ? `${o}:${code}` : o) },
    sleep: async (ms) => void pauses.push(ms),
  });
  let offset = 0;
  const pipe = (eventId: string, failures: number) =>
    h.handle({
      topic: 'retries-events',
      partition: 0,
      offset: String(offset++),
      timestamp: 1,
      key: Buffer.from('a1'),
      headers: {},
      value: Buffer.from(
        JSON.stringify({ eventId, eventType: 'Named', eventVersion: 1, aggregateType: 'Thing', aggregateId: 'a1', aggregateVersion: offset, timestamp: '2026-11-28T00:00:00.000Z', data: { failures, name: eventId } }),
      ),
    });
  return { pipe, pauses, outcomes, ctx };
}

test('retry pauses double from initialBackoffMs and stop growing at maxBackoffMs; then the policy applies', async (t) => {
  const h = await handler('{ attempts: 5, initialBackoffMs: 100, maxBackoffMs: 1000 }');
  t.is(await h.pipe('e1', 99), 'dead_lettered');
  t.deepEqual(h.pauses, [100, 200, 400, 800, 1000]);
  t.deepEqual(h.outcomes, ['retried', 'retried', 'retried', 'retried', 'retried', 'dead_lettered:HANDLER_FAILED']);
  const dlq = h.ctx.drainOutputs();
  t.is(dlq.length, 1);
  t.regex(String(dlq[0]!.headers!['foldstream.error.message']), /projection exploded on attempt 6 \(after 6 attempts\)/);
});

test('a handler that succeeds on a retry pauses only as often as it failed, and its record is processed once', async (t) => {
  const h = await handler('{ attempts: 5, initialBackoffMs: 50, maxBackoffMs: 1000 }');
  t.is(await h.pipe('e2', 2), 'processed');
  t.deepEqual(h.pauses, [50, 100]);
  const out = h.ctx.drainOutputs();
  t.deepEqual(out.map((r) => r.topic), ['retries-view']);
  t.like(JSON.parse(out[0]!.value!.toString()), { name: 'e2', attempts: 3 });
});

test('with attempts 0 there is no pause: the policy applies at once', async (t) => {
  const h = await handler('{ attempts: 0, initialBackoffMs: 50, maxBackoffMs: 1000 }', 'skip');
  t.is(await h.pipe('e3', 1), 'skipped');
  t.deepEqual(h.pauses, []);
  t.deepEqual(h.ctx.drainOutputs(), []);
});

test('stream time counts the record being handled, and goes back when the record fails the task (policy fail)', async (t) => {
  const ok = await handler('{ attempts: 0, initialBackoffMs: 1, maxBackoffMs: 1 }');
  t.is(ok.ctx.streamTime, -1);
  t.is(await ok.pipe('e4', 0), 'processed');
  t.is(ok.ctx.streamTime, 1, 'the record handled counts');
  const failing = await handler('{ attempts: 0, initialBackoffMs: 1, maxBackoffMs: 1 }', 'fail');
  await t.throwsAsync(failing.pipe('e5', 1), { instanceOf: TaskFailedError });
  t.is(failing.ctx.streamTime, -1, 'a record whose work is not kept does not move stream time');
});
