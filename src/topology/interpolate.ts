/**
 * `${VAR}` and `${VAR:-default}` in YAML scalars. A plain (unquoted) scalar that is a whole `${...}` takes the YAML
 * type of its value, so `partitions: ${PARTITIONS:-12}` is a number; quoted scalars stay strings. `$${` escapes.
 *
 * In a flow mapping (`{ replicationFactor: ${RF:-1} }`) the `{` of `${` would start a nested mapping, so references
 * are masked before parsing with placeholders of the same length (columns of errors stay right) and restored in
 * each scalar before interpolation.
 *
 * `${VAR}` with VAR unset (or empty) and VAR_FILE set reads the file VAR_FILE names (its content without the last line
 * break): the way containers mount secrets. The value of a secret key (password, clientSecret, passphrase, token) stays
 * a string whatever it looks like, and is registered with src/secrets.ts so no output shows it.
 */
import { readFileSync } from 'node:fs';
import { isPair, isScalar, parse as parseYaml, Scalar, visit, type Document } from 'yaml';
import { registerSecret } from '../secrets.ts';

/** Keys whose values are secrets wherever they appear in a topology. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'clientSecret', 'passphrase', 'token']);

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

const FILL = '\uf8ff';
const TOKEN = /([\ue000-\uf8fe])\uf8ff*/g;

/** Replaces each `${...}` with a private-use placeholder of the same length. */
export function maskReferences(text: string): { text: string; refs: string[] } {
  const refs: string[] = [];
  const masked = text.replace(REF, (whole) => {
    if (whole === '$${' || refs.length >= 0xf8fe - 0xe000) return whole;
    const token = String.fromCharCode(0xe000 + refs.length) + FILL.repeat(whole.length - 1);
    refs.push(whole);
    return token;
  });
  return { text: masked, refs };
}

function unmask(value: string, refs: string[]): string {
  return value.replace(TOKEN, (token, head: string) => refs[head.charCodeAt(0) - 0xe000] ?? token);
}

export interface MissingVariable {
  name: string;
  range: [number, number];
  /** set when VAR_FILE names a file that cannot be read (the variable is otherwise unset) */
  fileProblem?: string;
}

/** The value of VAR, or of the file VAR_FILE names; a file that cannot be read is reported through `unreadable`. */
function variable(env: NodeJS.ProcessEnv, name: string, unreadable: (problem: string) => void): string | undefined {
  const value = env[name];
  if (value !== undefined && value !== '') return value;
  const file = env[`${name}_FILE`];
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    // the error code only: a message could quote the file
    unreadable(`${name}_FILE names ${file}, which cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    return '';
  }
}

export function interpolateString(
  text: string,
  env: NodeJS.ProcessEnv,
  missing: (name: string, fileProblem?: string) => void,
  seen: (value: string) => void = () => undefined,
): string {
  return text.replace(REF, (whole, varName: string | undefined, fallback: string | undefined) => {
    if (whole === '$${') return '${';
    let problem: string | undefined;
    const value = variable(env, varName!, (p) => (problem = p));
    if (problem !== undefined) {
      missing(varName!, problem);
      return '';
    }
    if (value !== undefined && value !== '') {
      seen(value);
      return value;
    }
    if (fallback !== undefined) return fallback;
    missing(varName!);
    return '';
  });
}

/** Rewrites every scalar of the document in place; returns the variables that were unset and had no default. */
export function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv = process.env, refs: string[] = []): MissingVariable[] {
  const missing: MissingVariable[] = [];
  visit(doc, {
    Scalar(key, node, path) {
      if (typeof node.value !== 'string') return;
      const parent = path[path.length - 1];
      const secret = key === 'value' && isPair(parent) && isScalar(parent.key) && SECRET_KEYS.has(String(parent.key.value));
      const source = refs.length ? unmask(node.value, refs) : node.value;
      if (!source.includes('${')) {
        if (secret) registerSecret(source);
        return;
      }
      const result = interpolateString(
        source,
        env,
        (name, fileProblem) => missing.push({ name, range: [node.range?.[0] ?? 0, node.range?.[1] ?? 0], ...(fileProblem ? { fileProblem } : {}) }),
        // a variable's value in a secret is a secret
        (value) => secret && registerSecret(value),
      );
      if (secret) registerSecret(result);
      const plain = node.type === Scalar.PLAIN || node.type === undefined;
      const whole = /^\$\{[^}]*\}$/.test(source.trim());
      if (plain && whole && !secret) {
        const typed: unknown = parseYaml(result === '' ? '""' : result);
        node.value = isScalar(typed) ? typed.value : typed;
        if (typeof node.value === 'object' && node.value !== null) node.value = result;
      } else {
        node.value = result;
      }
    },
  });
  return missing;
}
