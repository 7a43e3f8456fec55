/**
 * One markdown table of chaos runs from their JSON reports: `npx tsx test/chaos/summarize.ts [report.json ...]`
 * (default: every report in test/chaos/reports/, oldest first).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableHeader, tableRow, type RunReport } from './report.ts';

const dir = fileURLToPath(new URL('./reports/', import.meta.url));
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
const reports = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunReport).filter((r) => r.runId && r.chaos);
console.log([tableHeader(), ...reports.map(tableRow)].join('\n'));
