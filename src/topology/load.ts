/**
 * Reads topology.yaml: YAML (keeping positions) → env interpolation → schema → cross-checks. Every problem is
 * collected and reported at once with file:line:col; nothing here touches Kafka.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { crossCheck } from './cross-check.ts';
import { interpolateDocument, maskReferences } from './interpolate.ts';
import { EXTENSION_PREFIX, HttpSchema, ModulesSchema, ProcessingSchema, ProcessorSchema, StoreSchema, TopicSchema, TopologySchema, UpcasterSchema, type Topology } from './schema.ts';
import { closest } from './suggest.ts';

export interface LoadedTopology {
  topology: Topology;
  /** absolute path of the file */
  file: string;
  /** folder that relative paths (modules, stateDir) resolve against */
  baseDir: string;
  /** positions of the file's nodes, for problems found after loading (a module's exports) */
  loc?: Locator;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** Finds positions of YAML nodes by document path. */
export class Locator {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  position(offset: number): { line: number; col: number } {
    const p = this.lines.linePos(offset);
    return { line: p.line, col: p.col };
  }

  /** An alias as the node it refers to (where its value is written). */
  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /**
   * The pairs of a map as its value has them: its own, then those merge keys (`<<: *anchor`, `<<: [*a, *b]`) bring in,
   * in YAML's order (an own key wins over a merged one, an earlier merged map over a later one). A merged pair points
   * at the anchored map, where its value is written.
   */
  private pairsOf(map: YAMLMap, depth = 0): Pair[] {
    const own = map.items.filter((it) => !isMergeKey(it.key));
    if (depth > 20) return own;
    const merged = map.items
      .filter((it) => isMergeKey(it.key))
      .flatMap((it) => {
        const value = this.resolve(it.value);
        const sources = isSeq(value) ? value.items.map((x) => this.resolve(x)) : [value];
        return sources.flatMap((m) => (isMap(m) ? this.pairsOf(m, depth + 1) : []));
      });
    return [...own, ...merged];
  }

  private pair(map: YAMLMap, key: PathSegment): Pair | undefined {
    return this.pairsOf(map).find((it) => (isScalar(it.key) ? it.key.value : it.key) === key);
  }

  /** The deepest existing node on the path (and whether it is the node itself). */
  node(path: readonly PathSegment[]): { node: Node | undefined; exact: boolean } {
    let current: unknown = this.resolve(this.doc.contents);
    let exact = true;
    for (const seg of path) {
      let next: unknown;
      if (isMap(current)) next = this.pair(current, seg)?.value;
      else if (isSeq(current) && typeof seg === 'number') next = current.get(seg, true);
      next = this.resolve(next);
      if (next === undefined || next === null) {
        exact = false;
        break;
      }
      current = next;
    }
    return { node: (current ?? undefined) as Node | undefined, exact };
  }

  /** The key node of `key` in the map at `path` (for unknown keys). */
  keyNode(path: readonly PathSegment[], key: string): Node | undefined {
    const { node } = this.node(path);
    if (!isMap(node)) return undefined;
    const pair = this.pair(node, key);
    return pair && isScalar(pair.key) ? pair.key : undefined;
  }

  problem(path: readonly PathSegment[], message: string, suggestion?: string, at?: Node): ConfigProblem {
    const node = at ?? this.node(path).node;
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.position(offset);
    const p: ConfigProblem = { file: this.file, line, col, path: formatPath(path), message };
    if (suggestion) p.suggestion = suggestion;
    return p;
  }

  /** Keys present in the map at `path`, for suggestions. */
  keysAt(path: readonly PathSegment[]): string[] {
    const { node } = this.node(path);
    if (!isMap(node)) return [];
    return this.pairsOf(node).flatMap((it) => (isPair(it) && isScalar(it.key) ? [String(it.key.value)] : []));
  }
}

/** The key of a YAML merge (`<<: *anchor`); with `merge: true` the yaml package reads it as a symbol. */
function isMergeKey(key: unknown): boolean {
  const value = isScalar(key) ? key.value : key;
  return value === '<<' || (typeof value === 'symbol' && value.description === '<<');
}

function describeReceived(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** Keys the schema allows at a path (walking the zod definition), so a misspelt key gets a suggestion. */
function schemaKeysFor(path: readonly PathSegment[], raw: unknown, root: z.ZodType): string[] {
  // Walk the zod schema along the path to find the object shape that rejected a key.
  let schema: unknown = root;
  for (let i = 0; i <= path.length; i++) {
    schema = unwrap(schema, valueAt(raw, path.slice(0, i)));
    if (i === path.length) break;
    const seg = path[i]!;
    const def = (schema as { def?: Record<string, unknown> } | undefined)?.def;
    if (!def) return [];
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'record') schema = def.valueType;
    else if (def.type === 'array') schema = def.element;
    else return [];
  }
  const def = (schema as { def?: Record<string, unknown> } | undefined)?.def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

function unwrap(schema: unknown, value: unknown): unknown {
  for (let guard = 0; guard < 20; guard++) {
    const def = (schema as { def?: Record<string, unknown> } | undefined)?.def;
    if (!def) return schema;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') {
      schema = def.innerType;
    } else if (def.type === 'union') {
      const options = def.options as unknown[];
      const disc = (def as { discriminator?: string }).discriminator;
      if (disc && value && typeof value === 'object') {
        const want = (value as Record<string, unknown>)[disc];
        const match = options.find((o) => {
          const shape = (o as { def?: { shape?: Record<string, { def?: { values?: unknown[] } }> } }).def?.shape;
          return shape?.[disc]?.def?.values?.includes(want);
        });
        schema = match ?? options.find((o) => (o as { def?: { type?: string } }).def?.type === 'object');
      } else {
        schema =
          options.find((o) => (o as { def?: { type?: string } }).def?.type === (Array.isArray(value) ? 'array' : 'object')) ??
          options[0];
      }
    } else return schema;
  }
  return schema;
}

function issueToProblems(issue: z.core.$ZodIssue, raw: unknown, loc: Locator, root: z.ZodType): ConfigProblem[] {
  const path = issue.path as PathSegment[];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const candidates = schemaKeysFor(path, raw, root);
      return issue.keys.map((key) => {
        const guess = closest(key, candidates);
        return loc.problem(
          [...path, key],
          `unknown key "${key}"`,
          guess ? `did you mean "${guess}"?` : candidates.length ? `expected one of: ${candidates.join(', ')}` : undefined,
          loc.keyNode(path, key),
        );
      });
    }
    case 'invalid_type': {
      const value = valueAt(raw, path);
      if (value === undefined) {
        const key = path[path.length - 1];
        return [loc.problem(path, `missing required key "${String(key)}" (expected ${issue.expected})`)];
      }
      return [loc.problem(path, `expected ${issue.expected}, got ${describeReceived(value)}`)];
    }
    case 'invalid_union': {
      const disc = (issue as { discriminator?: string; options?: unknown[] }).discriminator;
      if (disc) {
        const options = ((issue as { options?: unknown[] }).options ?? []).map(String);
        const value = valueAt(raw, path);
        const guess = typeof value === 'string' ? closest(value, options) : undefined;
        return [
          loc.problem(
            path,
            value === undefined ? `missing "${disc}"; expected one of: ${options.join(', ')}` : `unknown ${disc} ${JSON.stringify(value)}; expected one of: ${options.join(', ')}`,
            guess ? `did you mean "${guess}"?` : undefined,
          ),
        ];
      }
      // A union of shapes: report the branch that got furthest (fewest issues).
      const branches = (issue as { errors?: z.core.$ZodIssue[][] }).errors ?? [];
      const best = [...branches].sort((a, b) => a.length - b.length)[0];
      if (best && best.length > 0) {
        return best.flatMap((sub) => issueToProblems({ ...sub, path: [...path, ...sub.path] } as z.core.$ZodIssue, raw, loc, root));
      }
      return [loc.problem(path, issue.message)];
    }
    case 'invalid_value':
      return [
        loc.problem(
          path,
          `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeReceived(valueAt(raw, path))}`,
          (() => {
            const v = valueAt(raw, path);
            const g = typeof v === 'string' ? closest(v, issue.values.map(String)) : undefined;
            return g ? `did you mean "${g}"?` : undefined;
          })(),
        ),
      ];
    default:
      return [loc.problem(path, issue.message.replace(/^Invalid input: /, '').replace(/^Too small: /, '').replace(/^Too big: /, ''))];
  }
}

/** Schema issues of a document as problems at the YAML nodes they are about; `root` is the schema that was applied. */
export function schemaProblems(issues: readonly z.core.$ZodIssue[], raw: unknown, loc: Locator, root: z.ZodType = TopologySchema): ConfigProblem[] {
  return issues.flatMap((issue) => issueToProblems(issue, raw, loc, root));
}

/**
 * Parses YAML keeping source positions (duplicate keys are errors); syntax errors come back as problems. Merge keys
 * (`<<: *anchor`) are YAML 1.1's, supported as most YAML tools do; a problem in a merged value points at the anchored
 * node where it is written.
 */
export function parseYaml(text: string, file: string): { doc: Document; loc: Locator; problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const loc = new Locator(file, doc, lines);
  const problems = doc.errors.map((e): ConfigProblem => ({ file, ...loc.position(e.pos[0]), path: '', message: `YAML: ${e.message.split('\n')[0]}` }));
  return { doc, loc, problems };
}

export interface ParseOptions {
  env?: NodeJS.ProcessEnv;
  /** check that module files exist (default true) */
  checkModules?: boolean;
}

/** Parses and validates topology text; throws ConfigError listing every problem. */
export function parseTopology(text: string, file: string, opts: ParseOptions = {}): LoadedTopology {
  const abs = resolve(file);
  const masked = maskReferences(text);
  const { doc, loc, problems } = parseYaml(masked.text, abs);
  if (problems.length) throw new ConfigError(problems);

  for (const m of interpolateDocument(doc, opts.env ?? process.env, masked.refs)) {
    const { line, col } = loc.position(m.range[0]);
    problems.push({
      file: abs,
      line,
      col,
      path: '',
      message: m.fileProblem ?? `environment variable ${m.name} is not set`,
      suggestion: m.fileProblem ? `mount the file, or set ${m.name} itself` : `set it (or ${m.name}_FILE to a file holding it), or give a default: \${${m.name}:-value}`,
    });
  }

  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ file: abs, line: 1, col: 1, path: '', message: 'expected a mapping with app, kafka, topics and processors' });
    throw new ConfigError(problems);
  }
  // top-level x-<name> keys hold what the file shares through anchors (`x-topic: &topic {...}`, then `<<: *topic`)
  for (const key of Object.keys(raw)) if (key.startsWith(EXTENSION_PREFIX)) delete (raw as Record<string, unknown>)[key];
  const parsed = TopologySchema.safeParse(raw);
  const baseDir = dirname(abs);
  const checkOpts = { baseDir, checkModules: opts.checkModules ?? true };
  if (!parsed.success) {
    problems.push(...schemaProblems(parsed.error.issues, raw, loc));
    // Cross-check what did parse too, so one run lists every problem.
    problems.push(...crossCheck(salvage(raw as Record<string, unknown>), loc, checkOpts));
    throw new ConfigError(dedupe(problems));
  }
  problems.push(...crossCheck(parsed.data, loc, checkOpts));
  if (problems.length) throw new ConfigError(dedupe(problems));
  return { topology: parsed.data, file: abs, baseDir, loc };
}

/**
 * The parts of an invalid document that are valid on their own, for cross-checks. A topic or store that failed the
 * schema is kept as a bare declaration so that references to it are not reported a second time.
 */
function salvage(raw: Record<string, unknown>): Topology {
  const entries = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v) : []);
  const topics: Topology['topics'] = {};
  for (const [alias, decl] of entries(raw.topics)) {
    const ok = TopicSchema.safeParse(decl);
    topics[alias] = ok.success
      ? ok.data
      : ({ name: (decl as { name?: string } | null)?.name ?? alias, partitions: undefined } as unknown as Topology['topics'][string]);
  }
  const stores: Topology['stores'] = {};
  for (const [name, decl] of entries(raw.stores)) {
    const ok = StoreSchema.safeParse(decl);
    stores[name] = ok.success ? ok.data : { changelog: true };
  }
  const upcasters: Topology['upcasters'] = [];
  for (const u of Array.isArray(raw.upcasters) ? raw.upcasters : []) {
    const r = UpcasterSchema.safeParse(u);
    if (r.success) upcasters.push(r.data);
  }
  // Keep indices stable for error paths: replace invalid processors with a placeholder that is never checked.
  const processors = Array.isArray(raw.processors)
    ? raw.processors.map((x) => {
        const r = ProcessorSchema.safeParse(x);
        return r.success ? r.data : undefined;
      })
    : [];
  const http = HttpSchema.safeParse(raw.http ?? {});
  const modules = ModulesSchema.safeParse(raw.modules ?? {});
  const processing = ProcessingSchema.safeParse(raw.processing ?? {});
  return {
    app: typeof raw.app === 'string' ? raw.app : 'app',
    kafka: { brokers: 'localhost:9092', connectionTimeoutMs: 3000, requestTimeoutMs: 30000 },
    processing: processing.success ? processing.data : ProcessingSchema.parse({}),
    http: http.success ? http.data : HttpSchema.parse({}),
    modules: modules.success ? modules.data : ModulesSchema.parse({}),
    topics,
    stores,
    upcasters,
    processors: processors as Topology['processors'],
    tests: [],
  };
}

/** Drops repeated problems and sorts them by file and position. */
export function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const k = `${p.line}:${p.col}:${p.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

export function loadTopology(file: string, opts: ParseOptions = {}): LoadedTopology {
  const abs = resolve(file);
  if (!existsSync(abs)) {
    throw new ConfigError([
      { file: abs, line: 1, col: 1, path: '', message: 'file not found', suggestion: 'pass the path of your topology.yaml' },
    ]);
  }
  return parseTopology(readFileSync(abs, 'utf8'), abs, opts);
}
