/** Structured JSON logs (pino): one line per lifecycle event, `{event: 'task.restored', ...}`; never secrets. */
import { pino } from 'pino';
import type { Logger } from './processors/types.ts';
import { redactSecrets } from './secrets.ts';

export function createLogger(fields: Record<string, unknown> = {}): Logger & { child(f: object): Logger } {
  const level = process.env.FOLDSTREAM_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info';
  return pino({
    level,
    base: { pid: process.pid, ...fields },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['password', '*.password', 'sasl', '*.sasl', 'token', '*.token', 'clientSecret', '*.clientSecret', 'passphrase', '*.passphrase'], remove: true },
    // the second wall: a secret value that reached a line anyway (an error message quoting it) is replaced
    hooks: { streamWrite: redactSecrets },
  }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (tests, the test driver). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
