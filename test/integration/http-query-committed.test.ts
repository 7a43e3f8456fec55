// The query API serves what a task committed, never its open transaction: a store write that sits in the write
// buffer while the processor waits is not visible; after the commit it is.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { FIXTURES } from '../helpers/cli.ts';
import { countingApp } from '../helpers/counting-app.ts';
import { kafka } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';
import type { Hold } from '../fixtures/modules/held-counter.ts';

test('a store write of an open transaction is not served; once committed it is', async (t) => {
  const env = await countingApp({ partitions: 2 });
  writeFileSync(env.file, readFileSync(env.file, 'utf8').replace(join(FIXTURES, 'modules/counter.ts'), join(FIXTURES, 'modules/held-counter.ts')));
  const app = new App(loadTopology(env.file), { log: memoryLogger(), stateDir: env.stateDir('a'), httpPort: 0 });
  let release!: () => void;
  let reached!: () => void;
  const holding = new Promise<void>((r) => (reached = r));
  (globalThis as { heldCounter?: Hold }).heldCounter = { reached, release: new Promise<void>((r) => (release = r)) };
  t.teardown(async () => {
    release();
    delete (globalThis as { heldCounter?: Hold }).heldCounter;
    await app.stop();
    await env.cleanup();
  });
  await app.start();
  await waitFor(() => app.ready, 60_000, 'app ready');
  const producer = kafka('held-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: env.input, acks: -1, messages: [{ key: 'k', value: '{}' }] });
  await producer.disconnect();
  await holding;
  const get = async () => {
    const r = await fetch(`http://127.0.0.1:${app.httpPort}/stores/counter/counts/k`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  // written to the task's buffer, not committed
  t.is((await get()).status, 404);
  release();
  let last: { status: number; body: Record<string, unknown> } | undefined;
  await waitFor(async () => (last = await get()).status === 200, 30_000, 'the committed count');
  t.like(last!.body, { key: 'k', value: 1 });
});
