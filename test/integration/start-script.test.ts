// `npm start` (scripts/start.ts) as a user runs it, against the test broker: it runs topology.yaml, waits for
// /readyz, sends the sample commands and prints their replies and the user's view; SIGTERM drains and exits 0. When
// the app never becomes ready it gives up after READY_TIMEOUT_S, says what was not ready, stops the app, exits 1.
// topology.yaml names its app and topics itself (user-service, user-commands, events, ...), so these tests share
// them with any earlier `npm start` on the same broker: they assert on this run's user (send-commands picks a new
// id each run) and on lower bounds, never on totals. Serial: both join the same consumer groups.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/cli.ts';
import { BROKERS } from '../helpers/kafka.ts';
import { metricValue } from '../helpers/processes.ts';

const HOLD_RESTORE = join(ROOT, 'test/fixtures/faults/hold-restore.ts');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** scripts/start.ts in a process group of its own (its children too), output kept as text. */
class StartScript {
  readonly proc: ChildProcess;
  output = '';
  readonly exit: Promise<number | null>;
  private listeners: (() => void)[] = [];

  constructor(env: Record<string, string>) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const onData = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      for (const l of this.listeners) l();
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exit = new Promise((r) =>
      this.proc.once('exit', (code) => {
        r(code);
        for (const l of this.listeners) l();
      }),
    );
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Output lines that are not the app's JSON log lines. */
  get text(): string {
    return this.output
      .split('\n')
      .filter((l) => !l.startsWith('{"level"'))
      .join('\n');
  }

  /** Resolves with the match once the output matches; rejects on exit or timeout. */
  waitFor(re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.output);
        if (m) finish(undefined, m);
        else if (!this.alive) finish(new Error(`start.ts exited (${this.proc.exitCode ?? this.proc.signalCode}) while waiting for ${what}; output:\n${this.text}`));
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output:\n${this.text}`)), timeoutMs);
      const finish = (e: Error | undefined, m?: RegExpExecArray) => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((x) => x !== check);
        if (e) reject(e);
        else resolve(m!);
      };
      this.listeners.push(check);
      check();
    });
  }

  /** The exit code, or undefined when it did not exit within `timeoutMs`. */
  async exited(timeoutMs: number): Promise<number | null | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([this.exit, new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), timeoutMs)))]);
    clearTimeout(timer);
    return r;
  }

  /** After a failed test: the whole group (start.ts, the app, send-commands), SIGTERM then SIGKILL. */
  async kill(): Promise<void> {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      try {
        process.kill(-this.proc.pid!, signal);
      } catch {
        return; // the group is gone
      }
      if (signal === 'SIGTERM') await this.exited(20_000);
    }
  }
}

async function answers(url: string): Promise<boolean> {
  return fetch(url).then(
    () => true,
    () => false,
  );
}

test.serial('npm start runs topology.yaml, sends the sample commands once ready and prints replies and the view; /readyz and /metrics answer; SIGTERM exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const port = await freePort();
  const start = new StartScript({ KAFKA_BROKERS: BROKERS.join(','), HTTP_PORT: String(port), STATE_DIR: join(dir, 'state') });
  t.teardown(async () => {
    await start.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const t0 = Date.now();
  const [, user] = await start.waitFor(/^user (user-[0-9a-f]{6}), commands to user-commands, replies from user-command-results$/m, 80_000, 'the sample commands');
  await start.waitFor(/^users per status in users-by-status:\n.*\n/m, 40_000, 'the users per status');
  t.log(`commands sent and answered ${Date.now() - t0} ms after start`);
  const text = start.text;
  t.regex(text, /^ready: sending the sample commands/m);
  // this run's replies, in order
  const replies = [...text.matchAll(/^← (\w+)(?::[^\n]*)? — version (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  t.deepEqual(replies, ['accepted 1', 'accepted 2', 'accepted 2', 'accepted 3', 'conflict 3', 'accepted 3', 'rejected 3']);
  // the user's view after the commands: the new email, GOLD
  const view = new RegExp(`^view of ${user} in user-view \\(version (\\d+)\\):\\n(\\{[\\s\\S]*?\\n\\})$`, 'm').exec(text);
  t.truthy(view, `the view of ${user} is printed`);
  t.is(view?.[1], '3');
  t.like(JSON.parse(view?.[2] ?? '{}') as Record<string, unknown>, { id: user, email: `${user}@example.org`, status: 'GOLD', emailChanges: 1, statusHistory: ['GOLD'] });
  // users per status counts this run's user with the others the topic holds from earlier runs
  const gold = /^ {2}\{"key":"GOLD","count":(\d+)\}$/m.exec(text.slice(text.indexOf('users per status')));
  t.true(Number(gold?.[1]) >= 1, 'a GOLD count that includes this run\'s user');

  const readyz = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.is(readyz.status, 200);
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(metrics.status, 200);
  const m = await metrics.text();
  t.true(metricValue(m, 'foldstream_records_consumed_total', { processor: 'users' }) >= 7, 'the seven commands consumed');
  t.true(metricValue(m, 'foldstream_command_outcomes_total', { processor: 'users', outcome: 'accepted' }) >= 4);
  for (const outcome of ['conflict', 'duplicate', 'rejected']) t.true(metricValue(m, 'foldstream_command_outcomes_total', { processor: 'users', outcome }) >= 1, outcome);
  t.true(metricValue(m, 'foldstream_projection_events_total', { processor: 'user-view', outcome: 'applied' }) >= 3);
  t.true(metricValue(m, 'process_cpu_seconds_total') > 0);

  start.proc.kill('SIGTERM');
  t.is(await start.exited(60_000), 0, 'SIGTERM: the app drains and npm start exits 0');
  t.regex(start.output, /"event":"app.stopped"/);
  t.false(await answers(`http://127.0.0.1:${port}/readyz`), 'the app is gone');
});

test.serial('npm start gives up when the app is not ready within READY_TIMEOUT_S: it says what is not ready, stops the app and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const port = await freePort();
  // every changelog restore is held (the file never appears): the app answers /readyz 503 for as long as it runs
  const start = new StartScript({
    KAFKA_BROKERS: BROKERS.join(','),
    HTTP_PORT: String(port),
    STATE_DIR: join(dir, 'state'),
    READY_TIMEOUT_S: '8',
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --import ${pathToFileURL(HOLD_RESTORE).href}`.trim(),
    FOLDSTREAM_TEST_HOLD_RESTORE: join(dir, 'never'),
  });
  t.teardown(async () => {
    await start.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const code = await start.exited(60_000);
  t.is(code, 1, `start.ts exits 1 (output:\n${start.text})`);
  t.regex(start.text, /^the app was not ready within 8 s \(READY_TIMEOUT_S\); last: http:\/\/127\.0\.0\.1:\d+\/readyz answered 503: users: /m);
  t.regex(start.output, /"event":"app.stopped"/, 'the app was stopped, not left running');
  t.notRegex(start.text, /sending the sample commands/);
  t.false(await answers(`http://127.0.0.1:${port}/readyz`), 'nothing answers on the app\'s port');
});
