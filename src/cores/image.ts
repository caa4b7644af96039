import type { ImageBuilder } from '../ports/image-build.ts';
import type { ResolvedBake } from '../state.ts';
import { sha256Hex } from '../util/fsx.ts';
import { canonicalJson } from '../util/json.ts';

/**
 * The bake key: a SHA-256 over everything that determines the runtime artefact, so equal
 * keys mean an equal artefact and a build can be reused:
 * - the base image the build starts from;
 * - the component documents (their paths and SHA-256), and every other file of the
 *   recipe (the runtime files the documents install);
 * - the parameters after the spec's overrides, which carry the pinned source checksums
 *   (e.g. `NodeSha256`) and versions;
 * - the recipe's name, runtime and architecture.
 * Where the pinned bytes are fetched from (`sources` in recipe.yml, which differ between
 * backends) is deliberately not part of it: the checksum decides whether they are right.
 */
export function bakeKey(recipe: ResolvedBake['recipe']): string {
  return sha256Hex(
    canonicalJson({
      v: 2,
      recipe: recipe.name,
      baseImage: recipe.baseImage ?? null,
      content: recipe.contentSha256Hex,
      documents: recipe.documents,
      parameters: recipe.parameters,
      runtime: recipe.runtime,
      architecture: recipe.architecture,
    }),
  );
}

/**
 * BuildImage (a callback task): start the build and return; the build's completion
 * resumes the execution through the task token.
 */
export async function startImageBuild(
  input: { bake: ResolvedBake; taskToken: string },
  deps: { imageBuilder: ImageBuilder },
): Promise<{ buildId: string; bakeKey: string }> {
  const key = bakeKey(input.bake.recipe);
  const { buildId } = await deps.imageBuilder.start({
    bakeId: input.bake.bakeId,
    bakeKey: key,
    rebuild: input.bake.rebuild,
    recipe: input.bake.recipe,
    taskToken: input.taskToken,
  });
  return { buildId, bakeKey: key };
}
