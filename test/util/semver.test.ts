import { describe, expect, it } from 'vitest';
import type { ResolvedRecipe } from '../../src/state.ts';
import { compareSemver, nodePins, semver } from '../../src/util/semver.ts';
import { resolvedBake } from '../helpers/fixtures.ts';

const recipe = (overrides: Partial<ResolvedRecipe> = {}): ResolvedRecipe => ({ ...resolvedBake().recipe, ...overrides });

describe('semver', () => {
  it('reads a plain major.minor.patch, with or without a leading v, and nothing else', () => {
    expect(semver('22.23.3')).toEqual([22, 23, 3]);
    expect(semver('v20.1.0')).toEqual([20, 1, 0]);
    expect(semver('22.23')).toBeUndefined();
    expect(semver('22.23.3-rc.1')).toBeUndefined();
  });

  it('orders versions by major, then minor, then patch', () => {
    expect(compareSemver([22, 1, 0], [20, 9, 9])).toBeGreaterThan(0);
    expect(compareSemver([22, 1, 9], [22, 2, 0])).toBeLessThan(0);
    expect(compareSemver([22, 2, 3], [22, 2, 3])).toBe(0);
  });
});

describe('nodePins', () => {
  it('reads the pinned Node.js line and the platform of the recipe', () => {
    expect(nodePins(recipe())).toEqual({ version: [22, 23, 3], sha256: 'ef'.repeat(32), platform: 'linux-x64' });
    expect(nodePins(recipe({ architecture: 'arm64' }))?.platform).toBe('linux-arm64');
    expect(nodePins(recipe({ parameters: { Other: '1' } }))).toBeUndefined();
  });
});
