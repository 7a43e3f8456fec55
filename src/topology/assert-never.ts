/**
 * Where processor kinds (or any other closed union) are dispatched, the switch ends in `default: assertNever(x)`, so
 * adding a kind to the schema fails the type check at every place that would otherwise skip it silently.
 */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
