/**
 * `${VAR}` and `${VAR:-default}` in YAML scalars. A plain (unquoted) scalar that is a whole `${...}` takes the YAML
 * type of its value, so `partitions: ${PARTITIONS:-12}` is a number; quoted scalars stay strings. `$${` escapes.
 *
 * In a flow mapping (`{ replicationFactor: ${RF:-1} }`) the `{` of `${` would start a nested mapping, so references
 * are masked before parsing with placeholders of the same length (columns of errors stay right) and restored in
 * each scalar before interpolation.
 */
import { isScalar, parse as parseYaml, Scalar, visit, type Document } from 'yaml';

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
}

export function interpolateString(text: string, env: NodeJS.ProcessEnv, missing: (name: string) => void): string {
  return text.replace(REF, (whole, varName: string | undefined, fallback: string | undefined) => {
    if (whole === '$${') return '${';
    const value = env[varName!];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    missing(varName!);
    return '';
  });
}

/** Rewrites every scalar of the document in place; returns the variables that were unset and had no default. */
export function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv = process.env, refs: string[] = []): MissingVariable[] {
  const missing: MissingVariable[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      const source = refs.length ? unmask(node.value, refs) : node.value;
      if (!source.includes('${')) return;
      const result = interpolateString(source, env, (name) =>
        missing.push({ name, range: [node.range?.[0] ?? 0, node.range?.[1] ?? 0] }),
      );
      const plain = node.type === Scalar.PLAIN || node.type === undefined;
      const whole = /^\$\{[^}]*\}$/.test(source.trim());
      if (plain && whole) {
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
