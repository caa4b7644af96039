import type { Json } from '../state.ts';

/** JSON with object keys sorted, so equal values give equal text (and equal hashes). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

function show(value: Json | undefined): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

/**
 * Differences between `expected` and `actual`, one readable line each
 * (`path: expected X, got Y`). In `subset` mode keys absent from `expected` are ignored.
 */
export function diffJson(expected: Json, actual: Json | undefined, mode: 'exact' | 'subset', at = '$'): string[] {
  if (expected !== null && typeof expected === 'object' && actual !== null && typeof actual === 'object' && actual !== undefined) {
    if (Array.isArray(expected) !== Array.isArray(actual)) return [`${at}: expected ${show(expected)}, got ${show(actual)}`];
    if (Array.isArray(expected) && Array.isArray(actual)) {
      const lines: string[] = [];
      if (mode === 'exact' && expected.length !== actual.length) {
        lines.push(`${at}: expected ${expected.length} items, got ${actual.length}`);
      }
      expected.forEach((item, i) => {
        lines.push(...diffJson(item, actual[i], mode, `${at}[${i}]`));
      });
      return lines;
    }
    const exp = expected as Record<string, Json>;
    const act = actual as Record<string, Json>;
    const lines: string[] = [];
    for (const key of Object.keys(exp)) lines.push(...diffJson(exp[key] as Json, act[key], mode, `${at}.${key}`));
    if (mode === 'exact') {
      for (const key of Object.keys(act)) if (!(key in exp)) lines.push(`${at}.${key}: unexpected ${show(act[key])}`);
    }
    return lines;
  }
  return canonicalJson(expected) === canonicalJson(actual) ? [] : [`${at}: expected ${show(expected)}, got ${show(actual)}`];
}
