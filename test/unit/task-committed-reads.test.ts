// Reads of a task's committed stores (the query API) against its lifecycle, with no broker: a task closing waits for
// the reads in progress before its stores close, and a task that is not running answers with its state.
import test from 'ava';
import { Registry } from 'prom-client';
import type { ProcessorSpec } from '../../src/processors/spec.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { Task } from '../../src/runtime/task.ts';
import type { TopicRegistry } from '../../src/runtime/topic-registry.ts';
import { MemoryCommittedStore } from '../../src/state/committed-store.ts';
import { encodeValue } from '../../src/state/value-codec.ts';
import { memoryLogger } from '../helpers/log.ts';

/** A store whose reads wait at a gate, and which refuses reads once closed (as a closed LevelDB does). */
class GatedStore extends MemoryCommittedStore {
  closed = false;
  gate: Promise<void> = Promise.resolve();
  override async get(key: string): Promise<Buffer | undefined> {
    await this.gate;
    if (this.closed) throw new Error('Database is not open');
    return super.get(key);
  }
  override async close(): Promise<void> {
    this.closed = true;
  }
}

function task(store: GatedStore): Task {
  const spec: ProcessorSpec = {
    name: 'p',
    type: 'custom',
    inputs: [{ topic: 'in', codec: 'json' }],
    requireKey: false,
    stages: [],
    stores: [{ name: 's', changelog: undefined, cacheSize: 0 }],
    outputs: undefined,
    errorPolicy: { policy: 'dlq', retry: { attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } },
    dlqTopic: 'p-dlq',
    maxRecordBytes: 1 << 20,
    maxClockSkewMs: 60_000,
    create: () => ({ process: () => undefined }),
  };
  return new Task({
    app: 'a',
    spec,
    groupId: 'a-p',
    partition: 0,
    exactlyOnce: true,
    commitIntervalMs: 100,
    maxBufferedRecords: 100,
    taskDir: '/nonexistent',
    topics: {} as TopicRegistry,
    txn: { transactionalId: 'a-p-i', writerInstance: () => undefined, claimFencing: () => false, ready: async () => undefined, send: async () => undefined, recordsProcessed: () => undefined, due: false, commitFromTask: async () => undefined, abortFromTask: async () => undefined },
    groupOffsets: { stableOffsets: async () => ({ unstable: false, offsets: {} }), abortTransactionOf: async () => undefined, memberInstanceIds: async () => new Set<string>(), close: async () => undefined },
    transactionTimeoutMs: 10_000,
    fenceDeadWriters: false,
    openStore: async () => store,
    destroyStore: async () => undefined,
    reader: { read: async (_t, _p, from) => from, close: async () => undefined },
    admin: { endOffsets: async () => new Map(), highWatermarks: async () => new Map(), startOffsets: async () => new Map(), committedOffsets: async () => new Map(), partitionCount: async () => 1, close: async () => undefined },
    consumer: { seek: () => undefined, pause: () => undefined, resume: () => undefined, commitOffsets: async () => undefined },
    metrics: new RuntimeMetrics(new Registry(), { defaultMetrics: false }),
    log: memoryLogger(),
    now: Date.now,
    onStateChange: () => undefined,
  });
}

test('a task closing (revoked) waits for a read in progress before its stores close; later reads get its state', async (t) => {
  const store = new GatedStore('s');
  await store.apply([{ key: 'k', value: encodeValue({ n: 1 }) }], {});
  const tk = task(store);
  await tk.start();
  t.is(tk.state, 'running');
  let open!: () => void;
  store.gate = new Promise((r) => (open = r));
  const read = tk.readCommitted('s', (s) => s.get('k'));
  const closed = tk.close();
  await new Promise((r) => setTimeout(r, 20));
  t.false(store.closed, 'the store closed under a read in progress');
  open();
  const r = await read;
  t.true(r.ok);
  t.deepEqual(r.ok && r.value, encodeValue({ n: 1 }));
  await closed;
  t.true(store.closed);
  t.deepEqual(await tk.readCommitted('s', (s) => s.get('k')), { ok: false, state: 'closed' });
});

test('a task that is not running, or a store it does not have, answers without reading', async (t) => {
  const store = new GatedStore('s');
  const tk = task(store);
  t.deepEqual(await tk.readCommitted('s', (s) => s.get('k')), { ok: false, state: 'created' });
  await tk.start();
  t.deepEqual(await tk.readCommitted('nope', (s) => s.get('k')), { ok: false, state: 'initializing' });
  await tk.close();
});
