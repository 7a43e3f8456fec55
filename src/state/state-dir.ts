/**
 * The state directory: <stateDir>/<app>/ holds an instance id (stable across restarts: the assigner keeps tasks
 * where their state is), a lock (one live process per state directory), and <processor>/<partition>/<store>/
 * LevelDB folders. Folders of tasks this instance no longer owns are deleted after a delay (Kafka Streams uses ten
 * minutes), so a stale copy never outlives changelog tombstones, while a task that comes back soon continues from
 * its checkpoint.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FoldstreamError } from '../errors.ts';
import type { Logger } from '../processors/types.ts';

export function appStateDir(stateDir: string, app: string): string {
  return join(stateDir, app);
}

export function taskDir(stateDir: string, app: string, processor: string, partition: number): string {
  return join(stateDir, app, processor, String(partition));
}

export function instanceId(stateDir: string, app: string): string {
  const dir = appStateDir(stateDir, app);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'instance.id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  }
  const id = randomUUID();
  writeFileSync(file, id);
  return id;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the state directory for this process; a lock left by a dead process (kill -9) is taken over. */
export function lockStateDir(stateDir: string, app: string): () => void {
  const dir = appStateDir(stateDir, app);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8'));
      if (pid && pid !== process.pid && alive(pid)) {
        throw new FoldstreamError('CONFIG_INVALID', `state directory ${dir} is in use by process ${pid}`, {
          hint: 'give each instance its own processing.stateDir (for example STATE_DIR=./state-2)',
        });
      }
      rmSync(file, { force: true });
    }
  }
  throw new FoldstreamError('CONFIG_INVALID', `could not lock state directory ${dir}`);
}

/** Deletes task folders this instance has not owned for `delayMs`. */
export class StateDirJanitor {
  private readonly releasedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly processorDir: string,
    private readonly delayMs: number,
    private readonly owned: () => Set<number>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(intervalMs = Math.max(1000, Math.min(60_000, this.delayMs / 4))): void {
    this.sweep();
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A task came back: keep its folder. */
  claimed(partition: number): void {
    this.releasedAt.delete(String(partition));
  }

  released(partition: number): void {
    this.releasedAt.set(String(partition), this.now());
    if (this.delayMs === 0) this.sweep();
  }

  sweep(): void {
    if (!existsSync(this.processorDir)) return;
    const owned = this.owned();
    for (const entry of readdirSync(this.processorDir)) {
      if (!/^\d+$/.test(entry) || owned.has(Number(entry))) continue;
      const since = this.releasedAt.get(entry);
      if (since === undefined) {
        // found on disk (left by an earlier run): the delay starts now
        this.releasedAt.set(entry, this.now());
        if (this.delayMs > 0) continue;
      } else if (this.now() - since < this.delayMs) continue;
      rmSync(join(this.processorDir, entry), { recursive: true, force: true });
      this.releasedAt.delete(entry);
      this.log.info({ event: 'state.task_dir_deleted', dir: join(this.processorDir, entry) });
    }
  }
}
