import { describe, expect, it } from 'vitest';
import { bakeKey, startImageBuild } from '../../src/cores/image.ts';
import type { ImageBuildStart } from '../../src/ports/image-build.ts';
import { resolvedBake } from '../helpers/fixtures.ts';

describe('bakeKey', () => {
  it('is the same for the same recipe, whatever the key order of its parameters', () => {
    // Prepare
    const { recipe } = resolvedBake();
    const reordered = { ...recipe, parameters: Object.fromEntries(Object.entries(recipe.parameters).reverse()) };

    // Act
    const keys = [bakeKey(recipe), bakeKey(reordered)];

    // Assess
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(keys[1]).toBe(keys[0]);
  });

  it('changes with anything that determines the artefact', () => {
    // Prepare
    const { recipe } = resolvedBake();
    const base = bakeKey(recipe);

    // Act
    const variants = [
      bakeKey({ ...recipe, parameters: { ...recipe.parameters, NodeVersion: '22.23.4' } }),
      bakeKey({ ...recipe, contentSha256Hex: '02'.repeat(32) }),
      bakeKey({ ...recipe, architecture: 'arm64' }),
      bakeKey({ ...recipe, runtime: 'provided.al2' }),
      bakeKey({ ...recipe, documents: [] }),
      bakeKey({ ...recipe, name: 'node22b' }),
    ];

    // Assess
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });
});

describe('startImageBuild', () => {
  it('starts the build with the task token and the bake key, and returns without waiting', async () => {
    // Prepare
    const bake = resolvedBake();
    bake.rebuild = true;
    const started: ImageBuildStart[] = [];
    const imageBuilder = {
      start: async (request: ImageBuildStart) => {
        started.push(request);
        return { buildId: 'build-1' };
      },
    };

    // Act
    const result = await startImageBuild({ bake, taskToken: 'BuildImage-abc' }, { imageBuilder });

    // Assess
    expect(result).toEqual({ buildId: 'build-1', bakeKey: bakeKey(bake.recipe) });
    expect(started).toEqual([
      { bakeId: bake.bakeId, bakeKey: bakeKey(bake.recipe), rebuild: true, recipe: bake.recipe, taskToken: 'BuildImage-abc' },
    ]);
  });
});
