import type { ImageBuilder, ResolvedBake } from '../ports.ts';
import { sha256Hex } from '../util/fsx.ts';
import { canonicalJson } from '../util/json.ts';

/**
 * The bake key: a SHA-256 over everything that determines the runtime artefact (the
 * recipe's files, its parameters with their pinned checksums, runtime and
 * architecture). Equal keys mean an equal artefact, so a build can be reused.
 */
export function bakeKey(recipe: ResolvedBake['recipe']): string {
  return sha256Hex(
    canonicalJson({
      v: 1,
      recipe: recipe.name,
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
