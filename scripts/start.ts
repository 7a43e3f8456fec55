// `npm start`: a local Kafka broker (started when nothing answers at KAFKA_BROKERS) and the example topology
// (examples/users), with the HTTP endpoint on :9464. Sample commands: `npm run example:commands` in another shell.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (args: string[]) =>
  new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 1);
    });
  });

const ensured = await run(['scripts/kafka/cli.ts', 'ensure']);
if (ensured !== 0) process.exit(ensured);
console.error('running topology.yaml: metrics on http://localhost:9464/metrics, readiness on /readyz; Ctrl-C drains and stops');
process.exit(await run(['src/cli/main.ts', 'run', 'topology.yaml']));
