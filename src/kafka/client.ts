/**
 * Builds a kafkajs client from the topology's `kafka:` section; the only place credentials are read: TLS files (CA,
 * client certificate and key, the key's passphrase), SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512 and OAUTHBEARER
 * (client-credentials tokens, oauth-token.ts). Every secret is registered with src/secrets.ts. docs/security.md.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import { registerSecret } from '../secrets.ts';
import { oauthBearerAuthenticator, oauthBearerProvider } from './oauth-token.ts';
import type { Topology } from '../topology/schema.ts';
import type { Logger } from '../processors/types.ts';
import { installReadCommittedFilter } from './read-committed-filter.ts';
import type { KafkaObserver } from './types.ts';

// before any client fetches: kafkajs's own filter lets aborted records through (read-committed-filter.ts)
installReadCommittedFilter();

export function brokerList(brokers: string | string[]): string[] {
  return (Array.isArray(brokers) ? brokers : brokers.split(','))
    .map((b) => b.trim())
    .filter(Boolean);
}

/**
 * kafkajs logs through our structured logger at debug: its ERROR lines are mostly responses it retries (a
 * coordinator loading, a leader moving). FOLDSTREAM_KAFKAJS_LOG=warn|info raises its warnings and errors to that
 * level, for post-mortems of broker failures.
 */
function logCreator(log: Logger | undefined, observer: KafkaObserver | undefined) {
  const raised = process.env.FOLDSTREAM_KAFKAJS_LOG;
  return () =>
    ({ level, log: entry }: { level: number; log: { message: string; [k: string]: unknown } }) => {
      if (observer && level === logLevel.ERROR) countRetry(entry.message, observer);
      if (!log) return;
      const { message, timestamp: _t, logger: _l, ...fields } = entry;
      const f = { event: 'kafkajs', ...fields };
      const problem = level === logLevel.ERROR || level === logLevel.WARN;
      if (problem && raised === 'warn') log.warn(f, message);
      else if (problem && raised === 'info') log.info(f, message);
      else log.debug(f, message);
    };
}

/** kafkajs's CONCURRENT_TRANSACTIONS message (kafkajs/src/protocol/error.js, code 51) */
const CONCURRENT_TRANSACTIONS = 'another concurrent operation on the same transaction';

/**
 * kafkajs 2.2.4 has no retry hook: its producer logs every produce it retries at ERROR ("Failed to send messages:
 * <reason>", producer/sendMessages.js), AddPartitionsToTxn included, which is where CONCURRENT_TRANSACTIONS meets a
 * transaction that begins while the coordinator still completes the previous one. Those lines are counted.
 */
function countRetry(message: string, observer: KafkaObserver): void {
  if (!message.startsWith('Failed to send messages')) return;
  observer.transactionRetry(message.includes(CONCURRENT_TRANSACTIONS) ? 'concurrent_transactions' : 'other');
}

/** The client handle the rest of foldstream passes around; only src/kafka/ looks inside it. */
export type KafkaClient = Kafka;

export function createKafka(
  t: Pick<Topology, 'app' | 'kafka'>,
  opts: { baseDir?: string; log?: Logger; clientIdSuffix?: string; observer?: KafkaObserver } = {},
): KafkaClient {
  const k = t.kafka;
  const config: KafkaConfig = {
    clientId: `${k.clientId ?? t.app}${opts.clientIdSuffix ?? ''}`,
    brokers: brokerList(k.brokers),
    connectionTimeout: k.connectionTimeoutMs,
    requestTimeout: k.requestTimeoutMs,
    logLevel: opts.log ? logLevel.INFO : opts.observer ? logLevel.ERROR : logLevel.NOTHING,
    logCreator: logCreator(opts.log, opts.observer),
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5000 },
  };
  if (k.ssl === true) config.ssl = true;
  else if (k.ssl) {
    const file = (what: string, p: string) => {
      const path = resolve(opts.baseDir ?? '.', p);
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        throw new FoldstreamError('CONFIG_INVALID', `kafka.ssl.${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
          hint: 'Mount the file, or fix the path (relative to the topology file)',
        });
      }
    };
    const ssl: Record<string, unknown> = { rejectUnauthorized: k.ssl.rejectUnauthorized };
    if (k.ssl.ca) ssl.ca = [file('ca', k.ssl.ca)];
    if (k.ssl.cert) ssl.cert = file('cert', k.ssl.cert);
    if (k.ssl.key) ssl.key = file('key', k.ssl.key);
    if (k.ssl.passphrase !== undefined) {
      registerSecret(k.ssl.passphrase);
      ssl.passphrase = k.ssl.passphrase;
    }
    config.ssl = ssl;
  }
  const sasl = k.sasl;
  if (sasl?.mechanism === 'oauthbearer') {
    registerSecret(sasl.clientSecret);
    const provider = oauthBearerProvider(sasl);
    config.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: provider, authenticationProvider: oauthBearerAuthenticator(provider, sasl.clientId) } as SASLOptions;
  } else if (sasl) {
    registerSecret(sasl.password);
    config.sasl = { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
  }
  return new Kafka(config);
}
