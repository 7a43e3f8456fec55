/**
 * Keys of plain data are data: a client-chosen id ("__proto__", "constructor", "prototype", anything) may become a
 * key of a state, a view or an event, and must round-trip exactly. `obj[key] = v` does not: with "__proto__" it sets
 * the prototype (an object) or does nothing (anything else), and `obj[key]` finds "constructor" on Object.prototype.
 * These two read and write own properties only.
 */

/** Sets an own, enumerable property, whatever the key. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}

/** An own property's value, or undefined (never one inherited from Object.prototype). */
export function getOwn(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
