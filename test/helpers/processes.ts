/**
 * foldstream instances as separate OS processes (kill -9, SIGSTOP and rebalances need real processes).
 * Each runs `foldstream run` from source, logs JSON lines to stderr (kept, and written to a file for post-mortems),
 * and serves HTTP on a free port read from its `http.listening` log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '../..');

export interface InstanceOptions {
  stateDir: string;
  env?: Record<string, string>;
  /** folder for the instance's log file (default: the state dir) */
  logDir?: string;
  name?: string;
  extraArgs?: string[];
  /** modules Node preloads after tsx (`--import`), for example a fault injector from test/fixtures/faults */
  preload?: string[];
}

export interface LogLine {
  event?: string;
  [k: string]: unknown;
}

export class Instance {
  readonly proc: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly logFile: string;
  httpPort: number | undefined;
  private exitCode: Promise<number | null>;
  private buffer = '';

  constructor(
    readonly topologyFile: string,
    readonly opts: InstanceOptions,
  ) {
    const name = opts.name ?? 'instance';
    const logDir = opts.logDir ?? opts.stateDir;
    mkdirSync(logDir, { recursive: true });
    this.logFile = join(logDir, `${name}.log`);
    const file = createWriteStream(this.logFile, { flags: 'a' });
    this.proc = spawn(
      process.execPath,
      ['--import', 'tsx', ...(opts.preload ?? []).flatMap((m) => ['--import', pathToFileURL(m).href]), join(ROOT, 'src/cli/main.ts'), 'run', topologyFile, '--state-dir', opts.stateDir, '--http-port', '0', ...(opts.extraArgs ?? [])],
      { cwd: ROOT, env: { ...process.env, FOLDSTREAM_LOG_LEVEL: 'info', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const onData = (chunk: Buffer) => {
      file.write(chunk);
      this.buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          const parsed = JSON.parse(line) as LogLine;
          this.lines.push(parsed);
          if (parsed.event === 'http.listening') this.httpPort = Number(parsed.port);
        } catch {
          // not a log line
        }
      }
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exitCode = new Promise((r) => this.proc.once('exit', (code, signal) => {
      file.end();
      r(code ?? (signal ? -1 : null));
    }));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  async readyz(): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
    if (!this.httpPort) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    } catch {
      return undefined;
    }
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    return res.text();
  }

  /** Waits until /readyz answers 200 (every assigned task restored and running). */
  async waitReady(timeoutMs = 90_000): Promise<void> {
    await waitFor(async () => {
      if (!this.alive) throw new Error(`instance exited before it was ready; log: ${this.logFile}`);
      return (await this.readyz())?.status === 200;
    }, timeoutMs, `instance ready (log: ${this.logFile})`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.proc.kill(signal);
  }

  /** SIGTERM and wait: returns the exit code. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (!this.alive) return this.exitCode;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exitCode;
    clearTimeout(timer);
    return code;
  }

  waitExit(): Promise<number | null> {
    return this.exitCode;
  }
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Reads a Prometheus counter/gauge value (sum over label sets matching `labels`). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
