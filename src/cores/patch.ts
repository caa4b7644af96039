import type { PatchResolver } from '../ports/patches.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { BakeRequest, PatchChange, ResolvedBake, ResolvedFunction, ResolvedRecipe } from '../state.ts';
import { treeSha256 } from '../zip/tree.ts';
import { bakeKey } from './image.ts';
import { type CheckedBakeInput, inspectBake, type ResolveDeps, resolvedFunctions, stageCode, stagedBake } from './resolve.ts';
import { functionInputSha256, liveEqualBakes } from './uptodate.ts';

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

export interface PatchDeps {
  patches: PatchResolver;
  ledger: Ledger;
  artefacts: ArtefactStore;
}

/**
 * The ResolveBake task: read and check the bake (spec, recipe), move the recipe's pins to
 * the newest patch where that applies, compute its bake key and each function's input
 * hash, and decide whether it is up to date (src/cores/uptodate.ts). An up-to-date bake
 * (not forced with `force` or `rebuild`) stages nothing: it names the code of the live
 * release, and the state machine ends it there, with nothing built, published or asked for.
 * Otherwise each function's code is zipped and staged.
 */
export async function resolveBakeTask(request: BakeRequest, deps: ResolveDeps & PatchDeps): Promise<ResolvedBake> {
  const decided = await decide(request, deps);
  if (decided.upToDate) return decided.upToDate;
  const { inspected, keyed, input } = decided;
  const code = await stageCode(inspected, deps);
  return { ...keyed(resolvedFunctions(inspected, (i) => code[i] as ResolvedFunction['code'], input)), upToDate: false, upToDateWith: [] };
}

/**
 * ResolveBake's decision alone: the resolved bake when it is up to date (exactly what
 * ResolveBake returns for it), else null, having staged nothing. `bakery bake` asks first
 * and ends an up-to-date bake without starting the state machine; any other bake runs it,
 * and its ResolveBake decides again. `checked`: the request's input as the caller has just
 * checked it (see {@link inspectBake}), so the decision does not read it again.
 */
export async function upToDateBake(
  request: BakeRequest,
  deps: ResolveDeps & PatchDeps,
  options: { checked?: CheckedBakeInput } = {},
): Promise<ResolvedBake | null> {
  return (await decide(request, deps, options.checked)).upToDate;
}

async function decide(request: BakeRequest, deps: ResolveDeps & PatchDeps, checked?: CheckedBakeInput) {
  const inspected = await inspectBake(request, deps, checked);
  const schedule = request.trigger.type === 'schedule';
  const { recipe, patched } = await applyPatches(inspected.recipe, schedule, deps.patches);
  const key = bakeKey(recipe);
  const inputs = await Promise.all(
    inspected.spec.functions.map(async (fn, index) =>
      functionInputSha256({
        codeTreeSha256: (await treeSha256(inspected.codeDirs[index] as string)).hex,
        fn,
        recipe,
        layer: inspected.spec.layer,
      }),
    ),
  );
  const input = (index: number) => inputs[index] as string;
  const forced = request.options?.force === true || request.options?.rebuild === true;
  const equal = forced
    ? null
    : await liveEqualBakes(
        { bakeKey: key, functions: inspected.spec.functions.map((fn, i) => ({ name: fn.name, alias: fn.alias, inputSha256: input(i) })) },
        deps,
      );
  const keyed = (functions: ResolvedFunction[]) => ({ ...stagedBake(request, inspected, functions), recipe, bakeKey: key, patched });
  const upToDate: ResolvedBake | null = equal
    ? {
        ...keyed(resolvedFunctions(inspected, (i) => equal.functions[i]?.code as ResolvedFunction['code'], input)),
        upToDate: true,
        upToDateWith: equal.bakeIds,
      }
    : null;
  return { inspected, keyed, input, upToDate };
}
