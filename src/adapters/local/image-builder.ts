import { randomBytes } from 'node:crypto';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BakeryError, ImageBuildFailedError } from '../../errors.ts';
import type { BuildRecord, BuiltImage, ImageBuilder, ImageBuildStart, RecipeCatalog, TaskCallbacks } from '../../ports.ts';
import { loadRecipe, resolveLocalSources } from '../../recipes/recipe.ts';
import { runDocument, type StepEvent } from '../../recipes/toe.ts';
import { readJsonIfExists, sha256File, sha256Hex, writeJsonAtomic } from '../../util/fsx.ts';
import { listTree } from '../../zip/deterministic.ts';
import type { LocalHome } from './home.ts';

/** SHA-256 over a tree's paths, modes and contents: the identity of a runtime tree. */
export async function treeSha256(root: string): Promise<{ hex: string; size: number }> {
  const lines: string[] = [];
  let size = 0;
  for (const entry of await listTree(root)) {
    if (entry.kind === 'dir') {
      lines.push(`${entry.name}\0d`);
      continue;
    }
    size += entry.size;
    lines.push(`${entry.name}\0${entry.executable ? 'x' : '-'}\0${(await sha256File(entry.source)).hex}`);
  }
  return { hex: sha256Hex(lines.join('\n')), size };
}

/**
 * The local image builder: runs the recipe's component documents on this machine in
 * a fresh staging directory, keeps the result under `<home>/builds/<bakeKey>/`, and
 * reports completion through the task token, as the Image Builder event handler does in AWS.
 */
export class LocalImageBuilder implements ImageBuilder {
  private readonly home: LocalHome;
  private readonly recipes: RecipeCatalog;
  private readonly callbacks: TaskCallbacks;
  private readonly projectRoot: string;
  private readonly onStep: (event: StepEvent) => void;

  constructor(options: {
    home: LocalHome;
    recipes: RecipeCatalog;
    callbacks: TaskCallbacks;
    projectRoot: string;
    onStep?: (event: StepEvent) => void;
  }) {
    this.home = options.home;
    this.recipes = options.recipes;
    this.callbacks = options.callbacks;
    this.projectRoot = options.projectRoot;
    this.onStep = options.onStep ?? (() => {});
  }

  async start(request: ImageBuildStart): Promise<{ buildId: string }> {
    const buildId = `local-${request.bakeKey.slice(0, 16)}`;
    try {
      const image = await this.build(request);
      await this.callbacks.succeed(request.taskToken, JSON.parse(JSON.stringify(image)));
    } catch (error) {
      const name = error instanceof BakeryError ? error.name : new ImageBuildFailedError('').name;
      await this.callbacks.fail(request.taskToken, name, error instanceof Error ? error.message : String(error));
    }
    return { buildId };
  }

  private async build(request: ImageBuildStart): Promise<BuiltImage> {
    const buildDir = this.home.path('builds', request.bakeKey);
    const cached = await readJsonIfExists<BuiltImage>(path.join(buildDir, 'image.json'));
    if (cached && !request.rebuild) return { ...cached, cacheHit: true };

    const recipeDir = await this.recipes.find(request.recipe.name);
    if (!recipeDir) throw new ImageBuildFailedError(`recipe ${request.recipe.name} disappeared`);
    const recipe = await loadRecipe(recipeDir);
    const staging = this.home.path('builds', `.staging-${randomBytes(6).toString('hex')}`);
    const layerRoot = path.join(staging, 'layer');
    const startedAt = new Date().toISOString();
    try {
      const sources = resolveLocalSources(recipe, this.projectRoot);
      const parameters = { ...request.recipe.parameters, ...sources, LayerRoot: layerRoot };
      for (const doc of request.recipe.documents) {
        await runDocument(path.join(recipeDir, doc.path), parameters, { onStep: this.onStep, cwd: recipeDir });
      }
      const sourceChecksums: Record<string, string> = {};
      for (const [key, value] of Object.entries(sources)) {
        const file = await readFile(value).catch(() => undefined);
        if (file) sourceChecksums[key] = sha256Hex(file);
      }
      const buildRecord: BuildRecord = {
        recipe: request.recipe.name,
        bakeKey: request.bakeKey,
        documents: request.recipe.documents,
        parameters: request.recipe.parameters,
        sources: sourceChecksums,
        tools: { executor: 'bakery-local-toe/1', node: process.version, platform: `${process.platform}-${process.arch}` },
        startedAt,
        finishedAt: new Date().toISOString(),
      };
      const tree = await treeSha256(layerRoot);
      const image: BuiltImage = {
        bakeKey: request.bakeKey,
        cacheHit: false,
        imageArn: null,
        runtime: { uri: pathToFileURL(path.join(buildDir, 'layer')).href, sha256Hex: tree.hex, size: tree.size },
        buildRecord,
      };
      await writeJsonAtomic(path.join(staging, 'image.json'), image);
      // Swap the finished build into place; a failed build never replaces a good one.
      await rm(buildDir, { recursive: true, force: true });
      await rename(staging, buildDir);
      return image;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}
