/**
 * Which foldstream a run tested: the folder the instances ran from, its git commit (when it is a checkout) and a hash
 * of every file under src/, so a report can be tied to the exact code even while src/ is being changed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export interface SourceFingerprint {
  root: string;
  commit: string | undefined;
  /** files under src/ that differ from the commit */
  uncommittedSrcFiles: number | undefined;
  srcSha1: string;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

export function sourceFingerprint(): SourceFingerprint {
  const root = resolve(import.meta.dirname, '../..');
  const h = createHash('sha1');
  for (const f of files(join(root, 'src')).sort()) h.update(relative(root, f)).update('\0').update(readFileSync(f));
  const git = (args: string[]) => {
    const r = spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const status = git(['status', '--porcelain', '--', 'src']);
  return { root, commit: git(['rev-parse', '--short', 'HEAD']), uncommittedSrcFiles: status === undefined ? undefined : status.split('\n').filter(Boolean).length, srcSha1: h.digest('hex').slice(0, 12) };
}
