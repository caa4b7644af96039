import type { AliasMove, FunctionRegistry, PublishedVersions, ReleaseResult } from '../ports.ts';

/**
 * Release: move each function's alias to its new version, passing the revision we
 * read so a concurrent change fails instead of being overwritten. If one move fails,
 * the aliases already moved are put back (or removed, where this release created
 * them) before the error goes on.
 */
export async function release(input: { versions: PublishedVersions }, deps: { functions: FunctionRegistry }): Promise<ReleaseResult> {
  const moves: AliasMove[] = [];
  const undo: Array<{ name: string; alias: string; back: string | null; revisionId: string }> = [];
  try {
    for (const fn of input.versions.functions) {
      const current = await deps.functions.getAlias(fn.name, fn.alias);
      if (current?.version === fn.version) {
        moves.push({ name: fn.name, alias: fn.alias, from: current.version, to: fn.version, changed: false });
        continue;
      }
      const moved = await deps.functions.setAlias(fn.name, fn.alias, fn.version, current?.revisionId ?? null);
      undo.push({ name: fn.name, alias: fn.alias, back: current?.version ?? null, revisionId: moved.revisionId });
      moves.push({ name: fn.name, alias: fn.alias, from: current?.version ?? null, to: fn.version, changed: true });
    }
  } catch (error) {
    for (const step of undo.reverse()) {
      const put =
        step.back === null
          ? deps.functions.deleteAlias(step.name, step.alias, step.revisionId)
          : deps.functions.setAlias(step.name, step.alias, step.back, step.revisionId);
      await put.catch(() => undefined);
    }
    throw error;
  }
  return { functions: moves };
}

export interface UndoneMove {
  name: string;
  alias: string;
  /** The version the alias is back on; null when the alias was removed (the release had created it). */
  restored: string | null;
  /** Why the alias was left alone, when it was. */
  skipped: string | null;
}

/**
 * UndoRelease: a release happened but could not be recorded, so put every alias it
 * moved back where it was. An alias that moved again since is left alone (and said so):
 * only the release's own move is undone.
 */
export async function undoRelease(
  input: { release: ReleaseResult },
  deps: { functions: FunctionRegistry },
): Promise<{ functions: UndoneMove[] }> {
  const out: UndoneMove[] = [];
  for (const move of [...input.release.functions].reverse()) {
    if (!move.changed) continue;
    const current = await deps.functions.getAlias(move.name, move.alias);
    if (current?.version !== move.to) {
      out.push({
        name: move.name,
        alias: move.alias,
        restored: null,
        skipped: `it is on ${current?.version ?? 'nothing'} now, not ${move.to}`,
      });
      continue;
    }
    if (move.from === null) await deps.functions.deleteAlias(move.name, move.alias, current.revisionId);
    else await deps.functions.setAlias(move.name, move.alias, move.from, current.revisionId);
    out.push({ name: move.name, alias: move.alias, restored: move.from, skipped: null });
  }
  return { functions: out.reverse() };
}
