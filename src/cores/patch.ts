import type { PatchResolver } from '../ports/patches.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { BakeRequest, PatchChange, ResolvedBake, ResolvedFunction, ResolvedRecipe } from '../state.ts';
import { expectedAliases } from './drift.ts';
import { bakeKey } from './image.ts';
import { manifestKey, type PinManifest } from './record.ts';
import { type ResolveDeps, resolveBake } from './resolve.ts';

/** `name/1.2.3` → its name and version nodes; undefined when the image has no `name/version` form. */
function splitImage(image: string): { name: string; nodes: string[] } | undefined {
  const slash = image.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const nodes = image.slice(slash + 1).split('.');
  if (nodes.length !== 3 || !nodes.every((n) => /^(\d+|x)$/.test(n))) return undefined;
  return { name: image.slice(0, slash), nodes };
}

/**
 * The base-image pattern to resolve: a wildcard version (`x.x.x`) always, since the build
 * takes the newest match anyway and the bake key should name the image it starts from;
 * for a scheduled bake, a pinned version's patch node too (`2025.6.0` → `2025.6.x`).
 */
export function baseImagePattern(image: string, schedule: boolean): string | undefined {
  const parsed = splitImage(image);
  if (!parsed) return undefined;
  const nodes = [...parsed.nodes];
  if (schedule && nodes[2] !== 'x') nodes[2] = 'x';
  return nodes.includes('x') ? `${parsed.name}/${nodes.join('.')}` : undefined;
}

/**
 * What a scheduled bake moved, as people read it: `node 22.23.3 → 22.23.4`,
 * `base image amazon-linux-2023-x86/2025.6.0 → amazon-linux-2023-x86/2025.7.0`. A
 * checksum that moves with its version (NodeSha256) is not listed on its own.
 */
export function describePatches(patched: PatchChange[]): string[] {
  const versions = new Set(patched.map((p) => p.field).filter((f) => /Version$/.test(f)));
  return patched
    .filter((p) => !(/Sha256$/.test(p.field) && versions.has(p.field.replace(/Sha256$/, 'Version'))))
    .map((p) => {
      const label =
        p.field === 'baseImage'
          ? 'base image'
          : p.field
              .replace(/^parameters\./, '')
              .replace(/Version$/, '')
              .toLowerCase() || p.field;
      return `${label} ${p.from ?? '(none)'} → ${p.to}`;
    });
}

/**
 * Move what a recipe pins to what is newest: the base image (see {@link baseImagePattern})
 * and, for a scheduled bake, the runtime line's newest patch as parameter overrides (on
 * top of the spec's own). Each change is listed; the bake key follows from the result.
 */
export async function applyPatches(
  recipe: ResolvedRecipe,
  schedule: boolean,
  resolver: PatchResolver,
): Promise<{ recipe: ResolvedRecipe; patched: PatchChange[] }> {
  const patched: PatchChange[] = [];
  let parameters = recipe.parameters;
  if (schedule) {
    const runtime = await resolver.runtime(recipe);
    for (const [name, value] of Object.entries(runtime?.parameters ?? {})) {
      const from = recipe.parameters[name] ?? null;
      if (from !== value) patched.push({ field: `parameters.${name}`, from, to: value });
    }
    if (runtime) parameters = { ...parameters, ...runtime.parameters };
  }
  let baseImage = recipe.baseImage;
  const pattern = baseImage === undefined ? undefined : baseImagePattern(baseImage, schedule);
  if (pattern) {
    const newest = await resolver.baseImage(pattern);
    if (newest && newest !== baseImage) {
      patched.push({ field: 'baseImage', from: baseImage ?? null, to: newest });
      baseImage = newest;
    }
  }
  return { recipe: { ...recipe, parameters, ...(baseImage === undefined ? {} : { baseImage }) }, patched };
}

/**
 * The bakes whose releases are live for every function of `bake`, when each has the
 * same bake key and the same code as `bake` (compared with the pin manifest of the bake
 * the ledger says each alias is on); null when any function differs or was never released.
 */
export async function liveEqualBakes(
  bake: { functions: ResolvedFunction[] },
  key: string,
  deps: { ledger: Ledger; artefacts: ArtefactStore },
): Promise<string[] | null> {
  const live = expectedAliases(await deps.ledger.list());
  const manifests = new Map<string, PinManifest | undefined>();
  const bakeIds = new Set<string>();
  for (const fn of bake.functions) {
    const expected = live.find((e) => e.name === fn.name && e.alias === fn.alias);
    if (!expected?.bakeId) return null;
    if (!manifests.has(expected.bakeId)) {
      manifests.set(expected.bakeId, await deps.artefacts.getJson<PinManifest>(manifestKey(expected.bakeId)));
    }
    const manifest = manifests.get(expected.bakeId);
    const recorded = manifest?.functions.find((f) => f.name === fn.name && f.version === expected.version);
    if (manifest?.bakeKey !== key || recorded?.codeSha256 !== fn.code.sha256Base64) return null;
    bakeIds.add(expected.bakeId);
  }
  return bake.functions.length ? [...bakeIds].sort() : null;
}

export interface PatchDeps {
  patches: PatchResolver;
  ledger: Ledger;
  artefacts: ArtefactStore;
}

/**
 * The ResolveBake task: resolve the bake (spec, recipe, staged code), move the recipe's
 * pins to the newest patch where that applies, and compute its bake key. A scheduled bake
 * (not forced with `rebuild`) whose key and code equal what is live is `upToDate`: the
 * state machine ends it there, with nothing built, published or asked for.
 */
export async function resolveBakeTask(request: BakeRequest, deps: ResolveDeps & PatchDeps): Promise<ResolvedBake> {
  const bake = await resolveBake(request, deps);
  const schedule = request.trigger.type === 'schedule';
  const { recipe, patched } = await applyPatches(bake.recipe, schedule, deps.patches);
  const key = bakeKey(recipe);
  const equal = schedule && !bake.rebuild ? await liveEqualBakes(bake, key, deps) : null;
  return { ...bake, recipe, bakeKey: key, upToDate: equal !== null, upToDateWith: equal ?? [], patched };
}
