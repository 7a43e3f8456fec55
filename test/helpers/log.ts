import type { Logger } from '../../src/processors/types.ts';

export interface MemoryLogger extends Logger {
  lines: ({ level: string } & Record<string, unknown>)[];
  events(name: string): Record<string, unknown>[];
}

/** Keeps log lines in memory so tests can assert on lifecycle events (and the test output stays quiet). */
export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  const at = (level: string) => (fields: object, msg?: string) => {
    lines.push({ level, ...(fields as Record<string, unknown>), ...(msg ? { msg } : {}) });
  };
  return {
    lines,
    events: (name) => lines.filter((l) => l.event === name),
    debug: () => undefined,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}
