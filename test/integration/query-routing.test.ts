// Routed queries on the real broker, three App instances in this process: every key is answered by every instance
// with the value of the instance that runs its partition (the model's count), a listing from any instance is the
// union of every partition, and while tasks move (an instance leaves, another joins) an answer is the right value or
// a 503 that says why — never a wrong value, a 404 for a key that exists, or another status.
import test from 'ava';
import { App } from '../../src/app/app.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { cleanUpAfter, countingApp, produceCounting, waitForCaughtUp } from '../helpers/counting-app.ts';
import { memoryLogger } from '../helpers/log.ts';
import { waitFor } from '../helpers/processes.ts';

const PARTITIONS = 6;
const KEYS = 60;

const tasksOf = (app: App): number[] =>
  Object.keys((app.readiness().detail.processors as Record<string, { tasks: Record<string, string> }>).counter?.tasks ?? {})
    .map(Number)
    .sort((x, y) => x - y);

const running = (app: App): boolean =>
  app.ready && Object.values((app.readiness().detail.processors as Record<string, { tasks: Record<string, string> }>).counter?.tasks ?? {}).every((s) => s === 'running');

async function get(app: App, path: string): Promise<{ status: number; servedBy: string | null; body: Record<string, any> }> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}${path}`);
  return { status: r.status, servedBy: r.headers.get('x-foldstream-served-by'), body: (await r.json()) as Record<string, any> };
}

test('any instance answers any key with its owner\'s value and lists every partition; while tasks move, never a wrong value', async (t) => {
  const c = await countingApp({ partitions: PARTITIONS, sessionTimeoutMs: 10000, extraYaml: ['http: { port: 0, host: 127.0.0.1 }'] });
  cleanUpAfter(t, c);
  const loaded = loadTopology(c.file);
  const apps: App[] = [];
  t.teardown(async () => {
    for (const a of apps) await a.stop().catch(() => undefined);
  });
  const start = async (name: string) => {
    const app = new App(loaded, { log: memoryLogger(), stateDir: c.stateDir(name), httpPort: 0 });
    apps.push(app);
    await app.start();
    return app;
  };
  const a = await start('a');
  const b = await start('b');
  const d = await start('d');
  await waitFor(() => [a, b, d].every((x) => running(x) && tasksOf(x).length === 2), 120_000, 'two running tasks on each of the three instances');
  const model = await produceCounting(c.input, KEYS * 10, KEYS);
  await waitForCaughtUp(`${c.app}-counter`, c.input);
  const keys = [...model.keys()].sort();

  const ownerOf = (p: number) => [a, b, d].find((x) => tasksOf(x).includes(p))!;
  for (const asked of [a, b, d]) {
    for (const key of keys) {
      const p = partitionForKey(key, PARTITIONS);
      const r = await get(asked, `/stores/counter/counts/${key}`);
      t.is(r.status, 200, `${key} from ${asked.instanceId}`);
      t.is(r.body.value, model.get(key), `${key}: the owner's count`);
      const owner = ownerOf(p);
      t.is(r.servedBy, owner === asked ? null : owner.instanceId!, `${key} served by the owner of partition ${p}`);
    }
    const list = await get(asked, '/stores/counter/counts?limit=1000');
    t.is(list.status, 200);
    t.deepEqual(list.body.partitions, [...Array(PARTITIONS).keys()]);
    t.deepEqual(
      Object.fromEntries(list.body.entries.map((e: { key: string; value: number }) => [e.key, e.value])),
      Object.fromEntries(keys.map((k) => [k, model.get(k)])),
      'the listing is the union of every partition',
    );
    t.deepEqual(Object.values(list.body.servedBy as Record<string, number[]>).flat().sort(), [...Array(PARTITIONS).keys()]);
  }

  // tasks move: d leaves (its tasks go to a and b), then e joins (tasks move again); a and b are asked all along
  const seen = new Map<string, number>();
  const wrong: string[] = [];
  let reading = true;
  const reader = (async () => {
    while (reading) {
      for (const asked of [a, b]) {
        for (const key of keys) {
          const r = await get(asked, `/stores/counter/counts/${key}`);
          const label = r.status === 503 ? `503 ${r.body.reason}` : String(r.status);
          seen.set(label, (seen.get(label) ?? 0) + 1);
          if (r.status === 200 && r.body.value !== model.get(key)) wrong.push(`${key}: ${r.body.value} (want ${model.get(key)})`);
          if (r.status !== 200 && !(r.status === 503 && typeof r.body.reason === 'string')) wrong.push(`${key}: ${r.status} ${JSON.stringify(r.body)}`);
        }
        const list = await get(asked, '/stores/counter/counts?limit=1000');
        const label = list.status === 503 ? 'list 503' : `list ${list.status}`;
        seen.set(label, (seen.get(label) ?? 0) + 1);
        if (list.status === 200 && list.body.entries.length !== KEYS) wrong.push(`listing with ${list.body.entries.length} entries`);
        if (list.status !== 200 && list.status !== 503) wrong.push(`listing ${list.status}`);
      }
    }
  })();
  try {
    await d.stop();
    apps.splice(apps.indexOf(d), 1);
    await waitFor(() => running(a) && running(b) && tasksOf(a).length + tasksOf(b).length === PARTITIONS, 120_000, 'a and b running every task');
    const e = await start('e');
    await waitFor(() => [a, b, e].every((x) => running(x) && tasksOf(x).length === 2), 120_000, 'two running tasks on each of a, b, e');
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    reading = false;
    await reader;
  }
  t.log(`answers while tasks moved: ${JSON.stringify([...seen])}`);
  t.deepEqual(wrong, [], 'every answer is the right value or a 503 with a reason');
  t.true((seen.get('200') ?? 0) > 0);
});
