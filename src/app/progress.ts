/**
 * Progress of long offline work (rebuild, reset, state-at, replay, redrive): a bar on a terminal (cli-progress, on
 * stderr so stdout stays the command's answer), and where stderr is not a terminal (a CI log, a container, a pipe) one
 * log line every `every` records and one at the end, so a log shows the work moving without a line per record.
 *
 *   const p = startProgress('read user-events', total);   // total undefined: a count with no bar
 *   p.tick(records.length);                                // or p.update(done)
 *   p.stop();
 *
 * `startProgress` picks the display from the stream; `progressReporter(opts)` gives a factory with fixed options, the
 * shape app/ functions take (`(phase, total) => Progress`), so the CLI decides how progress is shown and app/ only
 * reports it.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** `n` more records done */
  tick(n: number): void;
  /** `done` records done in all */
  update(done: number): void;
  /** the work is over: the bar's last state stays, or the last log line is written */
  stop(): void;
}

export interface ProgressOptions {
  /** where to show it (default process.stderr) */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** without a terminal: a line every this many records (default 10 000) */
  every?: number;
  /** a bar even when the stream is no terminal (tests), or never one */
  bar?: boolean;
  /** no output at all (--quiet) */
  quiet?: boolean;
}

/** `unit`: what is counted (default records) */
export type ProgressFactory = (phase: string, total: number | undefined, unit?: string) => Progress;

export function startProgress(phase: string, total: number | undefined, o: ProgressOptions = {}, unit = 'records'): Progress {
  const stream = o.stream ?? process.stderr;
  if (o.quiet) return { tick: () => undefined, update: () => undefined, stop: () => undefined };
  const tty = o.bar ?? (stream as NodeJS.WriteStream).isTTY === true;
  return tty ? barProgress(phase, total, stream, unit) : lineProgress(phase, total, stream, o.every ?? 10_000, unit);
}

export function progressReporter(o: ProgressOptions = {}): ProgressFactory {
  return (phase, total, unit) => startProgress(phase, total, o, unit);
}

/**
 * For app/ functions that report `(done, total)` (redrive, replay): the same display, started at the first report, a
 * line every tenth of the total when stderr is no terminal, stopped when `done` reaches `total`.
 */
export function callbackProgress(phase: string, o: ProgressOptions = {}, unit = 'records'): (done: number, total: number) => void {
  let shown: Progress | undefined;
  let shownTotal = -1;
  return (done, total) => {
    if (!shown || total !== shownTotal) {
      shown?.stop();
      shown = startProgress(phase, total, { ...o, every: o.every ?? Math.max(1, Math.ceil(total / 10)) }, unit);
      shownTotal = total;
    }
    shown.update(done);
    if (done >= total) {
      shown.stop();
      shown = undefined;
      shownTotal = -1;
    }
  };
}

function barProgress(phase: string, total: number | undefined, stream: NodeJS.WritableStream, unit: string): Progress {
  const known = total !== undefined && total > 0;
  const bar = new SingleBar({
    stream: stream as NodeJS.WriteStream,
    format: known ? `${phase} [{bar}] {percentage}% {value}/{total} ${unit}, eta {eta_formatted}` : `${phase} {value} ${unit}`,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 5,
    noTTYOutput: true,
    notTTYSchedule: 1000,
  });
  let done = 0;
  bar.start(known ? total : 0, 0);
  return {
    tick(n) {
      done += n;
      if (known && done > total) bar.setTotal(done);
      bar.update(done);
    },
    update(d) {
      done = d;
      if (known && done > total) bar.setTotal(done);
      bar.update(done);
    },
    stop() {
      bar.stop();
    },
  };
}

function lineProgress(phase: string, total: number | undefined, stream: NodeJS.WritableStream, every: number, unit: string): Progress {
  let done = 0;
  let logged = 0;
  const line = () => stream.write(`${phase}: ${done}${total !== undefined ? `/${total}` : ''} ${unit}${total ? ` (${Math.min(100, Math.floor((done / total) * 100))} %)` : ''}\n`);
  const moved = () => {
    if (done - logged >= every) {
      logged = done - (done % every);
      line();
    }
  };
  return {
    tick(n) {
      done += n;
      moved();
    },
    update(d) {
      done = d;
      moved();
    },
    stop() {
      line();
    },
  };
}

/**
 * Progress of reading whole partitions, in offsets (records and the transaction markers between them) against the
 * offsets there were when the read began, so a read that reaches the end shows 100 %:
 *
 *   const bar = offsetProgress(progress, `read ${topic}`, starts, ends);
 *   for (const p of partitions) await bar.partition(p, (from, tick) => reader.read(topic, p, from, async (records) => { ...; tick(records); }));
 *   bar.stop();
 */
export function offsetProgress(progress: ProgressFactory, phase: string, starts: Map<number, bigint>, ends: Map<number, bigint>, only?: number[]) {
  const counted = only ? [...ends].filter(([q]) => only.includes(q)) : [...ends];
  const total = counted.reduce((n, [q, end]) => n + Number(end - (starts.get(q) ?? 0n)), 0);
  const bar = progress(phase, total, 'offsets');
  let base = 0;
  return {
    /** reads one partition from its start offset: `read` calls `tick` with each chunk of records and returns the end offset */
    async partition(partition: number, read: (from: bigint, tick: (records: { offset: string }[]) => void) => Promise<bigint>): Promise<void> {
      const from = starts.get(partition) ?? 0n;
      const end = await read(from, (records) => {
        const last = records.at(-1);
        if (last) bar.update(base + Number(BigInt(last.offset) + 1n - from));
      });
      base += Number(end - from);
      bar.update(base);
    },
    stop: () => bar.stop(),
  };
}
