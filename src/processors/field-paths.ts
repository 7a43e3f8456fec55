/**
 * Dotted paths (`address.city`) into plain objects, as rules in topology.yaml name fields. Own properties only, so
 * any key round-trips ("__proto__", "constructor": serde/own-keys.ts).
 */
import { getOwn, setOwn } from '../serde/own-keys.ts';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function getPath(obj: Obj, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = getOwn(cur, part);
  }
  return cur;
}

/** Sets a field, creating (or replacing non-object) intermediate objects. */
export function setPath(obj: Obj, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    const next = getOwn(cur, part);
    if (isObj(next)) cur = next;
    else {
      const created: Obj = {};
      setOwn(cur, part, created);
      cur = created;
    }
  }
  setOwn(cur, parts[parts.length - 1]!, value);
}

export function unsetPath(obj: Obj, path: string): void {
  const parts = path.split('.');
  let cur: unknown = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isObj(cur)) return;
    cur = getOwn(cur, part);
  }
  if (isObj(cur)) delete cur[parts[parts.length - 1]!];
}

export function hasPath(obj: Obj, path: string): boolean {
  return getPath(obj, path) !== undefined;
}
