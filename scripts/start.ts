// `npm start`: a local Kafka broker (started when nothing answers at KAFKA_BROKERS) and the example topology
// (topology.yaml, examples/users), with HTTP on :9464. Once every task is ready it sends the sample commands once
// (examples/users/send-commands.ts) so the replies and views show state changing; Ctrl-C drains and stops.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const httpPort = Number(process.env.HTTP_PORT ?? 9464);

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

async function ready(): Promise<boolean> {
  for (;;) {
    if (app.exitCode !== null) return false;
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

if (await ready()) {
  console.error('ready: sending the sample commands (again any time with `npm run example:commands`)');
  await exited(start(['examples/users/send-commands.ts', 'topology.yaml']));
}
process.exit(await appExit);
