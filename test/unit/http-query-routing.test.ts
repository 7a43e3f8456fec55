// Routed queries between query APIs over real HTTP (stores in memory, no broker): a key another instance runs is
// answered with the owner's value; a forwarded request is never forwarded again; ?route=client keeps the 421; the
// caller's token goes along and the owner checks it; an owner that is missing, silent or no longer running the
// partition gives a 503 with a reason; a listing is the union of every instance's partitions, or a 503 naming the
// partitions that cannot be read.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCertificates, securedLayout, securedSecrets } from '../../scripts/kafka/secure.ts';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { QueryApi, type QueryableProcessor, type StoreRead } from '../../src/http/query-api.ts';
import { QueryRouter } from '../../src/http/query-router.ts';
import { HttpServer } from '../../src/http/server.ts';
import { partitionForKey } from '../../src/serde/murmur2.ts';
import { MemoryCommittedStore, type CommittedStore } from '../../src/state/committed-store.ts';
import { encodeValue } from '../../src/state/value-codec.ts';
import { memoryLogger } from '../helpers/log.ts';

const PARTITIONS = 4;
const TOKEN = 'routing-test-token-0123456789';

interface Owner {
  instanceId: string;
  url: string | undefined;
}

/** One instance: a `view` store on the partitions it runs, the owners as the group would say, its HTTP port. */
class Node {
  readonly stores = new Map<number, MemoryCommittedStore>();
  readonly states: Record<number, string> = {};
  owners: (p: number) => Owner | undefined = () => undefined;
  http!: HttpServer;
  url = '';

  constructor(
    readonly id: string,
    private readonly routing: boolean,
    private readonly timeoutMs = 2000,
    /** `ca` signs every certificate (the test's client trusts it); `routerCa`: what the router trusts */
    private readonly tls?: { cert: string; key: string; ca: string; routerCa?: string },
  ) {}

  run(p: number, state = 'running'): void {
    this.states[p] = state;
    if (!this.stores.has(p)) this.stores.set(p, new MemoryCommittedStore('view'));
  }

  drop(p: number): void {
    delete this.states[p];
  }

  async put(key: string, value: unknown): Promise<void> {
    const p = partitionForKey(key, PARTITIONS);
    await this.stores.get(p)!.apply([{ key, value: encodeValue(value) }], {});
  }

  processor(): QueryableProcessor {
    return {
      name: 'view',
      stores: ['view'],
      partitions: PARTITIONS,
      aggregate: undefined,
      taskStates: () => ({ ...this.states }),
      readCommitted: async <T>(p: number, _s: string, fn: (c: CommittedStore) => Promise<T>): Promise<StoreRead<T>> => {
        const state = this.states[p];
        if (state === undefined) return { ok: false, reason: 'not_hosted', state: undefined };
        if (state !== 'running') return { ok: false, reason: 'not_running', state };
        return { ok: true, value: await fn(this.stores.get(p)!) };
      },
      owner: async (p) => this.owners(p),
    };
  }

  async start(): Promise<void> {
    this.http = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      registry: new Registry(),
      readiness: () => ({ ready: true, detail: {} }),
      log: memoryLogger(),
      onResponse: () => undefined,
      ...(this.tls ? { tls: { cert: this.tls.cert, key: this.tls.key } } : {}),
    });
    const router = this.routing ? new QueryRouter({ instanceId: this.id, timeoutMs: this.timeoutMs, ...(this.tls?.routerCa ? { ca: this.tls.routerCa } : {}) }) : undefined;
    const processor = this.processor();
    new QueryApi(() => [processor], router).register(this.http);
    const port = await this.http.listen();
    this.url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  async get(path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) {
    const tls = this.tls;
    if (tls) {
      return new Promise<{ status: number; servedBy: string | null; body: Record<string, any> }>((resolve, reject) => {
        const req = httpsGet(`${this.url}${path}`, { headers, ca: tls.ca }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (x: string) => (body += x));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: (res.headers['x-foldstream-served-by'] as string | undefined) ?? null, body: JSON.parse(body) as Record<string, any> }));
        });
        req.on('error', reject);
      });
    }
    const r = await fetch(`${this.url}${path}`, { headers });
    return { status: r.status, servedBy: r.headers.get('x-foldstream-served-by'), body: (await r.json()) as Record<string, any> };
  }
}

const keyOf = (p: number, i = 0) => Array.from({ length: 1000 }, (_, j) => `k${j}`).filter((k) => partitionForKey(k, PARTITIONS) === p)[i]!;

/** a on partitions 0 and 1, b on 2 and 3; one key per partition, valued with its owner's name */
async function twoNodes(routing = true) {
  const a = new Node('node-a', routing);
  const b = new Node('node-b', routing);
  a.run(0);
  a.run(1);
  b.run(2);
  b.run(3);
  await a.start();
  await b.start();
  const owners = (p: number): Owner => (p < 2 ? { instanceId: a.id, url: a.url } : { instanceId: b.id, url: b.url });
  a.owners = owners;
  b.owners = owners;
  for (let p = 0; p < PARTITIONS; p++) await (p < 2 ? a : b).put(keyOf(p), { owner: p < 2 ? 'a' : 'b', p });
  return { a, b, close: async () => Promise.all([a.http.close(), b.http.close()]) };
}

test('every key is answered by every instance with its owner\'s value; a forwarded answer names the owner', async (t) => {
  const { a, b, close } = await twoNodes();
  t.teardown(close);
  for (const node of [a, b]) {
    for (let p = 0; p < PARTITIONS; p++) {
      const r = await node.get(`/stores/view/view/${keyOf(p)}`);
      t.is(r.status, 200, `${node.id} partition ${p}`);
      t.deepEqual(r.body.value, { owner: p < 2 ? 'a' : 'b', p });
      const local = (p < 2) === (node === a);
      t.is(r.servedBy, local ? null : p < 2 ? 'node-a' : 'node-b');
    }
  }
  // a key that does not exist: the owner's 404, relayed
  const missing = await a.get(`/stores/view/view/${keyOf(3, 5)}`);
  t.is(missing.status, 404);
  t.is(missing.servedBy, 'node-b');
});

test('?route=client (or the x-foldstream-route header) keeps the 421 with the owner\'s URL; routing off answers 421 too', async (t) => {
  const { a, b, close } = await twoNodes();
  t.teardown(close);
  const r = await a.get(`/stores/view/view/${keyOf(3)}?route=client`);
  t.is(r.status, 421);
  t.like(r.body, { partition: 3, hostedBy: { instanceId: 'node-b', url: b.url } });
  const h = await a.get(`/stores/view/view/${keyOf(3)}`, { authorization: `Bearer ${TOKEN}`, 'x-foldstream-route': 'client' });
  t.is(h.status, 421);
  const off = await twoNodes(false);
  t.teardown(off.close);
  t.is((await off.a.get(`/stores/view/view/${keyOf(3)}`)).status, 421);
});

test('a forwarded request is never forwarded again: owners that name each other give a 503, not a loop', async (t) => {
  const { a, b, close } = await twoNodes();
  t.teardown(close);
  // partition 3 moved away from b, but the group (stale) still names b to a, and a to b
  b.drop(3);
  a.owners = (p) => (p === 3 ? { instanceId: b.id, url: b.url } : undefined);
  b.owners = (p) => (p === 3 ? { instanceId: a.id, url: a.url } : undefined);
  const r = await a.get(`/stores/view/view/${keyOf(3)}`);
  t.is(r.status, 503);
  t.like(r.body, { reason: 'moving', partition: 3, hostedBy: { instanceId: 'node-b' } });
  t.regex(r.body.error, /node-b no longer runs it/);
  // b, asked with the forwarded mark, answers from its own tasks only
  const direct = await b.get(`/stores/view/view/${keyOf(3)}`, { authorization: `Bearer ${TOKEN}`, 'x-foldstream-forwarded-by': 'node-a' });
  t.is(direct.status, 421);
});

test('the caller\'s token goes along: the owner refuses a token it does not know, and a forward never adds one', async (t) => {
  const { a, close } = await twoNodes();
  t.teardown(close);
  t.is((await a.get(`/stores/view/view/${keyOf(3)}`, {})).status, 401, 'no token: refused before any forward');
  t.is((await a.get(`/stores/view/view/${keyOf(3)}`, { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
  // an owner with other tokens than the caller's (a misconfiguration): its refusal is relayed, not bypassed
  const other = new Node('node-c', true);
  other.run(3);
  const strict = new HttpServer({ host: '127.0.0.1', port: 0, token: 'another-token-0123456789', registry: new Registry(), readiness: () => ({ ready: true, detail: {} }), log: memoryLogger() });
  new QueryApi(() => [other.processor()]).register(strict);
  const port = await strict.listen();
  t.teardown(() => strict.close());
  a.owners = () => ({ instanceId: 'node-c', url: `http://127.0.0.1:${port}` });
  const r = await a.get(`/stores/view/view/${keyOf(3)}`);
  t.is(r.status, 401);
  t.is(r.servedBy, 'node-c');
});

test('no owner, an owner without a URL, a silent owner, a restoring owner: 503 with the reason', async (t) => {
  const { a, b, close } = await twoNodes();
  t.teardown(close);
  a.owners = () => undefined;
  const none = await a.get(`/stores/view/view/${keyOf(3)}`);
  t.is(none.status, 503);
  t.like(none.body, { reason: 'no_owner', partition: 3 });
  a.owners = () => ({ instanceId: 'node-x', url: undefined });
  t.like((await a.get(`/stores/view/view/${keyOf(3)}`)).body, { reason: 'owner_without_url' });
  // an owner that accepts the connection and never answers
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const fast = new Node('node-fast', true, 300);
  await fast.start();
  t.teardown(() => fast.http.close());
  fast.owners = () => ({ instanceId: 'node-silent', url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
  const slow = await fast.get(`/stores/view/view/${keyOf(3)}`);
  t.is(slow.status, 503);
  t.like(slow.body, { reason: 'owner_unreachable' });
  t.regex(slow.body.error, /no answer within 300 ms/);
  // a refused connection (the owner died)
  fast.owners = () => ({ instanceId: 'node-dead', url: 'http://127.0.0.1:1' });
  t.like((await fast.get(`/stores/view/view/${keyOf(3)}`)).body, { reason: 'owner_unreachable' });
  // the owner restores the partition: its 503 is relayed with its state
  b.run(3, 'restoring');
  a.owners = () => ({ instanceId: b.id, url: b.url });
  const restoring = await a.get(`/stores/view/view/${keyOf(3)}`);
  t.is(restoring.status, 503);
  t.like(restoring.body, { state: 'restoring' });
  t.is(restoring.servedBy, 'node-b');
});

test('a listing is the union of every instance\'s partitions; one partition that cannot be read makes it a 503 that says which', async (t) => {
  const { a, b, close } = await twoNodes();
  t.teardown(close);
  for (const node of [a, b]) {
    const r = await node.get('/stores/view/view');
    t.is(r.status, 200);
    t.deepEqual(r.body.partitions, [0, 1, 2, 3]);
    t.deepEqual(
      r.body.entries.map((e: { key: string }) => e.key),
      [0, 1, 2, 3].map((p) => keyOf(p)),
    );
    t.deepEqual(r.body.servedBy, { 'node-a': [0, 1], 'node-b': [2, 3] });
  }
  const limited = await a.get('/stores/view/view?limit=3');
  t.is(limited.body.entries.length, 3);
  t.true(limited.body.truncated);
  // client routing: the local partitions only, as before
  t.deepEqual((await a.get('/stores/view/view?route=client')).body.partitions, [0, 1]);
  b.run(2, 'restoring');
  b.owners = () => undefined;
  a.owners = (p) => (p === 3 ? undefined : p < 2 ? { instanceId: a.id, url: a.url } : { instanceId: b.id, url: b.url });
  const partial = await a.get('/stores/view/view');
  t.is(partial.status, 503);
  t.deepEqual(
    partial.body.unavailable.map((u: { partition: number; reason: string }) => [u.partition, u.reason]),
    [
      [2, 'not_running'],
      [3, 'no_owner'],
    ],
  );
});

test('an owner serving HTTPS is reached over TLS, verified against http.routing.ca; without that CA its certificate is refused (503)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'routing-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const l = securedLayout(dir, 1);
  ensureCertificates(l, securedSecrets(l));
  // the test broker's certificate (for 127.0.0.1) serves as every instance's HTTPS certificate
  const pem = { cert: readFileSync(join(dir, 'tls/broker.pem'), 'utf8'), key: readFileSync(join(dir, 'tls/broker.plain.key.pem'), 'utf8') };
  const ca = readFileSync(l.caFile, 'utf8');
  const owner = new Node('tls-owner', true, 2000, { ...pem, ca, routerCa: ca });
  const asker = new Node('tls-asker', true, 2000, { ...pem, ca, routerCa: ca });
  const untrusting = new Node('tls-untrusting', true, 2000, { ...pem, ca });
  owner.run(3);
  for (const n of [owner, asker, untrusting]) await n.start();
  t.teardown(() => Promise.all([owner, asker, untrusting].map((n) => n.http.close())));
  await owner.put(keyOf(3), { secure: true });
  for (const n of [asker, untrusting]) n.owners = () => ({ instanceId: owner.id, url: owner.url });
  const r = await asker.get(`/stores/view/view/${keyOf(3)}`);
  t.is(r.status, 200);
  t.deepEqual(r.body.value, { secure: true });
  t.is(r.servedBy, 'tls-owner');
  const refused = await untrusting.get(`/stores/view/view/${keyOf(3)}`, { authorization: `Bearer ${TOKEN}` });
  t.is(refused.status, 503);
  t.like(refused.body, { reason: 'owner_unreachable' });
  t.regex(refused.body.error, /certificate/);
});
