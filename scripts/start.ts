// `npm start`: a local Kafka broker (started when nothing answers at KAFKA_BROKERS) and the example topology
// (topology.yaml, examples/users), with HTTP on :9464. Once every task is ready it sends the sample commands once
// (examples/users/send-commands.ts) so the replies and views show state changing; Ctrl-C drains and stops.
// Environment: KAFKA_BROKERS, HTTP_PORT and STATE_DIR (read by topology.yaml; HTTP_PORT also by the readiness poll),
// READY_TIMEOUT_S (default 120): how long to wait for /readyz before stopping the app and exiting 1.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const httpPort = Number(process.env.HTTP_PORT ?? 9464);
const readyTimeoutS = Number(process.env.READY_TIMEOUT_S ?? 120);
if (!(readyTimeoutS > 0)) {
  console.error(`READY_TIMEOUT_S must be a positive number of seconds, not ${process.env.READY_TIMEOUT_S}`);
  process.exit(2);
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: 'inherit' });
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

const ensured = await exited(start(['scripts/kafka/cli.ts', 'ensure']));
if (ensured !== 0) process.exit(ensured);

console.error(`running topology.yaml: http://localhost:${httpPort}/metrics, /readyz; Ctrl-C drains and stops`);
const app = start(['src/cli/main.ts', 'run', 'topology.yaml']);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.kill(signal));
const appExit = exited(app);

/** What /readyz says is not ready: per processor, its tasks by state (or the answer as it came). */
function notReady(body: string): string {
  try {
    const processors = (JSON.parse(body) as { processors: Record<string, { ready: boolean; tasks: Record<string, string> }> }).processors;
    const waiting = Object.entries(processors).filter(([, p]) => !p.ready);
    return waiting
      .map(([name, p]) => {
        const states = new Map<string, number>();
        for (const state of Object.values(p.tasks)) states.set(state, (states.get(state) ?? 0) + 1);
        return `${name}: ${states.size ? [...states].map(([state, n]) => `${n} ${state}`).join(', ') : 'no tasks assigned yet'}`;
      })
      .join('; ');
  } catch {
    return body.slice(0, 500);
  }
}

/** true once /readyz answers 200; false when the app exits first, or (after stopping it) when it is not ready in time. */
async function ready(): Promise<boolean> {
  const url = `http://127.0.0.1:${httpPort}/readyz`;
  const deadline = Date.now() + readyTimeoutS * 1000;
  let last = `nothing answered at ${url}`;
  for (;;) {
    if (app.exitCode !== null || app.signalCode !== null) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (res.status === 200) return true;
      last = `${url} answered ${res.status}: ${notReady(await res.text())}`;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) {
      console.error(
        `the app was not ready within ${readyTimeoutS} s (READY_TIMEOUT_S); last: ${last}\n` +
          'stopping it (its log above says why tasks wait; a large restore may just need a longer READY_TIMEOUT_S)',
      );
      app.kill('SIGTERM');
      const stopping = setTimeout(() => app.kill('SIGKILL'), 60_000);
      await appExit;
      clearTimeout(stopping);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

if (await ready()) {
  console.error('ready: sending the sample commands (again any time with `npm run example:commands`)');
  await exited(start(['examples/users/send-commands.ts', 'topology.yaml']));
}
process.exit(await appExit);
