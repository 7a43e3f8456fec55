#!/usr/bin/env node
// Runs the compiled CLI (npm install builds dist/ through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('foldstream is not built: run `npm run build` (npm install does it through `prepare`).');
  process.exit(1);
}
await import(compiled.href);
