/** The verifier must share no code with what it verifies: files under test/chaos/verify/ import only Node, kafkajs, msgpackr and each other. */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('./verify/', import.meta.url));
const ALLOWED = /^(node:.+|kafkajs|msgpackr|\.\/[a-z0-9-]+\.ts)$/;

test('the verifier imports nothing from src/, the workloads or the processors', (t) => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  t.true(files.length >= 5);
  let checked = 0;
  for (const f of files) {
    const text = readFileSync(DIR + f, 'utf8');
    const specifiers = [
      ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]/gm),
      ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
      ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
    ].map((m) => m[1]!);
    for (const s of specifiers) {
      t.regex(s, ALLOWED, `${f} imports ${s}`);
      checked++;
    }
  }
  t.true(checked >= 10, 'the import scan found too few imports to be working');
});
