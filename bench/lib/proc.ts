/**
 * Processor processes: test/helpers/processes.ts's LoggedProcess (output kept in a log file, JSON lines parsed),
 * with the peak RSS and CPU time from /proc that the benchmark measures.
 */
import { readFileSync } from 'node:fs';
import { LoggedProcess } from '../../test/helpers/processes.ts';

export { waitFor, type LogLine } from '../../test/helpers/processes.ts';

export class Proc extends LoggedProcess {
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
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
