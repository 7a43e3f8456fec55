/**
 * Loads user modules named in topology.yaml, relative to the topology file. `.ts` modules are compiled on the fly
 * (tsx), so a team can keep its deciders and projections in TypeScript without a build step.
 */
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { FoldstreamError, errorMessage } from '../errors.ts';
import { resolveModulePath } from '../topology/module-paths.ts';

export type ModuleExports = Record<string, unknown>;

const cache = new Map<string, Promise<ModuleExports>>();

export async function loadModule(baseDir: string, path: string, what: string): Promise<ModuleExports> {
  const file = resolveModulePath(baseDir, path);
  if (!file) {
    throw new FoldstreamError('MODULE_INVALID', `${what}: module "${path}" not found (resolved against ${baseDir})`, {
      hint: 'module paths are relative to the topology file',
    });
  }
  let loading = cache.get(file);
  if (!loading) {
    const url = pathToFileURL(file).href;
    loading = (/\.[cm]?ts$/.test(file) ? tsImport(url, import.meta.url) : import(url)) as Promise<ModuleExports>;
    cache.set(file, loading);
  }
  try {
    const mod = await loading;
    // A CommonJS or default-exporting module: use its default export's members too.
    const def = mod.default;
    return def && typeof def === 'object' ? { ...(def as ModuleExports), ...mod } : mod;
  } catch (e) {
    cache.delete(file);
    throw new FoldstreamError('MODULE_INVALID', `${what}: module "${path}" failed to load: ${errorMessage(e)}`, {
      hint: 'fix the error in the module, or run it alone with `npx tsx <module>` to see it',
      cause: e,
    });
  }
}

export function requireFunction<F>(mod: ModuleExports, name: string, what: string, path: string): F {
  const f = mod[name];
  if (typeof f !== 'function') {
    throw new FoldstreamError('MODULE_INVALID', `${what}: module "${path}" has no exported function ${name}`, {
      hint: `export function ${name}(...) from the module`,
    });
  }
  return f as F;
}

/**
 * The module's `initialState` export (a value, or a function returning one) as a function giving a fresh state each
 * time: processor code may mutate the state it is given. `of` says whose state it is, for the message.
 */
export function requireInitialState(mod: ModuleExports, what: string, path: string, of: string): () => unknown {
  if (!('initialState' in mod) || mod.initialState === undefined) {
    throw new FoldstreamError('MODULE_INVALID', `${what}: module "${path}" has no export initialState`, {
      hint: `export const initialState = ... (a value, or a function returning one): the state of ${of}`,
    });
  }
  const initial = mod.initialState;
  return () => (typeof initial === 'function' ? (initial as () => unknown)() : structuredClone(initial));
}

export function optionalFunction<F>(mod: ModuleExports, name: string): F | undefined {
  const f = mod[name];
  return typeof f === 'function' ? (f as F) : undefined;
}
