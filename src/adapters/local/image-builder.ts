import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BakeryError, ImageBuildFailedError } from '../../errors.ts';
import type { TaskCallbacks } from '../../ports/callbacks.ts';
import type { ImageBuilder, ImageBuildStart } from '../../ports/image-build.ts';
import type { RecipeCatalog } from '../../ports/sources.ts';
import { loadRecipe, resolveLocalSources } from '../../recipes/recipe.ts';
import { EXECUTOR_VERSION, runDocument, type StepEvent, type StepResult } from '../../recipes/toe.ts';
import type { BuildRecord, BuiltImage, ResolvedRecipe } from '../../state.ts';
import { readJsonIfExists, sha256File, sha256Hex, writeJsonAtomic } from '../../util/fsx.ts';
import { currentOwner, ownerLiveness, type ProcessOwner } from '../../util/owner.ts';
import { listTree } from '../../zip/tree.ts';
import type { LocalHome } from './home.ts';
import { withFileLock } from './lock.ts';

/** SHA-256 over a tree's paths, modes and contents: the identity of a runtime tree. */

/** The owner record in a build's staging directory. */
const STAGING_OWNER = 'owner.json';
export async function treeSha256(root: string): Promise<{ hex: string; size: number; files: number }> {
  const lines: string[] = [];
  let size = 0;
  let files = 0;
  for (const entry of await listTree(root)) {
    if (entry.kind === 'dir') {
      lines.push(`${entry.name}\0d`);
      continue;
    }
    size += entry.size;
    files++;
    lines.push(`${entry.name}\0${entry.executable ? 'x' : '-'}\0${(await sha256File(entry.source)).hex}`);
  }
  return { hex: sha256Hex(lines.join('\n')), size, files };
}

/**
 * The record of a local build (`build-record.json`, and `buildRecord` in `image.json`):
 * what went in, what ran, and what came out.
 */
export interface LocalBuildRecord extends BuildRecord {
  format: 'bakery.build-record/1';
  backend: 'local';
  baseImage: string | null;
  runtime: string;
  architecture: string;
  /** Where each source was read from on this machine (`sources` holds the SHA-256 of what was read). */
  sourceLocations: Record<string, string>;
  /** Every step that ran, in order. */
  steps: Array<StepResult & { document: string }>;
  /** The runtime tree that was built. */
  tree: { sha256Hex: string; size: number; files: number };
  /** The machine the build ran on (the local stand-in for the base image). */
  host: { platform: string; kernel: string; os: string };
}

/** Where a build's files are: `<home>/builds/<bakeKey>/`. */
export interface BuildPaths {
  dir: string;
  /** The runtime tree (the layer's content). */
  tree: string;
  /** The BuiltImage (what BuildImage returns); the cache looks here. */
  image: string;
  /** The build record on its own. */
  record: string;
  /** Every step's output. */
  log: string;
}

/** What a local build needs: the bake key decides the cache entry, the recipe what runs. */
export interface LocalBuildRequest {
  /** The bake the build is for, named to build-step listeners ({@link LocalImageBuilder.onBuildStep}). */
  bakeId?: string;
  bakeKey: string;
  rebuild: boolean;
  recipe: ResolvedRecipe;
}

function firstLine(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 5000 }, (error, stdout) => resolve(error ? 'unavailable' : (stdout.split('\n')[0] ?? '').trim()));
  });
}

let toolVersions: Promise<Record<string, string>> | undefined;

/** Versions of what runs a local build: this executor, Node.js, and the tools the documents call. */
function localToolVersions(): Promise<Record<string, string>> {
  toolVersions ??= (async () => ({
    executor: EXECUTOR_VERSION,
    node: process.version,
    bash: await firstLine('bash', ['--version']),
    coreutils: await firstLine('sha256sum', ['--version']),
    tar: await firstLine('tar', ['--version']),
  }))();
  return toolVersions;
}

async function hostInfo(): Promise<LocalBuildRecord['host']> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
  return { platform: `${process.platform}-${process.arch}`, kernel: os.release(), os: pretty ?? 'unknown' };
}

/** SHA-256 of a local source: of the file, or of the tree when it is a directory. */
async function sourceSha256(location: string): Promise<string> {
  const info = await stat(location).catch(() => undefined);
  if (!info) return 'missing';
  if (info.isDirectory()) return (await treeSha256(location)).hex;
  return (await sha256File(location)).hex;
}

function logBlock(event: StepEvent): string {
  const head = `== ${event.document} › ${event.phase} › ${event.step} (${event.action}): ${event.status}, attempt ${event.attempt}/${event.maxAttempts}, ${((event.durationMs ?? 0) / 1000).toFixed(1)} s`;
  const body = [event.error, event.output].filter((t): t is string => !!t?.trim()).join('\n');
  return `${head}\n${body ? `${body.trimEnd()}\n` : ''}`;
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

  private readonly stepListeners = new Set<(bakeId: string | null, event: StepEvent) => void>();

  /** Hear every build step as it runs, with the bake it is for (the dashboard of `bakery serve`). */
  onBuildStep(listener: (bakeId: string | null, event: StepEvent) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
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

  paths(bakeKey: string): BuildPaths {
    const dir = this.home.path('builds', bakeKey);
    return {
      dir,
      tree: path.join(dir, 'layer'),
      image: path.join(dir, 'image.json'),
      record: path.join(dir, 'build-record.json'),
      log: path.join(dir, 'build.log'),
    };
  }

  /**
   * The earlier build with this key, if its tree still has the recorded SHA-256 (a tree
   * changed or damaged since is not reused).
   */
  async cached(bakeKey: string): Promise<BuiltImage | undefined> {
    const paths = this.paths(bakeKey);
    const image = await readJsonIfExists<BuiltImage>(paths.image);
    if (!image) return undefined;
    const tree = await treeSha256(paths.tree).catch(() => undefined);
    return tree?.hex === image.runtime.sha256Hex ? image : undefined;
  }

  /**
   * Put a finished build in place under the bake key's lock; a failed build never gets
   * here, so it never replaces a good one. A good tree in place is never deleted for
   * one with the same content, which a concurrent bake may be packaging: a cold build
   * that lost the race to another of the same key hands back the winner's build, and a
   * rebuild that made the same tree (builds are reproducible) only updates its records.
   */
  private install(request: LocalBuildRequest, staging: string, image: BuiltImage): Promise<BuiltImage> {
    const paths = this.paths(request.bakeKey);
    return withFileLock(paths.dir, async () => {
      const current = await this.cached(request.bakeKey);
      if (current && !request.rebuild) return { ...current, cacheHit: true };
      if (current?.runtime.sha256Hex === image.runtime.sha256Hex) {
        await writeFile(paths.log, await readFile(path.join(staging, 'build.log')));
        await writeJsonAtomic(paths.record, image.buildRecord);
        await writeJsonAtomic(paths.image, image);
        return image;
      }
      await rm(paths.dir, { recursive: true, force: true });
      await rm(path.join(staging, STAGING_OWNER), { force: true });
      await rename(staging, paths.dir);
      return image;
    });
  }

  /**
   * Remove the staging directories of builds whose process is gone (killed mid-build: a
   * build that ends, well or not, removes its own). One without an owner record yet is
   * left for an hour, since its build may have only just started.
   */
  private async sweepStaging(): Promise<void> {
    const builds = this.home.path('builds');
    for (const name of await readdir(builds).catch(() => [] as string[])) {
      if (!name.startsWith('.staging-')) continue;
      const dir = path.join(builds, name);
      const owner = await readJsonIfExists<ProcessOwner>(path.join(dir, STAGING_OWNER)).catch(() => undefined);
      const abandoned = owner
        ? ownerLiveness(owner) === 'dead'
        : Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now()) > 3600_000;
      if (abandoned) await rm(dir, { recursive: true, force: true });
    }
  }

  /** Build the runtime tree (or reuse the earlier build with the same key unless `rebuild`). */
  async build(request: LocalBuildRequest): Promise<BuiltImage> {
    if (!request.rebuild) {
      const cached = await this.cached(request.bakeKey);
      if (cached) return { ...cached, cacheHit: true };
    }
    const paths = this.paths(request.bakeKey);
    const recipeDir = await this.recipes.find(request.recipe.name);
    if (!recipeDir) throw new ImageBuildFailedError(`recipe ${request.recipe.name} disappeared`);
    const recipe = await loadRecipe(recipeDir);
    await mkdir(this.home.path('builds'), { recursive: true });
    await this.sweepStaging();
    const staging = this.home.path('builds', `.staging-${randomBytes(6).toString('hex')}`);
    const layerRoot = path.join(staging, 'layer');
    const workDir = path.join(staging, 'work');
    await mkdir(workDir, { recursive: true });
    // Whose build this is: a process killed mid-build leaves its staging, which the next build removes.
    await writeJsonAtomic(path.join(staging, STAGING_OWNER), currentOwner());
    const startedAt = new Date().toISOString();
    const log: string[] = [];
    const steps: LocalBuildRecord['steps'] = [];
    try {
      const sources = resolveLocalSources(recipe, this.projectRoot);
      const parameters = { ...request.recipe.parameters, ...sources, LayerRoot: layerRoot, WorkDir: workDir };
      for (const doc of request.recipe.documents) {
        const file = path.join(recipeDir, doc.path);
        const run = await runDocument(file, parameters, {
          cwd: workDir,
          // The staging directory stands for the build instance: file actions stay in it,
          // and read only it, the recipe and the sources the recipe declares.
          root: staging,
          readable: [recipeDir, ...Object.values(sources)],
          label: path.relative(this.projectRoot, file) || file,
          onStep: (event) => {
            if (event.status !== 'started' && event.status !== 'retrying') log.push(logBlock(event));
            else if (event.status === 'retrying')
              log.push(`== ${event.document} › ${event.phase} › ${event.step}: attempt ${event.attempt}\n`);
            this.onStep(event);
            for (const listener of this.stepListeners) listener(request.bakeId ?? null, event);
          },
        });
        steps.push(...run.steps.map((s) => ({ document: doc.path, ...s })));
      }
      const sourceChecksums: Record<string, string> = {};
      for (const [key, location] of Object.entries(sources)) sourceChecksums[key] = await sourceSha256(location);
      const tree = await treeSha256(layerRoot);
      const buildRecord: LocalBuildRecord = {
        format: 'bakery.build-record/1',
        backend: 'local',
        recipe: request.recipe.name,
        bakeKey: request.bakeKey,
        baseImage: request.recipe.baseImage ?? null,
        runtime: request.recipe.runtime,
        architecture: request.recipe.architecture,
        documents: request.recipe.documents,
        parameters: request.recipe.parameters,
        sources: sourceChecksums,
        sourceLocations: sources,
        tools: await localToolVersions(),
        host: await hostInfo(),
        steps,
        tree: { sha256Hex: tree.hex, size: tree.size, files: tree.files },
        startedAt,
        finishedAt: new Date().toISOString(),
      };
      const image: BuiltImage = {
        bakeKey: request.bakeKey,
        cacheHit: false,
        imageArn: null,
        runtime: { uri: pathToFileURL(paths.tree).href, sha256Hex: tree.hex, size: tree.size },
        buildRecord,
      };
      // The scratch space is not part of the build; the tree, record and log are.
      await rm(workDir, { recursive: true, force: true });
      await writeFile(path.join(staging, 'build.log'), log.join(''));
      await writeJsonAtomic(path.join(staging, 'build-record.json'), buildRecord);
      await writeJsonAtomic(path.join(staging, 'image.json'), image);
      return await this.install(request, staging, image);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}
