import type { AliasMove, FunctionRegistry, PublishedVersions, ReleaseResult } from '../ports.ts';

/**
 * Release: move each function's alias to its new version, passing the revision we
 * read so a concurrent change fails instead of being overwritten. If one move fails,
 * the aliases already moved are put back before the error goes on.
 */
export async function release(input: { versions: PublishedVersions }, deps: { functions: FunctionRegistry }): Promise<ReleaseResult> {
  const moves: AliasMove[] = [];
  const undo: Array<{ name: string; alias: string; version: string; revisionId: string }> = [];
  try {
    for (const fn of input.versions.functions) {
      const current = await deps.functions.getAlias(fn.name, fn.alias);
      if (current?.version === fn.version) {
        moves.push({ name: fn.name, alias: fn.alias, from: current.version, to: fn.version, changed: false });
        continue;
      }
      const moved = await deps.functions.setAlias(fn.name, fn.alias, fn.version, current?.revisionId ?? null);
      if (current) undo.push({ name: fn.name, alias: fn.alias, version: current.version, revisionId: moved.revisionId });
      moves.push({ name: fn.name, alias: fn.alias, from: current?.version ?? null, to: fn.version, changed: true });
    }
  } catch (error) {
    for (const back of undo.reverse()) {
      await deps.functions.setAlias(back.name, back.alias, back.version, back.revisionId).catch(() => undefined);
    }
    throw error;
  }
  return { functions: moves };
}
