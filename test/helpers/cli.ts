/** Runs the foldstream CLI from source (`node --import tsx src/cli/main.ts ...`) the way a user runs the built one. */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface CliResult {
  code: number | null;
  /** set when the run was killed because it did not finish within the limit */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // a guard against hanging runs, not a timing assertion
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Brokers for the files under test: one port where a listener counts connection attempts, one port nothing listens
 * on. Whichever kafkajs would pick, touching Kafka shows up as a counted connection or as connection error text.
 */
export async function brokerTraps(): Promise<{ brokers: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const listen = (server: Server) =>
    new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  const counting = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  const countingPort = await listen(counting);
  const closed = createServer();
  const unusedPort = await listen(closed);
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return {
    brokers: `127.0.0.1:${countingPort},127.0.0.1:${unusedPort}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => counting.close(() => resolve())),
  };
}

/** A copy of a fixture in a temp folder (with the module it names), its brokers replaced. */
export function copyFixture(name: string, brokers: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-fixture-'));
  mkdirSync(join(dir, 'modules'));
  copyFileSync(join(FIXTURES, 'modules', 'noop.ts'), join(dir, 'modules', 'noop.ts'));
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const replaced = text.replace(/brokers: "127\.0\.0\.1:9092"/, `brokers: "${brokers}"`);
  if (replaced === text) throw new Error(`${name} has no brokers line to replace`);
  const file = join(dir, name);
  writeFileSync(file, replaced);
  return file;
}
