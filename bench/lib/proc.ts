/** Processor processes: spawned with their output kept in a log file and JSON lines parsed; peak RSS from /proc. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';

export interface LogLine {
  event?: string;
  /** wall-clock ms when the line was read (JSON lines of our own may carry their own `t`) */
  seenAt: number;
  [k: string]: unknown;
}

export class Proc {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly startedAt = Date.now();
  private readonly exited: Promise<number | null>;
  private listeners: (() => void)[] = [];
  private buffer = '';

  constructor(command: string, args: string[], opts: { cwd: string; env?: Record<string, string>; logFile: string }) {
    const log = createWriteStream(opts.logFile, { flags: 'a' });
    log.write(`# ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    this.child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      this.buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          this.lines.push({ ...(JSON.parse(line) as Record<string, unknown>), seenAt: Date.now() });
          for (const l of this.listeners) l();
        } catch {
          // not one of ours
        }
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        log.end();
        resolve(code ?? (signal ? -1 : null));
        for (const l of this.listeners) l();
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
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

  /** Peak resident set size so far (VmHWM), in bytes; 0 once the process is gone. */
  peakRss(): number {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  /** Total CPU time (user + system) the process used so far, in ms. */
  cpuMs(): number {
    try {
      const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime and stime are fields 14 and 15 of /proc/pid/stat (1-based), in clock ticks (100 per second here)
      return (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      return 0;
    }
  }

  kill9(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** SIGTERM, and SIGKILL after the timeout. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (this.alive) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill9(), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  waitExit(): Promise<number | null> {
    return this.exited;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
