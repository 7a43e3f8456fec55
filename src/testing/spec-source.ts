/**
 * Where a given/when/then spec gets its topology: a file, or an object. It is loaded (and validated) once per spec;
 * each scenario runs on a fresh driver over it, so scenarios never see each other's records or state.
 */
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadTopology, parseTopology, type LoadedTopology } from '../topology/load.ts';
import type { TopologyInput } from '../topology/schema.ts';
import { TopologyTestDriver, type DriverOptions } from './topology-test-driver.ts';

export interface SpecSource {
  /** a topology file, or a topology object */
  topology: string | TopologyInput;
  /** the folder a topology object's module paths resolve against (default: the working directory) */
  baseDir?: string;
  driver?: DriverOptions;
}

/** A function giving the spec's topology, loaded (and validated) on first use. */
export function topologyLoader(source: SpecSource): () => LoadedTopology {
  let loaded: LoadedTopology | undefined;
  const env = source.driver?.env ? { env: source.driver.env } : {};
  return () =>
    (loaded ??=
      typeof source.topology === 'string'
        ? loadTopology(source.topology, env)
        : parseTopology(stringify(source.topology), join(resolve(source.baseDir ?? '.'), '(topology object).yaml'), env));
}

/** A function giving a fresh driver per call, over a topology loaded on first use. */
export function driverFactory(source: SpecSource): () => Promise<TopologyTestDriver> {
  const load = topologyLoader(source);
  return async () => TopologyTestDriver.fromLoaded(load(), source.driver ?? {});
}
