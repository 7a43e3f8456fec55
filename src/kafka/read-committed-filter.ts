/**
 * A correct read_committed filter for kafkajs 2.2.4, installed into its fetch responses.
 *
 * A fetch answers, per partition, the records up to the last stable offset and the list of aborted transactions
 * among them (producer id, first offset). The broker lists them in the order they were aborted, not by first offset.
 * kafkajs (src/consumer/filterAbortedMessages.js) assumes first-offset order and takes at most one transaction off
 * the list per record, so when two producers write one partition and the transaction that began first is aborted
 * last, its records reach the consumer as if committed; a long list can also make it ignore a producer after its
 * abort marker, dropping committed records. Found by the chaos suite on a groupBy projection's repartition topic,
 * which every first-stage task writes to (docs/reliability.md; `test/chaos/repro/kafkajs-aborted-order.ts`).
 *
 * The fix follows the Java consumer: aborted transactions sorted by first offset; at each record, every transaction
 * that began at or before it marks its producer as aborted; that producer's transactional records are aborted until
 * its abort marker. kafkajs then receives the partition with an empty aborted list (its own filter does nothing)
 * and each aborted record flagged as a control record, which it drops while still counting its offset, as it does
 * for transaction markers, so the consumer's position moves past them.
 */
import { createRequire } from 'node:module';

export interface FetchedMessage {
  offset: string;
  key?: Buffer | null;
  isControlRecord?: boolean;
  batchContext?: { producerId?: string; inTransaction?: boolean };
}

export interface AbortedTransaction {
  producerId: string;
  firstOffset: string;
}

/** A control record whose key is version 0, type 0 marks an abort (type 1 a commit). */
function isAbortMarker(m: FetchedMessage): boolean {
  return m.isControlRecord === true && !!m.key && m.key.length >= 4 && m.key.readInt16BE(2) === 0;
}

/** The messages (in offset order) that belong to aborted transactions. */
export function abortedMessages(messages: readonly FetchedMessage[], aborted: readonly AbortedTransaction[]): Set<FetchedMessage> {
  const out = new Set<FetchedMessage>();
  if (aborted.length === 0) return out;
  const queue = [...aborted].sort((a, b) => {
    const d = BigInt(a.firstOffset) - BigInt(b.firstOffset);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  const abortedProducers = new Set<string>();
  let next = 0;
  for (const m of messages) {
    const offset = BigInt(m.offset);
    while (next < queue.length && BigInt(queue[next]!.firstOffset) <= offset) abortedProducers.add(queue[next++]!.producerId);
    const producerId = m.batchContext?.producerId;
    if (producerId === undefined) continue;
    if (isAbortMarker(m)) abortedProducers.delete(producerId);
    else if (!m.isControlRecord && m.batchContext?.inTransaction && abortedProducers.has(producerId)) out.add(m);
  }
  return out;
}

interface FetchPartition {
  abortedTransactions?: AbortedTransaction[] | null;
  messages?: FetchedMessage[];
}
interface FetchResponse {
  responses?: { partitions?: FetchPartition[] }[];
}

/** Applies the filter to a parsed fetch response in place (see the header). */
export function filterFetchResponse(data: FetchResponse): FetchResponse {
  for (const topic of data.responses ?? []) {
    for (const p of topic.partitions ?? []) {
      const list = p.abortedTransactions;
      if (!list || list.length === 0) continue;
      for (const m of abortedMessages(p.messages ?? [], list)) m.isControlRecord = true;
      p.abortedTransactions = [];
    }
  }
  return data;
}

const INSTALLED = Symbol.for('foldstream.readCommittedFilter');
/** Fetch versions with transactions (4 and later) that kafkajs 2.2.4 speaks. */
const FETCH_VERSIONS = [4, 5, 6, 7, 8, 9, 10, 11];

/**
 * Wraps `parse` of kafkajs's fetch response decoders. kafkajs looks `parse` up on the module's exports at every
 * request, so this works whenever it runs before the first fetch, whatever loaded kafkajs first. Idempotent.
 */
export function installReadCommittedFilter(): void {
  const require = createRequire(import.meta.url);
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== '2.2.4') {
    throw new Error(`foldstream patches kafkajs 2.2.4's read_committed filter; found kafkajs ${version}: check src/kafka/read-committed-filter.ts against it`);
  }
  for (const v of FETCH_VERSIONS) {
    const mod = require(`kafkajs/src/protocol/requests/fetch/v${v}/response.js`) as { parse: (d: unknown) => Promise<unknown>; [INSTALLED]?: true };
    if (mod[INSTALLED]) continue;
    const parse = mod.parse;
    mod.parse = async (decoded: unknown) => filterFetchResponse((await parse(decoded)) as FetchResponse);
    mod[INSTALLED] = true;
  }
}
