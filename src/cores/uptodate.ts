import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { BakeSpec, FunctionSpec } from '../spec.ts';
import type { ResolvedFunction, ResolvedRecipe } from '../state.ts';
import { sha256Hex } from '../util/fsx.ts';
import { canonicalJson } from '../util/json.ts';
import { expectedAliases } from './drift.ts';
import { manifestKey } from './manifest-keys.ts';
import type { ManifestFunction, PinManifest } from './record.ts';

/**
 * Is a bake up to date? One decision for every trigger (the CLI, an upload, the schedule),
 * made in ResolveBake before anything is zipped or stored: the state machine's
 * `IsUpToDate` choice and the CLI's "up to date" line both follow from it.
 *
 * It compares hashes only: the bake key (the runtime, src/cores/image.ts) and, per
 * function, {@link functionInputSha256} (its code tree and every setting that reaches the
 * published version), against what the pin manifest of the live release recorded.
 */

/** What of a function's input reaches the version bakery publishes. */
export interface FunctionInputs {
  /** SHA-256 of the code directory's tree (src/zip/tree.ts `treeSha256`): paths, exec bits, contents. */
  codeTreeSha256: string;
  fn: Pick<FunctionSpec, 'handler' | 'memorySize' | 'timeout' | 'environment' | 'layers'>;
  recipe: Pick<ResolvedRecipe, 'runtime' | 'architecture'>;
  layer: BakeSpec['layer'];
}

/**
 * The SHA-256 of a function's inputs: its code tree and its configuration (handler,
 * runtime, architecture, memory, timeout, environment with its values, the extra layers in
 * order, the runtime layer's name and description). The runtime itself is the bake key's.
 * Environment values are hashed, never stored, since they may be secrets. Validation cases
 * are not part of it: they check a version, they do not change it (`--force` re-validates).
 */
export function functionInputSha256(inputs: FunctionInputs): string {
  return sha256Hex(
    canonicalJson({
      v: 1,
      code: inputs.codeTreeSha256,
      handler: inputs.fn.handler,
      memorySize: inputs.fn.memorySize,
      timeout: inputs.fn.timeout,
      environment: inputs.fn.environment,
      layers: inputs.fn.layers,
      runtime: inputs.recipe.runtime,
      architecture: inputs.recipe.architecture,
      layer: { name: inputs.layer.name, description: inputs.layer.description ?? null },
    }),
  );
}

/** A function of the bake being decided: where it is released and the hash of its inputs. */
export interface CandidateFunction {
  name: string;
  alias: string;
  inputSha256: string;
}

/** The live releases a bake equals: their bake ids, and each function as the live release staged it. */
export interface LiveEqual {
  bakeIds: string[];
  /** Per candidate function (same order), the live version and the code that release staged. */
  functions: { name: string; alias: string; version: string; code: ResolvedFunction['code'] }[];
}

/**
 * The live releases `bake` equals, or null when it differs from them or any function was
 * never released by bakery: each function's alias is live (by the ledger) on a bake whose
 * manifest has the same bake key and, for that version, the same input hash. A manifest
 * from before input hashes were recorded never matches (the bake goes ahead and records them).
 */
export async function liveEqualBakes(
  bake: { bakeKey: string; functions: CandidateFunction[] },
  deps: { ledger: Ledger; artefacts: ArtefactStore },
): Promise<LiveEqual | null> {
  if (bake.functions.length === 0) return null;
  const live = expectedAliases(await deps.ledger.list());
  const manifests = new Map<string, Promise<PinManifest | undefined>>();
  const manifest = (bakeId: string) => {
    let found = manifests.get(bakeId);
    if (!found) {
      found = deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
      manifests.set(bakeId, found);
    }
    return found;
  };
  const functions: LiveEqual['functions'] = [];
  const bakeIds = new Set<string>();
  for (const fn of bake.functions) {
    const expected = live.find((e) => e.name === fn.name && e.alias === fn.alias);
    if (!expected?.bakeId) return null;
    const recorded = await manifest(expected.bakeId);
    if (recorded?.status !== 'released' || recorded.bakeKey !== bake.bakeKey) return null;
    const published: ManifestFunction | undefined = recorded.functions.find((f) => f.name === fn.name && f.version === expected.version);
    if (!published?.code || published.inputSha256 !== fn.inputSha256) return null;
    functions.push({ name: fn.name, alias: fn.alias, version: expected.version, code: published.code });
    bakeIds.add(expected.bakeId);
  }
  return { bakeIds: [...bakeIds].sort(), functions };
}
