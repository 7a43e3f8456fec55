/**
 * foldstream instances as separate OS processes (kill -9, SIGSTOP and rebalances need real processes).
 * Each runs `foldstream run` from source, logs JSON lines to stderr (kept, and written to a file for post-mortems),
 * and serves HTTP on a free port read from its `http.listening` log line. LoggedProcess, the spawning and log
 * handling, is shared with the benchmark's processes (bench/lib/proc.ts).
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

/** A child process whose stdout and stderr go to a log file, with its JSON lines parsed as they come. */
export class LoggedProcess {
  readonly proc: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly logFile: string;
  readonly startedAt = Date.now();
  private readonly exitCode: Promise<number | null>;
  /** waitLine's checks, run on every line and on exit */
  private listeners: (() => void)[] = [];
  private buffer = '';

  constructor(command: string, args: string[], opts: { cwd: string; env?: Record<string, string>; logFile: string }) {
    this.logFile = opts.logFile;
    const file = createWriteStream(opts.logFile, { flags: 'a' });
    file.write(`# ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    this.proc = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer) => {
      file.write(chunk);
      this.buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(line) as LogLine);
          for (const l of this.listeners) l();
        } catch {
          // not a log line
        }
      }
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exitCode = new Promise((r) =>
      this.proc.once('exit', (code, signal) => {
        file.end();
        r(code ?? (signal ? -1 : null));
        for (const l of this.listeners) l();
      }),
    );
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

  /** Resolves with the first line that matches (already seen or to come); rejects on exit or timeout. */
  waitLine(match: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const check = () => {
        const l = this.lines.find(match);
        if (l) finish(undefined, l);
        else if (!this.alive) finish(new Error(`process exited while waiting for ${what}`));
      };
      const finish = (e: Error | undefined, l?: LogLine) => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((x) => x !== check);
        if (e) reject(e);
        else resolve(l!);
      };
      this.listeners.push(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.proc.kill(signal);
  }

  /** SIGTERM and wait (SIGKILL after the timeout): returns the exit code. */
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

/** `foldstream run` from source on a topology file. */
export class Instance extends LoggedProcess {
  constructor(
    readonly topologyFile: string,
    readonly opts: InstanceOptions,
  ) {
    const logDir = opts.logDir ?? opts.stateDir;
    mkdirSync(logDir, { recursive: true });
    super(
      process.execPath,
      ['--import', 'tsx', ...(opts.preload ?? []).flatMap((m) => ['--import', pathToFileURL(m).href]), join(ROOT, 'src/cli/main.ts'), 'run', topologyFile, '--state-dir', opts.stateDir, '--http-port', '0', ...(opts.extraArgs ?? [])],
      { cwd: ROOT, env: { FOLDSTREAM_LOG_LEVEL: 'info', ...opts.env }, logFile: join(logDir, `${opts.name ?? 'instance'}.log`) },
    );
  }

  /** from its `http.listening` log line */
  get httpPort(): number | undefined {
    const l = this.lines.find((x) => x.event === 'http.listening');
    return l ? Number(l.port) : undefined;
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
