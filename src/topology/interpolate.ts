/**
 * `${VAR}` and `${VAR:-default}` in YAML scalars. A plain (unquoted) scalar that is a whole `${...}` takes the YAML
 * type of its value, so `partitions: ${PARTITIONS:-12}` is a number; quoted scalars stay strings. `$${` escapes.
 */
import { isScalar, parse as parseYaml, Scalar, visit, type Document } from 'yaml';

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

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
export function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv = process.env): MissingVariable[] {
  const missing: MissingVariable[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const source = node.value;
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
