import { describe, expect, it } from 'vitest';
import { applyPatches, baseImagePattern, liveEqualBakes } from '../../src/cores/patch.ts';
import { manifestKey } from '../../src/cores/record.ts';
import type { PatchResolver, RuntimePatch } from '../../src/ports/patches.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import type { ResolvedRecipe } from '../../src/state.ts';
import { resolvedBake } from '../helpers/fixtures.ts';
import { MemoryArtefactStore, MemoryLedger } from '../helpers/memory.ts';

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

describe('liveEqualBakes', () => {
  const KEY = 'k'.repeat(64);
  const bake = resolvedBake();
  const hello = bake.functions[0];
  if (!hello) throw new Error('fixture without a function');

  function released(bakeId: string, version: string, at: string): LedgerEntry {
    return {
      type: 'released',
      bakeId,
      at,
      trigger: { type: 'cli', user: 'tester' },
      layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:hello-node22:1', version: 1, codeSha256: 'l=' },
      functions: [{ name: 'hello', alias: 'live', from: null, to: version, changed: true }],
      manifest: { uri: `mem://${manifestKey(bakeId)}`, sha256Hex: '00'.repeat(32), size: 1 },
    };
  }

  async function setup(entries: LedgerEntry[], manifests: Record<string, { bakeKey: string; version: string; codeSha256: string }>) {
    const ledger = new MemoryLedger();
    for (const e of entries) await ledger.append(e);
    const artefacts = new MemoryArtefactStore();
    for (const [bakeId, m] of Object.entries(manifests)) {
      await artefacts.putJson(manifestKey(bakeId), {
        bakeId,
        bakeKey: m.bakeKey,
        functions: [{ name: 'hello', version: m.version, codeSha256: m.codeSha256, alias: 'live' }],
      });
    }
    return { ledger, artefacts };
  }

  it('names the live release when its bake key and code are the same', async () => {
    const deps = await setup([released('b1', '1', '2026-11-01T00:00:00Z')], {
      b1: { bakeKey: KEY, version: '1', codeSha256: hello.code.sha256Base64 },
    });
    await expect(liveEqualBakes(bake, KEY, deps)).resolves.toEqual(['b1']);
  });

  it('is null when the bake key, the code, or the release differ, or nothing was released', async () => {
    const manifest = { b1: { bakeKey: KEY, version: '1', codeSha256: hello.code.sha256Base64 } };
    const live = [released('b1', '1', '2026-11-01T00:00:00Z')];
    await expect(liveEqualBakes(bake, 'other'.padEnd(64, '0'), await setup(live, manifest))).resolves.toBeNull();
    await expect(liveEqualBakes(bake, KEY, await setup(live, { b1: { ...manifest.b1, codeSha256: 'changed=' } }))).resolves.toBeNull();
    await expect(liveEqualBakes(bake, KEY, await setup([], manifest))).resolves.toBeNull();
    await expect(liveEqualBakes(bake, KEY, await setup(live, {}))).resolves.toBeNull();
  });

  it('compares with what is live now: after a rollback, the bake rolled back to', async () => {
    // Prepare: b2 released version 2 with other code, then the alias was rolled back to b1's version 1.
    const deps = await setup(
      [
        released('b1', '1', '2026-11-01T00:00:00Z'),
        released('b2', '2', '2026-11-08T00:00:00Z'),
        {
          type: 'rolledBack',
          bakeId: 'b1',
          at: '2026-11-09T00:00:00Z',
          by: 'ops',
          name: 'hello',
          alias: 'live',
          from: '2',
          to: '1',
          fromWeights: {},
        },
      ],
      {
        b1: { bakeKey: KEY, version: '1', codeSha256: hello.code.sha256Base64 },
        b2: { bakeKey: KEY, version: '2', codeSha256: 'newer=' },
      },
    );

    // Act + Assess
    await expect(liveEqualBakes(bake, KEY, deps)).resolves.toEqual(['b1']);
  });
});
