/** What is newest for a recipe, for scheduled patch rebuilds and wildcard base images. */
import type { ResolvedRecipe } from '../state.ts';

/** The newest patch of the runtime line a recipe pins, as the parameter values that pin it. */
export interface RuntimePatch {
  parameters: Record<string, string>;
  /** Where the values were read (for the record), e.g. `https://nodejs.org/dist/index.json`. */
  source: string;
}

/**
 * What is newest for a recipe: the runtime line it pins (e.g. Node.js 22.x) and the
 * base image it builds on. The official release index in AWS; what is installed locally.
 */
export interface PatchResolver {
  /** The newest patch of the line the recipe pins; null when it pins no line this resolver knows. */
  runtime(recipe: ResolvedRecipe): Promise<RuntimePatch | null>;
  /**
   * The newest base image matching `name/pattern`, where an `x` node of the pattern
   * matches any number, as `name/<version>`; null when nothing can be resolved here
   * (a local build starts from the machine it runs on).
   */
  baseImage(pattern: string): Promise<string | null>;
}
