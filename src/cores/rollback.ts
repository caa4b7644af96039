import { InputError, NotFoundError } from '../errors.ts';
import type { FunctionRegistry } from '../ports/lambda.ts';
import type { Ledger, LedgerEntry } from '../ports/storage.ts';
import type { Clock } from '../ports/system.ts';

/** A version a bake released to an alias, in ledger order. */
export interface ReleasedVersion {
  version: string;
  bakeId: string;
  at: string;
}

/** Every version the ledger says a bake released to `name:alias`, oldest first. */
export function releasedVersions(entries: LedgerEntry[], name: string, alias: string): ReleasedVersion[] {
  return entries.flatMap((e) =>
    e.type === 'released'
      ? e.functions.filter((m) => m.name === name && m.alias === alias).map((m) => ({ version: m.to, bakeId: e.bakeId, at: e.at }))
      : [],
  );
}

export interface RollbackResult {
  name: string;
  alias: string;
  from: string;
  to: string;
  /** The bake that released the version the alias is back on. */
  bakeId: string;
  /** False when the alias was already there, with all its traffic: nothing moved and nothing was recorded. */
  changed: boolean;
  /** Routing weights the alias had before (a gradual release cut short). */
  fromWeights: Record<string, number>;
}

/**
 * Pick the version to go back to. `to` is a bake id (the version that bake released to
 * this alias) or a version number; either must come from a release in the ledger.
 * Without `to`: the version released before the one that is live, so running it again
 * walks further back; if what is live was never released (moved by hand), the latest
 * released version.
 */
function chooseTarget(released: ReleasedVersion[], entries: LedgerEntry[], current: string, to: string | undefined, fn: string) {
  if (to !== undefined) {
    const byBake = released.filter((r) => r.bakeId === to).at(-1);
    if (byBake) return byBake;
    if (/^\d+$/.test(to)) {
      const byVersion = released.filter((r) => r.version === to).at(-1);
      if (byVersion) return byVersion;
      throw new InputError(`version ${to} of ${fn} was never released by a bake; refusing to point the alias at it`, {
        hint: `Released versions: ${[...new Set(released.map((r) => r.version))].join(', ')} (see \`bakery history\`).`,
      });
    }
    if (entries.some((e) => e.bakeId === to)) throw new InputError(`bake ${to} did not release ${fn}`);
    throw new NotFoundError(`no bake ${to} in the ledger, and it is not a version number`);
  }
  const lastLive = released.map((r) => r.version).lastIndexOf(current);
  const before = lastLive >= 0 ? released.slice(0, lastLive) : released;
  const target = [...before].reverse().find((r) => r.version !== current);
  if (!target) {
    throw new InputError(`nothing to roll back to: no bake released a version of ${fn} before version ${current}`, {
      hint: 'Only versions a bake released can be rolled back to (see `bakery history`).',
    });
  }
  return target;
}

/**
 * `bakery rollback`: point the alias back at a version an earlier bake released,
 * without rebuilding anything. Compare-and-swap on the alias revision read here, so a
 * concurrent move fails with AliasConflictError; the move is recorded in the ledger,
 * and undone if it cannot be.
 */
export async function rollback(
  input: { name: string; alias: string; to?: string; by: string },
  deps: { functions: FunctionRegistry; ledger: Ledger; clock: Clock },
): Promise<RollbackResult> {
  const fn = `${input.name}:${input.alias}`;
  const entries = await deps.ledger.list();
  const released = releasedVersions(entries, input.name, input.alias);
  if (!released.length) throw new NotFoundError(`no bake ever released ${fn}`, { hint: 'See `bakery history` for what was released.' });
  const current = await deps.functions.getAlias(input.name, input.alias);
  if (!current) throw new NotFoundError(`alias ${fn} does not exist`);
  const target = chooseTarget(released, entries, current.version, input.to, fn);

  const result: RollbackResult = {
    name: input.name,
    alias: input.alias,
    from: current.version,
    to: target.version,
    bakeId: target.bakeId,
    changed: true,
    fromWeights: current.weights,
  };
  if (current.version === target.version && Object.keys(current.weights).length === 0) return { ...result, changed: false };
  if (!(await deps.functions.getVersion(input.name, target.version))) {
    throw new NotFoundError(`version ${target.version} of ${input.name} (released by bake ${target.bakeId}) no longer exists`);
  }

  const moved = await deps.functions.setAlias(input.name, input.alias, target.version, current.revisionId);
  try {
    await deps.ledger.append({
      type: 'rolledBack',
      bakeId: target.bakeId,
      at: deps.clock.now().toISOString(),
      by: input.by,
      name: input.name,
      alias: input.alias,
      from: current.version,
      to: target.version,
      fromWeights: current.weights,
    });
  } catch (error) {
    // Every move is recorded: one that cannot be is put back.
    await deps.functions.setAlias(input.name, input.alias, current.version, moved.revisionId, current.weights).catch(() => undefined);
    throw error;
  }
  return result;
}
