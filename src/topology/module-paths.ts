/** Where a module named in the topology lives on disk. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Resolves a module path relative to the topology's folder, trying .ts and .js when no extension is given. */
export function resolveModulePath(baseDir: string, path: string): string | undefined {
  const abs = resolve(baseDir, path);
  for (const candidate of [abs, `${abs}.ts`, `${abs}.js`, `${abs}.mjs`]) if (existsSync(candidate)) return candidate;
  return undefined;
}
