/**
 * A file of YAML test cases and the topology they run against: a `*.test.yaml` (its `topology:` key, or
 * topology.yaml in the same folder), or a topology file with a `tests:` section. Problems — bad YAML, unknown keys,
 * a missing topology, references to topics or processors that do not exist — are reported at file:line:col with the
 * same machinery as `foldstream validate`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap } from 'yaml';
import { ConfigError, type ConfigProblem } from '../../errors.ts';
import { maskReferences } from '../../topology/interpolate.ts';
import { dedupe, loadTopology, parseYaml, schemaProblems, type LoadedTopology, type Locator, type PathSegment } from '../../topology/load.ts';
import { TestCaseSchema, TestFileSchema, type TestCase } from '../../topology/tests-schema.ts';
import { checkReferences } from './references.ts';

export interface LocatedCase {
  case: TestCase;
  /** path of the case in its document, e.g. ['tests', 2] */
  path: PathSegment[];
}

export interface Suite {
  /** absolute path of the file holding the cases */
  file: string;
  loc: Locator | undefined;
  topology: LoadedTopology | undefined;
  cases: LocatedCase[];
  problems: ConfigProblem[];
}

const located = (cases: TestCase[]): LocatedCase[] => cases.map((c, i) => ({ case: c, path: ['tests', i] }));

/** True when the YAML document is a topology (it has `app:`), rather than a test file. */
function isTopology(doc: { contents: unknown }): boolean {
  return isMap(doc.contents) && doc.contents.has('app');
}

export function loadSuite(file: string, env: NodeJS.ProcessEnv = process.env): Suite {
  const path = resolve(file);
  const failed = (problems: ConfigProblem[], loc?: Locator): Suite => ({ file: path, loc, topology: undefined, cases: [], problems: dedupe(problems) });
  if (!existsSync(path)) return failed([{ file: path, line: 1, col: 1, path: '', message: 'file not found' }]);
  // masked as the topology loader does, so ${VAR} in flow mappings parses and columns stay right
  const { doc, loc, problems: syntax } = parseYaml(maskReferences(readFileSync(path, 'utf8')).text, path);
  if (syntax.length) return failed(syntax, loc);

  if (isTopology(doc)) {
    const topology = loadOrProblems(path, env);
    if ('problems' in topology) return failed(topology.problems, loc);
    return withReferences({ file: path, loc, topology, cases: located(topology.topology.tests), problems: [] });
  }

  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return failed([loc.problem([], 'expected a mapping with tests: (and topology:)')], loc);
  const parsed = TestFileSchema.safeParse(raw);
  const problems = parsed.success ? [] : schemaProblems(parsed.error.issues, raw, loc, TestFileSchema);
  // with a problem somewhere, the cases that are valid are still checked against the topology, so one run lists all
  const valid = parsed.success ? { topology: parsed.data.topology, cases: located(parsed.data.tests) } : salvage(raw as Record<string, unknown>);
  const topologyFile = resolve(dirname(path), valid.topology ?? 'topology.yaml');
  if (!existsSync(topologyFile)) {
    const message = valid.topology
      ? `topology file ${topologyFile} not found (topology: is relative to this file)`
      : 'no topology.yaml next to this file; name the topology with `topology: path/to/topology.yaml`';
    return failed([...problems, loc.problem(valid.topology ? ['topology'] : [], message)], loc);
  }
  const topology = loadOrProblems(topologyFile, env);
  if ('problems' in topology) return failed([...problems, ...topology.problems], loc);
  const suite = withReferences({ file: path, loc, topology, cases: valid.cases, problems: [] });
  return problems.length ? failed([...problems, ...suite.problems], loc) : suite;
}

/** The valid parts of an invalid test file: its topology path and the cases that are valid on their own. */
function salvage(raw: Record<string, unknown>): { topology: string | undefined; cases: LocatedCase[] } {
  const cases = (Array.isArray(raw.tests) ? raw.tests : []).flatMap((c, i): LocatedCase[] => {
    const r = TestCaseSchema.safeParse(c);
    return r.success ? [{ case: r.data, path: ['tests', i] }] : [];
  });
  return { topology: typeof raw.topology === 'string' ? raw.topology : undefined, cases };
}

function loadOrProblems(file: string, env: NodeJS.ProcessEnv): LoadedTopology | { problems: ConfigProblem[] } {
  try {
    return loadTopology(file, { env });
  } catch (e) {
    if (e instanceof ConfigError) return { problems: e.problems };
    throw e;
  }
}

function withReferences(s: Suite): Suite {
  const problems = s.cases.flatMap((c) => checkReferences(c.case, c.path, s.topology!, s.loc!));
  return problems.length ? { ...s, cases: [], problems: dedupe(problems) } : s;
}
