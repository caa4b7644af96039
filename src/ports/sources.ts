/** Where a bake's input comes from: its spec and code, and the runtime recipes. */
import type { BakeSource } from '../state.ts';

/** Opens the source of a bake as a local directory holding the spec file. */
export interface SourceReader {
  open(source: BakeSource): Promise<{ specFile: string; where: string }>;
}

/** Where recipes (`layers/<name>/recipe.yml` and their component documents) live. */
export interface RecipeCatalog {
  /** Absolute directory of the recipe, or undefined when there is none of that name. */
  find(name: string): Promise<string | undefined>;
  list(): Promise<string[]>;
}
