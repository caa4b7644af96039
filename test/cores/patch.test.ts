import { describe, expect, it } from 'vitest';
import { applyPatches, baseImagePattern } from '../../src/cores/patch.ts';
import type { PatchResolver, RuntimePatch } from '../../src/ports/patches.ts';
import type { ResolvedRecipe } from '../../src/state.ts';
import { resolvedBake } from '../helpers/fixtures.ts';

const recipe = (overrides: Partial<ResolvedRecipe> = {}): ResolvedRecipe => ({ ...resolvedBake().recipe, ...overrides });

/** A resolver that knows one newer Node.js patch and one newer base image, and records what it was asked. */
class FixedResolver implements PatchResolver {
  readonly asked: string[] = [];
  private readonly patch: RuntimePatch | null;
  private readonly image: string | null;

  constructor(patch: RuntimePatch | null, image: string | null) {
    this.patch = patch;
    this.image = image;
  }

  async runtime(): Promise<RuntimePatch | null> {
    this.asked.push('runtime');
    return this.patch;
  }

  async baseImage(pattern: string): Promise<string | null> {
    this.asked.push(`baseImage ${pattern}`);
    return this.image;
  }
}

const NEWER = { parameters: { NodeVersion: '22.24.0', NodeSha256: '12'.repeat(32) }, source: 'test' };

describe('baseImagePattern', () => {
  it.each([
    ['amazon-linux-2023-x86/x.x.x', false, 'amazon-linux-2023-x86/x.x.x'],
    ['amazon-linux-2023-x86/x.x.x', true, 'amazon-linux-2023-x86/x.x.x'],
    ['amazon-linux-2023-x86/2025.6.0', false, undefined],
    ['amazon-linux-2023-x86/2025.6.0', true, 'amazon-linux-2023-x86/2025.6.x'],
    ['amazon-linux-2023-x86/2025.x.x', false, 'amazon-linux-2023-x86/2025.x.x'],
    ['not-an-image', true, undefined],
  ])('%s (scheduled: %s) → %s', (image, schedule, pattern) => {
    expect(baseImagePattern(image, schedule)).toBe(pattern);
  });
});

describe('applyPatches', () => {
  it('moves a scheduled bake to the newest runtime patch and base image, listing each change', async () => {
    // Prepare
    const resolver = new FixedResolver(NEWER, 'amazon-linux-2023-x86/2025.11.14');

    // Act
    const { recipe: patched, patched: changes } = await applyPatches(
      recipe({ baseImage: 'amazon-linux-2023-x86/2025.6.0' }),
      true,
      resolver,
    );

    // Assess
    expect(patched.parameters).toEqual(NEWER.parameters);
    expect(patched.baseImage).toBe('amazon-linux-2023-x86/2025.11.14');
    expect(changes).toEqual([
      { field: 'parameters.NodeVersion', from: '22.23.3', to: '22.24.0' },
      { field: 'parameters.NodeSha256', from: 'ef'.repeat(32), to: '12'.repeat(32) },
      { field: 'baseImage', from: 'amazon-linux-2023-x86/2025.6.0', to: 'amazon-linux-2023-x86/2025.11.14' },
    ]);
    expect(resolver.asked).toEqual(['runtime', 'baseImage amazon-linux-2023-x86/2025.6.x']);
  });

  it('leaves the runtime pins of other bakes alone, and resolves only a wildcard base image for them', async () => {
    // Prepare
    const resolver = new FixedResolver(NEWER, 'amazon-linux-2023-x86/2025.11.14');

    // Act
    const floating = await applyPatches(recipe({ baseImage: 'amazon-linux-2023-x86/x.x.x' }), false, resolver);
    const pinned = await applyPatches(recipe({ baseImage: 'amazon-linux-2023-x86/2025.6.0' }), false, resolver);

    // Assess
    expect(floating.recipe.parameters).toEqual(recipe().parameters);
    expect(floating.recipe.baseImage).toBe('amazon-linux-2023-x86/2025.11.14');
    expect(pinned.recipe.baseImage).toBe('amazon-linux-2023-x86/2025.6.0');
    expect(pinned.patched).toEqual([]);
    expect(resolver.asked).toEqual(['baseImage amazon-linux-2023-x86/x.x.x']);
  });

  it('changes nothing when nothing newer is known (the local backend, a recipe pinning no runtime line)', async () => {
    const same = { parameters: { NodeVersion: '22.23.3', NodeSha256: 'ef'.repeat(32) }, source: 'test' };
    for (const resolver of [new FixedResolver(null, null), new FixedResolver(same, null)]) {
      const input = recipe({ baseImage: 'amazon-linux-2023-x86/x.x.x' });
      const out = await applyPatches(input, true, resolver);
      expect(out).toEqual({ recipe: input, patched: [] });
    }
  });
});
