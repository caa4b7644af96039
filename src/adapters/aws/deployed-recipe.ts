import { RecipeError, UnknownRecipeError } from '../../errors.ts';
import type { ImageBuilder, ImageBuildStart, RecipeCatalog } from '../../ports.ts';
import { loadRecipe } from '../../recipes/recipe.ts';

/** Whether `wanted` is an image the deployed `parentImage` may start from (`x` nodes match any number). */
export function imageMatches(parentImage: string, wanted: string): boolean {
  if (parentImage === wanted) return true;
  const split = (image: string) => [image.slice(0, image.lastIndexOf('/')), image.slice(image.lastIndexOf('/') + 1).split('.')] as const;
  const [name, nodes] = split(parentImage);
  const [wantedName, wantedNodes] = split(wanted);
  return name === wantedName && nodes.length === wantedNodes.length && nodes.every((n, i) => n === 'x' || n === wantedNodes[i]);
}

/**
 * The AWS image pipeline builds the recipe it was deployed with: Image Builder takes no
 * parameters per build, so the component gets recipe.yml's pins and its parent image.
 * A bake asking for anything else (a spec's `runtime.parameters`, or a scheduled bake
 * that found a newer Node.js patch) would get an image of the deployed pins recorded
 * under its own. This refuses such a build, naming what differs and what to do, so the
 * bake fails (recorded, notified) instead of lying. The deployed recipe.yml is the one
 * packaged with the function (RECIPES_DIR), the same file the pipeline was deployed from.
 */
export class DeployedRecipeImageBuilder implements ImageBuilder {
  private readonly inner: ImageBuilder;
  private readonly recipes: RecipeCatalog;

  constructor(inner: ImageBuilder, recipes: RecipeCatalog) {
    this.inner = inner;
    this.recipes = recipes;
  }

  async start(request: ImageBuildStart): Promise<{ buildId: string }> {
    const { recipe } = request;
    const dir = await this.recipes.find(recipe.name);
    if (!dir) throw new UnknownRecipeError(`recipe "${recipe.name}" is not deployed with this stack`);
    const deployed = await loadRecipe(dir);
    const differences = Object.entries(recipe.parameters)
      .filter(([name, value]) => deployed.parameters[name] !== value)
      .map(([name, value]) => `${name} ${value} (deployed: ${deployed.parameters[name] ?? 'none'})`);
    if (recipe.baseImage !== undefined && !imageMatches(deployed.baseImage, recipe.baseImage)) {
      differences.push(`baseImage ${recipe.baseImage} (deployed: ${deployed.baseImage})`);
    }
    if (differences.length) {
      throw new RecipeError(
        `the image pipeline builds recipe "${recipe.name}" as deployed, and this bake asks for ${differences.join(', ')}`,
        {
          hint: `Pin these values in layers/${recipe.name}/recipe.yml (and its aws sources, such as the Node.js URL), deploy, and bake again.`,
        },
      );
    }
    return this.inner.start(request);
  }
}
