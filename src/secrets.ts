/**
 * The secrets of this process (Kafka passwords, OAuth client secrets, key passphrases, HTTP tokens), so that every
 * output can be scrubbed of them: log lines (log.ts), the CLI's stdout and stderr (cli/main.ts) and HTTP answers
 * (http/server.ts). This is the second wall: secrets are never put into messages in the first place (the topology
 * loader keeps them out of its problems, errors name the setting, not its value). docs/security.md.
 */

/** Shorter values are not treated as secrets: replacing them would garble ordinary text. */
const MIN_LENGTH = 4;
const REPLACEMENT = '[redacted]';

const known = new Set<string>();
let ordered: string[] = [];

/** Remembers a secret value; every output of this process is scrubbed of it from now on. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_LENGTH || known.has(value)) return;
  known.add(value);
  // the longest first, so a secret that contains another is replaced whole
  ordered = [...known].sort((a, b) => b.length - a.length);
}

/** The text with every registered secret (also URL-encoded or JSON-escaped) replaced. */
export function redactSecrets(text: string): string {
  if (ordered.length === 0) return text;
  let out = text;
  for (const s of ordered) {
    for (const form of forms(s)) if (out.includes(form)) out = out.split(form).join(REPLACEMENT);
  }
  return out;
}

function forms(s: string): string[] {
  const encoded = encodeURIComponent(s);
  const json = JSON.stringify(s).slice(1, -1);
  return [...new Set([s, encoded, json])];
}
