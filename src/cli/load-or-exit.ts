import { ConfigError, formatProblem } from '../errors.ts';
import { loadTopology, type LoadedTopology, type ParseOptions } from '../topology/load.ts';

/** Loads a topology for a CLI command; prints every problem and exits 1 when it is invalid. */
export function loadTopologyOrExit(file: string, opts: ParseOptions = {}): LoadedTopology {
  try {
    return loadTopology(file, opts);
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const p of e.problems) console.error(formatProblem(p));
      console.error(`${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}; nothing was sent to Kafka.`);
      process.exit(1);
    }
    throw e;
  }
}
